"""``conveyor infra-validate``: does a SavedModel load and answer in a clean serving process?

Writes, under ``--output`` (an InfraBlessing folder): ``INFRA_BLESSED`` or
``INFRA_NOT_BLESSED`` (holding the reason), ``infra_validation.json`` (the
summary) and ``server.log``. The step is
:func:`conveyor.components.infra_validator.run_infra_validator`, with the local
TensorFlow runtime (TensorFlow Serving's binary is not part of Conveyor).

Exit status: 0 blessed, 1 not blessed (the output is complete), 2 bad input
(no such model folder, unreadable examples, bad flags).
"""

from __future__ import annotations

import argparse

HELP = "Load a SavedModel in a clean TensorFlow process and query it: INFRA_BLESSED or not."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The model, the examples to send, the output, the deadline and the tries."""
    parser.add_argument(
        "--model",
        required=True,
        metavar="DIR",
        help="a Model artifact folder (its Format-Serving SavedModel) or a SavedModel folder",
    )
    parser.add_argument(
        "--examples",
        metavar="DIR",
        help="an Examples folder (Split-<name>/ TFRecords): load and query (default: load only)",
    )
    parser.add_argument(
        "--split", default="eval", metavar="NAME", help="split of --examples (default: eval)"
    )
    parser.add_argument(
        "--num-examples",
        type=int,
        default=1,
        metavar="N",
        help="examples to send, one a request (default: 1)",
    )
    parser.add_argument(
        "--signature",
        action="append",
        metavar="NAME",
        help="a signature to query; repeat for several (default: serving_default)",
    )
    parser.add_argument(
        "--tags",
        default="serve",
        metavar="TAGS",
        help="comma-separated SavedModel tags to load (default: serve)",
    )
    parser.add_argument(
        "--output", required=True, metavar="DIR", help="the InfraBlessing folder to write"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        default=300,
        metavar="S",
        help="seconds one try may take, loading and queries (default: 300)",
    )
    parser.add_argument(
        "--num-tries",
        type=int,
        default=5,
        metavar="N",
        help="tries while the serving process times out or crashes (default: 5)",
    )


def run(args, beam_args) -> int:
    """Checks the flags, validates, prints the verdict; 0 blessed, 1 not blessed."""
    from conveyor.beam_utils.errors import UsageError
    from conveyor.beam_utils.outputs import check_output, staged_output
    from conveyor.components.infra_validator.component import run_infra_validator, summary_line

    if args.num_examples < 1:
        raise UsageError(f"--num-examples must be at least 1, not {args.num_examples}")
    if args.timeout <= 0:
        raise UsageError(f"--timeout must be positive, not {args.timeout:g}")
    if args.num_tries < 1:
        raise UsageError(f"--num-tries must be at least 1, not {args.num_tries}")
    tags = [t.strip() for t in args.tags.split(",") if t.strip()]
    if not tags:
        raise UsageError("--tags names no tag")
    request_spec = None
    if args.examples:
        request_spec = {
            "tensorflow_serving": {
                "tags": tags,
                "signature_names": args.signature or ["serving_default"],
            },
            "split_name": args.split,
            "num_examples": args.num_examples,
        }
    elif args.signature or args.tags != "serve":
        raise UsageError("--signature and --tags go with --examples (without them: load only)")
    inputs = [args.model, args.examples]
    check_output(args.output, inputs=inputs)
    with staged_output(args.output, inputs=inputs) as output:
        summary = run_infra_validator(
            args.model,
            output,
            examples=args.examples,
            serving_spec={"local_tensorflow": {}},
            validation_spec={"max_loading_time_seconds": args.timeout, "num_tries": args.num_tries},
            request_spec=request_spec,
            beam_args=beam_args,
        )
    print(summary_line(summary, args.output))
    return 0 if summary["blessed"] else 1

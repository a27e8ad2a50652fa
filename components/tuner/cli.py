"""``conveyor tune``: search hyperparameters with a module file's ``tuner_fn`` on an Examples directory.

Reads the train and eval splits of ``--examples`` (an ExampleGen or Transform
output), calls ``tuner_fn(fn_args)`` from ``--module-file`` and runs the
search of the KerasTuner tuner it returns. Writes, under ``--output``:

* ``best_hyperparameters/best_hyperparameters.txt``: the best trial's
  ``HyperParameters.get_config()`` as JSON (TFX Tuner's HyperParameters layout),
  which ``conveyor train --hyperparameters`` takes;
* ``tuner/``: ``fn_args.working_dir`` (where the tuner keeps its trials) and
  ``tuner_summary.json`` (each trial's score and hyperparameters).

The output is written beside and renamed into place as every command's is. A
split that is not there, a module file that is missing, lacks the function or
does not import, ``tuner_fn`` returning no ``TunerFnResult`` and the user's code
raising are input errors (exit status 2), named with the file and the user's lines.
"""

from __future__ import annotations

import argparse

HELP = "Search hyperparameters with a module file's tuner_fn on an Examples directory (Tuner)."

#: The folders of the output: the HyperParameters artifact and the tuner's working folder.
BEST_HYPERPARAMETERS, WORKING_DIR = "best_hyperparameters", "tuner"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--examples``, ``--module-file``, ``--output`` and the settings ``tuner_fn`` gets."""
    parser.add_argument(
        "--examples",
        required=True,
        metavar="DIR",
        help="an Examples directory (Split-<name>/ folders of TFRecords)",
    )
    parser.add_argument(
        "--module-file", required=True, metavar="FILE", help="Python file that defines the tuner_fn"
    )
    parser.add_argument(
        "--tuner-fn",
        default="tuner_fn",
        metavar="NAME",
        help="name of the function in --module-file (default: tuner_fn)",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="DIR",
        help="where best_hyperparameters/ and tuner/ (the trials) go",
    )
    parser.add_argument(
        "--transform-graph",
        metavar="DIR",
        help="a tf.Transform graph (conveyor transform's OUTPUT/transform_graph, or that "
        "OUTPUT): fn_args.transform_graph_path",
    )
    parser.add_argument("--schema", metavar="FILE", help="a schema.pbtxt: fn_args.schema_path")
    parser.add_argument(
        "--train-split",
        action="append",
        metavar="NAME",
        help="a split to tune on (repeat for several; default: train)",
    )
    parser.add_argument(
        "--eval-split",
        action="append",
        metavar="NAME",
        help="a split to validate on (repeat for several; default: eval)",
    )
    parser.add_argument("--train-steps", type=int, metavar="N", help="fn_args.train_steps")
    parser.add_argument("--eval-steps", type=int, metavar="N", help="fn_args.eval_steps")
    parser.add_argument(
        "--custom-config", metavar="JSON", help="a JSON object: fn_args.custom_config (default: {})"
    )


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    """Runs ``conveyor tune``: checks the arguments, tunes into a staged output, prints a summary."""
    import os
    import posixpath

    from conveyor.beam_utils.errors import InputError, UsageError
    from conveyor.beam_utils.io import read_examples_dir
    from conveyor.beam_utils.outputs import check_output, is_remote, staged_output
    from conveyor.components.trainer import (
        find_transform_graph,
        parse_custom_config,
    )
    from conveyor.components.tuner.component import run_tuner
    from conveyor.dsl import PipelineDefinitionError

    if is_remote(args.output):
        raise UsageError(f"{args.output}: conveyor tune writes a local folder (the tuner's trials)")
    inputs = [args.examples, args.module_file, args.transform_graph, args.schema]
    check_output(args.output, inputs=inputs)
    if beam_args:
        raise UsageError("conveyor tune runs no Beam pipeline: it takes no flags after '--'")
    try:
        custom_config = parse_custom_config(args.custom_config, "--custom-config")
    except PipelineDefinitionError as e:
        raise UsageError(str(e)) from None
    for flag, steps in (("--train-steps", args.train_steps), ("--eval-steps", args.eval_steps)):
        if steps is not None and steps < 1:
            raise UsageError(f"{flag} must be positive, not {steps}")
    transform_graph = find_transform_graph(args.transform_graph) if args.transform_graph else None
    if args.schema and not os.path.isfile(args.schema):
        raise InputError(f"{args.schema}: no such schema file")
    train_splits = args.train_split or ["train"]
    eval_splits = args.eval_split or ["eval"]
    reads = {
        s: read_examples_dir(args.examples, s) for s in dict.fromkeys(train_splits + eval_splits)
    }
    with staged_output(args.output, inputs=inputs) as output:
        summary = run_tuner(
            reads,
            posixpath.join(output, BEST_HYPERPARAMETERS),
            args.module_file,
            tuner_fn_name=args.tuner_fn,
            working_dir=posixpath.join(output, WORKING_DIR),
            transform_graph_dir=transform_graph,
            schema_path=args.schema,
            train_split=train_splits,
            eval_split=eval_splits,
            train_steps=args.train_steps,
            eval_steps=args.eval_steps,
            custom_config=custom_config,
        )
    print(format_summary(summary, args))
    return 0


def format_summary(summary: dict, args: argparse.Namespace) -> str:
    """A few lines a person reads after a run (the paths are the output's, not the staging's)."""
    import posixpath

    from conveyor.dsl.layout import HYPERPARAMETERS_FILE

    score = summary.get("best_score")
    objective = summary.get("objective") or "score"
    lines = [
        f"Tuner: {args.tuner_fn} ({args.module_file}) on {args.examples}",
        f"  trials: {len(summary['trials'])}"
        + (f", best {objective} {score:.4g}" if score is not None else ""),
    ]
    for name, value in summary["best_hyperparameters"].items():
        lines.append(f"  {name}: {value}")
    lines.append(
        f"  best hyperparameters: "
        f"{posixpath.join(args.output, BEST_HYPERPARAMETERS, HYPERPARAMETERS_FILE)}"
    )
    lines.append(f"  trials: {posixpath.join(args.output, WORKING_DIR)}/")
    return "\n".join(lines)

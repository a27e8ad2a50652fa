"""``conveyor train``: train a model with a module file's ``run_fn`` on an Examples directory.

Reads the train and eval splits of ``--examples`` (an ExampleGen or Transform
output, one ``Split-<name>/`` folder per split), calls ``run_fn(fn_args)`` from
``--module-file`` and checks the SavedModel it saves. Writes, under ``--output``:

* ``model/Format-Serving/``: the serving SavedModel (TFX Trainer's Model layout),
  which ``conveyor evaluate`` and ``conveyor infer`` take;
* ``model_run/``: what ``run_fn`` logs there (TensorBoard, checkpoints) and
  ``trainer_summary.json``.

The output is written beside and renamed into place as every command's is. A
split that is not there, a module file that is missing, lacks the function or
does not import, and ``run_fn`` raising are input errors (exit status 2), named
with the file and the user's lines. ``--base-model`` (a Model folder or a
SavedModel folder) is ``fn_args.base_model``, a model to warm-start from;
``--hyperparameters`` (``conveyor tune``'s ``best_hyperparameters``) is
``fn_args.hyperparameters``.
"""

from __future__ import annotations

import argparse

HELP = "Train a model with a module file's run_fn on an Examples directory (Trainer)."

#: The folders of the output: the Model and the ModelRun, as the Trainer node names them.
MODEL, MODEL_RUN = "model", "model_run"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--examples``, ``--module-file``, ``--output`` and the settings ``run_fn`` gets."""
    parser.add_argument(
        "--examples",
        required=True,
        metavar="DIR",
        help="an Examples directory (Split-<name>/ folders of TFRecords)",
    )
    parser.add_argument(
        "--module-file", required=True, metavar="FILE", help="Python file that defines the run_fn"
    )
    parser.add_argument(
        "--run-fn",
        default="run_fn",
        metavar="NAME",
        help="name of the function in --module-file (default: run_fn)",
    )
    parser.add_argument(
        "--output",
        required=True,
        metavar="DIR",
        help="where model/ (the SavedModel in Format-Serving/) and model_run/ go",
    )
    parser.add_argument(
        "--transform-graph",
        metavar="DIR",
        help="a tf.Transform graph (conveyor transform's OUTPUT/transform_graph, "
        "or that OUTPUT): fn_args.tf_transform_output()",
    )
    parser.add_argument("--schema", metavar="FILE", help="a schema.pbtxt: fn_args.schema_path")
    parser.add_argument(
        "--base-model",
        metavar="DIR",
        help="a model to warm-start from (a Model folder with Format-Serving/, as conveyor "
        "train's OUTPUT/model, or a SavedModel folder): fn_args.base_model",
    )
    parser.add_argument(
        "--hyperparameters",
        metavar="PATH",
        help="a HyperParameters folder (conveyor tune's OUTPUT/best_hyperparameters) or its "
        "best_hyperparameters.txt: fn_args.hyperparameters",
    )
    parser.add_argument(
        "--train-split",
        default="train",
        metavar="NAME",
        help="the split to train on (default: train)",
    )
    parser.add_argument(
        "--eval-split",
        default="eval",
        metavar="NAME",
        help="the split to evaluate on (default: eval)",
    )
    parser.add_argument("--train-steps", type=int, metavar="N", help="fn_args.train_steps")
    parser.add_argument("--eval-steps", type=int, metavar="N", help="fn_args.eval_steps")
    parser.add_argument(
        "--custom-config", metavar="JSON", help="a JSON object: fn_args.custom_config (default: {})"
    )


def run(args: argparse.Namespace, beam_args: list[str]) -> int:
    """Runs ``conveyor train``: checks the arguments, trains into a staged output, prints a summary."""
    import posixpath

    from conveyor.beam_utils.errors import UsageError
    from conveyor.beam_utils.io import read_examples_dir
    from conveyor.beam_utils.outputs import check_output, is_remote, staged_output
    from conveyor.components.trainer.component import check_base_model, run_trainer
    from conveyor.components.trainer.fn_args import find_transform_graph, read_hyperparameters

    if is_remote(args.output):
        raise UsageError(
            f"{args.output}: conveyor train writes a local folder (run_fn saves there)"
        )
    inputs = [
        args.examples,
        args.module_file,
        args.transform_graph,
        args.schema,
        args.base_model,
        args.hyperparameters,
    ]
    check_output(args.output, inputs=inputs)
    if beam_args:
        raise UsageError("conveyor train runs no Beam pipeline: it takes no flags after '--'")
    custom_config = _custom_config(args.custom_config)
    for flag, steps in (("--train-steps", args.train_steps), ("--eval-steps", args.eval_steps)):
        if steps is not None and steps < 1:
            raise UsageError(f"{flag} must be positive, not {steps}")
    transform_graph = find_transform_graph(args.transform_graph) if args.transform_graph else None
    if args.schema:
        _check_file(args.schema, "schema file")
    base_model = None
    if args.base_model:
        from conveyor.dsl.layout import serving_model_dir

        base_model = serving_model_dir(args.base_model)
        check_base_model(base_model)
    hyperparameters = read_hyperparameters(args.hyperparameters) if args.hyperparameters else None
    reads = {
        s: read_examples_dir(args.examples, s)
        for s in dict.fromkeys([args.train_split, args.eval_split])
    }
    with staged_output(args.output, inputs=inputs) as output:
        summary = run_trainer(
            reads,
            posixpath.join(output, MODEL),
            args.module_file,
            model_run_dir=posixpath.join(output, MODEL_RUN),
            transform_graph_dir=transform_graph,
            schema_path=args.schema,
            train_split=args.train_split,
            eval_split=args.eval_split,
            train_steps=args.train_steps,
            eval_steps=args.eval_steps,
            custom_config=custom_config,
            run_fn_name=args.run_fn,
            base_model=base_model,
            hyperparameters=hyperparameters,
        )
    print(format_summary(summary, args))
    return 0


def _custom_config(text: str | None) -> dict:
    import json

    from conveyor.beam_utils.errors import UsageError

    if not text:
        return {}
    try:
        config = json.loads(text)
    except ValueError as e:
        raise UsageError(f"--custom-config is not JSON: {e}") from None
    if not isinstance(config, dict):
        raise UsageError(
            f"--custom-config must be a JSON object ({{...}}), not {type(config).__name__}"
        )
    return config


def _check_file(path: str, what: str) -> None:
    import os

    from conveyor.beam_utils.errors import InputError

    if not os.path.isfile(path):
        raise InputError(f"{path}: no such {what}")


def format_summary(summary: dict, args: argparse.Namespace) -> str:
    """A few lines a person reads after a run (the paths are the output's, not the staging's)."""
    import posixpath

    from conveyor.dsl.layout import SERVING_DIR

    model = posixpath.join(args.output, MODEL)
    lines = [
        f"Trainer: {args.run_fn} ({args.module_file}) on {args.examples}",
        *([f"  base model: {summary['base_model']}"] if summary.get("base_model") else []),
        f"  model: {posixpath.join(model, SERVING_DIR)}  {summary['signature']}",
    ]
    for key, value in summary.get("run_fn_result", {}).items():
        lines.append(f"  {key}: {value}")
    lines.append(f"  run: {posixpath.join(args.output, MODEL_RUN)}/")
    return "\n".join(lines)

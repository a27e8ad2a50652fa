"""``conveyor evaluate``: metrics per slice, thresholds and a blessing.

Writes, under ``--output``: ``metrics.json`` (one entry per slice, the overall
slice ``{}`` first), ``plots.json``, ``validation.json``,
``blessing/BLESSED`` or ``blessing/NOT_BLESSED``, ``index.html`` and
``plots/*.png``. Exit status 1 when the model is not blessed, 2 for a usage or
input error (a missing label column, a config that does not parse, ...).

Change thresholds compare with a baseline: ``--baseline-model`` (with
``--model``) or, model-free, the baseline's prediction column
(``--baseline-prediction-key`` or the config's baseline model spec). Without
one they are skipped, as TFX's Evaluator skips them when there is no baseline
model yet; ``validation.json`` lists them under ``skipped_change_thresholds``.
"""

from __future__ import annotations

import argparse

HELP = "Evaluate a model or prediction column: metrics per slice, thresholds, blessing (Evaluator)."


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The shared input flags (:mod:`conveyor.beam_utils.cli_args`), the model's and the metrics'."""
    from conveyor.beam_utils.cli_args import add_input_arguments

    add_input_arguments(parser)
    parser.add_argument(
        "--split",
        metavar="NAME",
        help="split of --examples to evaluate (default: eval, or the only one)",
    )
    model = parser.add_argument_group("model (one of --model or --prediction-key)")
    model.add_argument("--model", metavar="DIR", help="a TensorFlow SavedModel to evaluate")
    model.add_argument(
        "--baseline-model",
        metavar="DIR",
        help="a baseline SavedModel for the change thresholds (without it, with --model, "
        "they are skipped, as TFX's Evaluator skips them with no baseline)",
    )
    model.add_argument(
        "--signature",
        default="serving_default",
        metavar="NAME",
        help="signature of the model(s) (default: serving_default)",
    )
    model.add_argument(
        "--prediction-key",
        metavar="COL",
        help="column holding the predictions (model-free), or the model output to use",
    )
    model.add_argument(
        "--baseline-prediction-key",
        metavar="COL",
        help="column holding a baseline's predictions (model-free)",
    )
    parser.add_argument("--label-key", metavar="COL", help="label column (or from --config)")
    parser.add_argument("--weight-key", metavar="COL", help="example weight column")
    parser.add_argument(
        "--config",
        metavar="FILE",
        help="a tfma.EvalConfig as JSON or text proto (model_specs, slicing_specs, "
        "metrics_specs with thresholds)",
    )
    parser.add_argument(
        "--slice-by",
        action="append",
        default=[],
        metavar="COL",
        help="add a slice per value of COL (repeatable; COL1,COL2 crosses columns)",
    )
    parser.add_argument(
        "--task",
        choices=("binary", "multiclass", "regression"),
        default="binary",
        help="default metric set when the config names none (default: binary)",
    )
    parser.add_argument(
        "--confidence-intervals",
        action="store_true",
        help="Poisson bootstrap confidence intervals (20 replicates)",
    )
    parser.add_argument(
        "--min-slice-size",
        type=int,
        default=None,
        metavar="N",
        help="leave out slices with fewer examples",
    )
    parser.add_argument(
        "--hot-key-fanout",
        type=int,
        default=4,
        metavar="N",
        help="intermediate keys per slice in the combine (default 4)",
    )
    parser.add_argument("--no-images", action="store_true", help="skip the PNG plots")
    parser.add_argument("--output", required=True, metavar="DIR", help="output directory")


def _settings(args):
    import dataclasses

    from conveyor.beam_utils.errors import UsageError
    from conveyor.components.evaluation.config import (
        SliceSpec,
        config_has_baseline_column,
        load_eval_config,
        make_settings,
        settings_from_eval_config,
    )

    extra = [SliceSpec(tuple(c.strip() for c in s.split(",") if c.strip())) for s in args.slice_by]
    if args.config:
        config = load_eval_config(args.config)
        # TFX's rule: a baseline spec and change thresholds only with a baseline (its
        # model, or model-free its prediction column); else they are skipped.
        if args.model:
            has_baseline = bool(args.baseline_model)
        else:
            has_baseline = bool(args.baseline_prediction_key) or config_has_baseline_column(config)
        settings = settings_from_eval_config(
            config, task=args.task, extra_slices=extra, has_baseline=has_baseline
        )
        models = []
        for m in settings.models:
            updates = {}
            if args.label_key:
                updates["label_key"] = args.label_key
            if args.weight_key:
                updates["example_weight_key"] = args.weight_key
            if not m.is_baseline and args.prediction_key:
                updates["prediction_key"] = args.prediction_key
            if m.is_baseline and args.baseline_prediction_key:
                updates["prediction_key"] = args.baseline_prediction_key
            models.append(dataclasses.replace(m, **updates))
        settings = dataclasses.replace(settings, models=tuple(models))
    else:
        if not args.label_key:
            raise UsageError("give --label-key (or a --config with model_specs)")
        settings = make_settings(
            args.label_key,
            args.prediction_key,
            baseline_prediction_key=args.baseline_prediction_key,
            example_weight_key=args.weight_key,
            task=args.task,
        )
        settings = settings.with_slices(
            settings.slices + tuple(s for s in extra if s not in settings.slices)
        )
    updates = {}
    if args.confidence_intervals:
        updates["compute_confidence_intervals"] = True
    if args.min_slice_size is not None:
        if args.min_slice_size < 1:
            raise UsageError("--min-slice-size must be positive")
        updates["min_slice_size"] = args.min_slice_size
    return dataclasses.replace(settings, **updates) if updates else settings


#: The name ``--input`` is read under (a file pattern has no splits).
INPUT_SPLIT = "input"


def _pick_read(args) -> dict:
    """``{split: ReadExamples}`` of the one split evaluated: ``--input``, or a split of ``--examples``."""
    from conveyor.beam_utils.cli_args import read_transforms
    from conveyor.beam_utils.errors import UsageError

    reads = read_transforms(args)
    if None in reads:
        if args.split:
            raise UsageError("--split goes with --examples")
        return {INPUT_SPLIT: reads[None]}
    if args.split:
        if args.split not in reads:
            raise UsageError(
                f"{args.examples} has no split {args.split!r} (it has {', '.join(reads)})"
            )
        return {args.split: reads[args.split]}
    if "eval" in reads:
        return {"eval": reads["eval"]}
    if len(reads) == 1:
        return reads
    raise UsageError(f"{args.examples} has splits {', '.join(reads)}; choose one with --split")


def run(args, beam_args) -> int:
    """Checks the flags, evaluates and prints the overall metrics; 0 if blessed, else 1."""
    from conveyor.beam_utils.errors import UsageError
    from conveyor.beam_utils.outputs import check_output, staged_output
    from conveyor.dsl.layout import BLESSED, NOT_BLESSED

    inputs = [args.input, args.examples, args.model, args.baseline_model, args.config]
    check_output(args.output, inputs=inputs)

    if args.model and args.baseline_prediction_key:
        raise UsageError(
            "--baseline-prediction-key is for model-free evaluation; use --baseline-model"
        )
    if args.baseline_model and not args.model:
        raise UsageError("--baseline-model goes with --model")
    if not args.model and not args.prediction_key and not args.config:
        raise UsageError("give --model DIR or --prediction-key COL")
    if args.hot_key_fanout < 1:
        raise UsageError("--hot-key-fanout must be positive")
    settings = _settings(args)
    if not args.model and not settings.candidate.prediction_key:
        raise UsageError(
            "give --model DIR or --prediction-key COL (or prediction_key in the config)"
        )
    examples = _pick_read(args)

    from conveyor.components.evaluation.component import run_evaluation

    # NOT_BLESSED (exit status 1) is a complete output too: it replaces the old one.
    with staged_output(args.output, inputs=inputs) as output:
        report = run_evaluation(
            examples,
            settings,
            output,
            model_path=args.model,
            baseline_model_path=args.baseline_model,
            signature=args.signature,
            beam_args=beam_args,
            hot_key_fanout=args.hot_key_fanout,
            images=not args.no_images,
        )
    overall = report["metrics"][0]
    shown = {
        k: v
        for k, v in overall["metrics"].items()
        if k
        in ("example_count", "auc", "binary_accuracy", "mean_squared_error", "accuracy", "log_loss")
    }
    print(
        f"{len(report['metrics'])} slices; overall: "
        + ", ".join(
            f"{k}={v:.4f}" if isinstance(v, float) else f"{k}={v}" for k, v in shown.items()
        )
    )
    for name, count in (overall.get("problems") or {}).items():
        print(f"warning: {count} examples left out of the metrics: {name.replace('_', ' ')}")
    if report["rows_rejected_on_read"]:
        print(f"warning: {report['rows_rejected_on_read']} input rows rejected on read")
    v = report["validation"]
    for f in v["failures"]:
        print(f"FAILED {f['metric']} on slice {f['slice'] or 'overall'}: {f['reason']}")
    for t in v["skipped_change_thresholds"]:
        where = f" on slices {t['slices']}" if "slices" in t else ""
        print(f"skipped the change threshold on {t['metric']}{where}: {t['reason']}")
    print((BLESSED if report["blessed"] else NOT_BLESSED) + f"; output in {args.output}")
    return 0 if report["blessed"] else 1

"""Evaluator as a pipeline component."""

from __future__ import annotations

import json
import os

from conveyor.dsl import Component, InputSpec
from conveyor.dsl.layout import BLESSED, NOT_BLESSED, serving_model_dir

#: ModelBlessing custom properties (TFX Evaluator's names and values).
BLESSED_KEY = "blessed"
CURRENT_MODEL_KEY = "current_model"
BASELINE_MODEL_KEY = "baseline_model"
BLESSED_VALUE = 1
NOT_BLESSED_VALUE = 0


class Evaluator(Component):
    """Computes metrics per slice on one split, checks thresholds, and blesses the model or not.

    Give ``eval_config`` (a ``tfma.EvalConfig`` as a proto, dict, JSON or text) or
    ``label_key`` (with ``slice_by`` and optional ``prediction_key``). With a
    ``model`` input the model predicts; without one, ``prediction_key`` names the
    prediction column. Outputs: ``evaluation`` (metrics.json, plots, index.html,
    validation.json) and ``blessing`` (a ``BLESSED`` or ``NOT_BLESSED`` file).

    ``baseline_model`` (optional) is what change thresholds compare with: with a
    ``model``, its SavedModel predicts; model-free, it says a baseline is there
    and the config's baseline model spec names the column of its predictions.
    Without it (the first run of a continuous pipeline, before any model is
    blessed) the baseline model spec is dropped and change thresholds are
    skipped, as in TFX: value thresholds alone decide, and ``validation.json``
    lists the skipped ones under ``skipped_change_thresholds``.

    Models saved by a TFX module file work as in TFX: the config's
    ``model_specs[].preprocessing_function_names`` (e.g. ``transform_features``)
    are called on the raw examples first, so the label, weight and slicing
    features may be transformed ones (``label_key: "species_xf"``), and each
    spec's ``signature_name`` is its prediction signature (``signature``, the
    node parameter, when it names none).

    The blessing's properties are TFX's: ``blessed`` (1 or 0), ``current_model``
    and ``current_model_id`` (the model's uri and ML Metadata id), and
    ``baseline_model`` / ``baseline_model_id`` when there is a baseline.

    Example::

        evaluator = Evaluator(examples=gen.outputs["examples"], model=trainer.outputs["model"],
                              label_key="late", slice_by=["carrier"])
    """

    INPUTS = {
        "examples": InputSpec("Examples"),
        "model": InputSpec("Model", optional=True),
        "baseline_model": InputSpec("Model", optional=True),
    }
    OUTPUTS = {"evaluation": "ModelEvaluation", "blessing": "ModelBlessing"}
    PARAMETERS = {
        "eval_config": None,
        "label_key": None,
        "prediction_key": None,
        "slice_by": (),
        "split": "eval",
        "signature": "serving_default",
    }

    def execute(self, ctx):
        from conveyor.beam_utils.io import read_examples_dir
        from conveyor.components.evaluation.component import run_evaluation
        from conveyor.components.evaluation.report import BLESSING_DIR

        p = ctx.parameters
        model = ctx.inputs.get("model")
        baseline = ctx.inputs.get("baseline_model")
        settings = _settings(p, model, baseline)
        out = ctx.outputs["evaluation"].uri
        split = p["split"]
        with_models = model is not None
        report = run_evaluation(
            {split: read_examples_dir(ctx.inputs["examples"].uri, split)},
            settings,
            out,
            model_path=serving_model_dir(model.uri) if with_models else None,
            baseline_model_path=(
                serving_model_dir(baseline.uri) if with_models and baseline is not None else None
            ),
            signature=p["signature"],
            beam_args=ctx.beam_args,
        )
        verdict = BLESSED if report["blessed"] else NOT_BLESSED
        from apache_beam.io.filesystems import FileSystems

        # Through Beam's FileSystems: the outputs may be on an object store (an s3:// root).
        FileSystems.copy(
            [FileSystems.join(out, BLESSING_DIR, verdict)],
            [FileSystems.join(ctx.outputs["blessing"].uri, verdict)],
        )
        return {
            "evaluation": {"overall": json.dumps(overall_summary(report))},
            "blessing": blessing_properties(bool(report["blessed"]), model, baseline),
        }


def overall_summary(report: dict) -> dict:
    """Every metric of the overall slice of an evaluation ``report`` (its first entry), by
    name: the Evaluation artifact's ``overall`` property."""
    return dict(sorted(report["metrics"][0]["metrics"].items()))


def blessing_properties(blessed: bool, model=None, baseline=None) -> dict:
    """A ModelBlessing's custom properties, as TFX's Evaluator sets them.

    ``blessed`` is 1 or 0; ``current_model`` / ``baseline_model`` are the
    models' uris and ``current_model_id`` / ``baseline_model_id`` their ML
    Metadata ids (left out for an input without one, or without a model).
    """
    props: dict = {BLESSED_KEY: BLESSED_VALUE if blessed else NOT_BLESSED_VALUE}
    for key, artifact in ((CURRENT_MODEL_KEY, model), (BASELINE_MODEL_KEY, baseline)):
        if artifact is None:
            continue
        props[key] = artifact.uri
        if artifact.id is not None:
            props[f"{key}_id"] = int(artifact.id)
    return props


def _settings(p: dict, model, baseline):
    """The node's :class:`EvalSettings`: from ``eval_config`` or ``label_key``, with a
    baseline spec if and only if there is a ``baseline_model`` input (TFX's rule)."""
    from conveyor.beam_utils.errors import UsageError
    from conveyor.components.evaluation.config import (
        SliceSpec,
        config_has_baseline_column,
        load_eval_config,
        make_settings,
        settings_from_eval_config,
    )

    extra = [SliceSpec((c,)) for c in p["slice_by"]]
    model_free_baseline = model is None and baseline is not None
    if p["eval_config"] is not None:
        config = p["eval_config"]
        if isinstance(config, str) and not os.path.isabs(config) and os.path.isfile(config):
            config = os.path.abspath(config)
        config = load_eval_config(config)
        if p["prediction_key"]:
            for spec in config.model_specs:
                if not spec.is_baseline:
                    spec.prediction_key = p["prediction_key"]
        if model_free_baseline and not config_has_baseline_column(config):
            raise UsageError(
                "Evaluator without a model input evaluates prediction columns: with a "
                "baseline_model, give the eval_config a baseline model spec (is_baseline) "
                "whose prediction_key names the column of the baseline's predictions"
            )
        settings = settings_from_eval_config(
            config, extra_slices=extra, has_baseline=baseline is not None
        )
    elif p["label_key"]:
        if model_free_baseline:
            raise UsageError(
                "Evaluator without a model input evaluates prediction columns: with a "
                "baseline_model, give an eval_config whose baseline model spec (is_baseline) "
                "names the column of the baseline's predictions as its prediction_key"
            )
        settings = make_settings(p["label_key"], p["prediction_key"])
        settings = settings.with_slices(
            settings.slices + tuple(s for s in extra if s not in settings.slices)
        )
    else:
        raise UsageError("Evaluator needs eval_config or label_key")
    if model is None and not settings.candidate.prediction_key:
        raise UsageError("Evaluator needs a model input or a prediction_key")
    return settings

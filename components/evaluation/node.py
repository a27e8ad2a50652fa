"""Evaluator as a pipeline component."""

from __future__ import annotations

import json
import os
import shutil

from conveyor.dsl import Component, InputSpec
from conveyor.dsl.layout import BLESSED, NOT_BLESSED, serving_model_dir


class Evaluator(Component):
    """Computes metrics per slice on one split, checks thresholds, and blesses the model or not.

    Give ``eval_config`` (a ``tfma.EvalConfig`` as a proto, dict, JSON or text) or
    ``label_key`` (with ``slice_by`` and optional ``prediction_key``). With a
    ``model`` input the model predicts; without one, ``prediction_key`` names the
    prediction column. Outputs: ``evaluation`` (metrics.json, plots, index.html,
    validation.json) and ``blessing`` (a ``BLESSED`` or ``NOT_BLESSED`` file).

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
        import dataclasses

        from conveyor.beam_utils.io import read_examples_dir
        from conveyor.components.evaluation.component import run_evaluation
        from conveyor.components.evaluation.config import (
            SliceSpec,
            make_settings,
            settings_from_eval_config,
        )
        from conveyor.components.evaluation.report import BLESSING_DIR

        p = ctx.parameters
        extra = [SliceSpec((c,)) for c in p["slice_by"]]
        if p["eval_config"] is not None:
            config = p["eval_config"]
            if isinstance(config, str) and not os.path.isabs(config) and os.path.isfile(config):
                config = os.path.abspath(config)
            settings = settings_from_eval_config(config, extra_slices=extra)
        elif p["label_key"]:
            settings = make_settings(p["label_key"], p["prediction_key"])
            settings = settings.with_slices(
                settings.slices + tuple(s for s in extra if s not in settings.slices)
            )
        else:
            raise ValueError("Evaluator needs eval_config or label_key")
        model = ctx.inputs.get("model")
        baseline = ctx.inputs.get("baseline_model")
        if model is None and not settings.candidate.prediction_key:
            raise ValueError("Evaluator needs a model input or a prediction_key")
        if model is not None and p["prediction_key"]:
            settings = dataclasses.replace(
                settings,
                models=tuple(
                    dataclasses.replace(m, prediction_key=p["prediction_key"])
                    if not m.is_baseline
                    else m
                    for m in settings.models
                ),
            )
        out = ctx.outputs["evaluation"].uri
        split = p["split"]
        report = run_evaluation(
            {split: read_examples_dir(ctx.inputs["examples"].uri, split)},
            settings,
            out,
            model_path=serving_model_dir(model.uri) if model is not None else None,
            baseline_model_path=serving_model_dir(baseline.uri) if baseline is not None else None,
            signature=p["signature"],
            beam_args=ctx.beam_args,
        )
        verdict = BLESSED if report["blessed"] else NOT_BLESSED
        shutil.copyfile(
            os.path.join(out, BLESSING_DIR, verdict),
            os.path.join(ctx.outputs["blessing"].uri, verdict),
        )
        overall = report["metrics"][0]["metrics"]
        summary = {
            k: overall[k] for k in ("example_count", "auc", "binary_accuracy") if k in overall
        }
        return {"evaluation": {"overall": json.dumps(summary)}, "blessing": {"blessed": verdict}}

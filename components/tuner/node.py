"""Tuner as a pipeline component."""

from __future__ import annotations

from conveyor.components.trainer import (
    check_user_settings,
    is_deferred,
    parse_custom_config,
    resolve_splits_and_steps,
    resolve_user_function,
)
from conveyor.dsl import Component, InputSpec, PipelineDefinitionError, layout
from conveyor.dsl.artifacts import Artifact

#: The trials file in a TunerResults artifact.
TUNER_RESULTS_FILE = "tuner_results.json"


class TunerResults(Artifact):
    """TFX's TunerResults: every trial of a search (``tuner_results.json``: a list of
    ``{"trial_id", "status", "score", "hyperparameters"}``, in the tuner's order)."""

    TYPE_NAME = "TunerResults"


class Tuner(Component):
    """Searches hyperparameters with the user's ``tuner_fn``: TFX's Tuner.

    ``tuner_fn(fn_args)`` returns a :class:`~conveyor.components.tuner.TunerFnResult`
    (a KerasTuner tuner and the arguments of its ``search``); the node runs the
    search and writes the best trial's hyperparameters. Inputs: ``examples``
    (usually Transform's transformed examples), optional ``schema``,
    ``transform_graph`` and ``base_model``. Outputs: ``tuner_results`` (every
    trial, :class:`TunerResults`) and ``best_hyperparameters`` (a
    HyperParameters artifact: ``best_hyperparameters.txt``, the JSON of
    ``HyperParameters.get_config()``, as TFX writes it), which a Trainer's
    ``hyperparameters`` input reads; its properties ``best_score`` and
    ``trials`` say how the search went.

    Parameters, as the Trainer's: ``module_file`` (its ``tuner_fn``, or the
    function ``tuner_fn`` names) or ``tuner_fn`` as TFX's Python path;
    ``train_args`` / ``eval_args`` (``{"splits": [...], "num_steps": N}``, or
    ``train_split`` / ``train_steps``...); ``tune_args`` (TFX's ``TuneArgs``:
    trials run one at a time, so ``num_parallel_trials`` above 1 is refused);
    ``custom_config``. The tuner's trials go to ``fn_args.working_dir``, a
    temporary folder removed after the execution (TFX's too). The module file's
    contents are part of the cache key.

    Example::

        tuner = Tuner(module_file="penguin_utils.py",
                      examples=transform.outputs["transformed_examples"],
                      transform_graph=transform.outputs["transform_graph"],
                      train_args={"num_steps": 20}, eval_args={"num_steps": 5})
        trainer = Trainer(module_file="penguin_utils.py",
                          examples=transform.outputs["transformed_examples"],
                          transform_graph=transform.outputs["transform_graph"],
                          hyperparameters=tuner.outputs["best_hyperparameters"])
    """

    INPUTS = {
        "examples": InputSpec("Examples"),
        "schema": InputSpec("Schema", optional=True),
        "transform_graph": InputSpec("TransformGraph", optional=True),
        "base_model": InputSpec("Model", optional=True),
    }
    OUTPUTS = {"best_hyperparameters": "HyperParameters", "tuner_results": "TunerResults"}
    PARAMETERS = {
        "module_file": None,
        "tuner_fn": "tuner_fn",
        "train_args": None,
        "eval_args": None,
        "train_split": "train",
        "eval_split": "eval",
        "train_steps": None,
        "eval_steps": None,
        "tune_args": None,
        "custom_config": None,
    }
    FILE_PARAMETERS = ("module_file",)

    def __init__(self, id: str | None = None, beam_args=None, **kwargs):
        super().__init__(id=id, beam_args=beam_args, **kwargs)
        check_user_settings(self, "tuner_fn")
        tune_args = self.parameters["tune_args"]
        if tune_args is not None and not is_deferred(tune_args):
            self.parameters["tune_args"] = _tune_args(tune_args, self.id)

    def execute(self, ctx):
        from conveyor.beam_utils.io import read_examples_dir
        from conveyor.components.tuner.component import run_tuner

        p = ctx.parameters
        module_file, tuner_fn = resolve_user_function(
            self.id, p["module_file"], p["tuner_fn"], "tuner_fn"
        )
        if p["tune_args"] is not None:
            _tune_args(p["tune_args"], self.id)
        train = resolve_splits_and_steps(p, "train", "train")
        evaluation = resolve_splits_and_steps(p, "eval", "eval")
        schema = ctx.inputs.get("schema")
        graph = ctx.inputs.get("transform_graph")
        base = ctx.inputs.get("base_model")
        uris = [a.uri for a in ctx.input_lists["examples"]]
        examples = uris[0] if len(uris) == 1 else uris
        splits = sorted({s for uri in uris for s in layout.examples_splits(uri)})
        summary = run_tuner(
            {s: read_examples_dir(examples, s) for s in splits},
            ctx.outputs["best_hyperparameters"].uri,
            module_file,
            tuner_fn_name=tuner_fn,
            transform_graph_dir=graph.uri if graph is not None else None,
            schema_path=layout.schema_path(schema.uri) if schema is not None else None,
            train_split=train.splits,
            eval_split=evaluation.splits,
            train_steps=train.num_steps,
            eval_steps=evaluation.num_steps,
            custom_config=parse_custom_config(p["custom_config"]),
            base_model=layout.serving_model_dir(base.uri) if base is not None else None,
        )
        import json
        import os

        results = ctx.outputs["tuner_results"].uri
        os.makedirs(results, exist_ok=True)
        with open(os.path.join(results, TUNER_RESULTS_FILE), "w") as f:
            json.dump(summary["trials"], f, indent=2)
        properties = {"trials": len(summary["trials"])}
        if summary["best_score"] is not None:
            properties["best_score"] = summary["best_score"]
        return {
            "best_hyperparameters": properties,
            "tuner_results": {"trials": len(summary["trials"])},
        }


def _tune_args(value, node_id: str) -> dict:
    """TFX's ``TuneArgs`` (a dict, JSON text or message) as a dict; refuses parallel trials."""
    import json

    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise PipelineDefinitionError(f"{node_id}: tune_args is not JSON: {e}") from None
    if hasattr(value, "to_dict") and not isinstance(value, dict):
        value = value.to_dict()
    if not isinstance(value, dict):
        raise PipelineDefinitionError(
            f"{node_id}: tune_args is TFX's TuneArgs (a dict {{'num_parallel_trials': 1}}), "
            f"not {type(value).__name__}"
        )
    unknown = sorted(set(value) - {"num_parallel_trials"})
    if unknown:
        raise PipelineDefinitionError(
            f"{node_id}: tune_args has unknown field(s) {unknown} (TFX's: num_parallel_trials)"
        )
    trials = value.get("num_parallel_trials", 1) or 1
    if not isinstance(trials, int) or isinstance(trials, bool) or trials < 1:
        raise PipelineDefinitionError(
            f"{node_id}: tune_args.num_parallel_trials is a whole number >= 1, not {trials!r}"
        )
    if trials > 1:
        raise PipelineDefinitionError(
            f"{node_id}: tune_args.num_parallel_trials={trials}: Conveyor's Tuner runs one "
            "trial at a time"
        )
    return {"num_parallel_trials": trials}

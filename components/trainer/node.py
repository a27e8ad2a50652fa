"""Trainer as a pipeline component."""

from __future__ import annotations

from conveyor.components.trainer.settings import (
    check_user_settings,
    hyperparameters_config,
    is_deferred,
    parse_custom_config,
    resolve_splits_and_steps,
    resolve_user_function,
)
from conveyor.dsl import Channel, Component, InputSpec, layout


class Trainer(Component):
    """Trains a model with the user's ``run_fn``: TFX's Trainer.

    Inputs: ``examples`` (usually Transform's transformed examples),
    optional ``transform_graph``, ``schema``, ``base_model`` (a Model to
    warm-start from: ``fn_args.base_model`` is its ``Format-Serving`` folder,
    None without one, e.g. when a Resolver found no model yet) and
    ``hyperparameters`` (a Tuner's ``best_hyperparameters``:
    ``fn_args.hyperparameters`` is its ``keras_tuner.HyperParameters`` config).
    Outputs: ``model`` (the SavedModel in ``Format-Serving/``) and ``model_run``
    (logs). Several Examples artifacts on ``examples`` (a Resolver's spans) are
    one input: ``fn_args.train_files`` and ``eval_files`` hold the split's file
    pattern of each.

    Parameters: ``module_file`` (its ``run_fn``, or the function ``run_fn``
    names), or no module file and ``run_fn`` as TFX's Python path
    (``"my_pkg.model.run_fn"``); ``train_args`` / ``eval_args`` (TFX's
    ``TrainArgs`` / ``EvalArgs``: a dict ``{"splits": [...], "num_steps": N}``,
    JSON text or a ``conveyor.tfx.proto`` message; default splits train / eval),
    or the older ``train_split`` / ``eval_split`` / ``train_steps`` /
    ``eval_steps``; ``custom_config``; ``hyperparameters`` given as a value (a
    ``keras_tuner.HyperParameters``, its config or plain values) rather than a
    channel. The module file's contents are part of the cache key.

    Example::

        trainer = Trainer(module_file="penguin_utils.py",
                          examples=transform.outputs["transformed_examples"],
                          transform_graph=transform.outputs["transform_graph"],
                          hyperparameters=tuner.outputs["best_hyperparameters"],
                          train_args={"num_steps": 100}, eval_args={"num_steps": 5},
                          custom_config={"epochs": 2})

    Warm start from the latest model this Trainer made (none on the first run)::

        latest = Resolver(strategy_class=LatestArtifactStrategy,
                          model=Channel(type="Model", producer_component_id="Trainer"),
                          ).with_id("latest_model_resolver")
        trainer = Trainer(module_file="flights_utils.py", examples=...,
                          base_model=latest.outputs["model"])
    """

    INPUTS = {
        "examples": InputSpec("Examples"),
        "transform_graph": InputSpec("TransformGraph", optional=True),
        "schema": InputSpec("Schema", optional=True),
        "base_model": InputSpec("Model", optional=True),
        "hyperparameters": InputSpec("HyperParameters", optional=True),
    }
    OUTPUTS = {"model": "Model", "model_run": "ModelRun"}
    PARAMETERS = {
        "module_file": None,
        "run_fn": "run_fn",
        "train_args": None,
        "eval_args": None,
        "train_split": "train",
        "eval_split": "eval",
        "train_steps": None,
        "eval_steps": None,
        "custom_config": None,
        "hyperparameters": None,
    }
    FILE_PARAMETERS = ("module_file",)
    #: The name of the user's function in a module file, and its TFX argument.
    USER_FUNCTION = "run_fn"

    def __init__(self, id: str | None = None, beam_args=None, hyperparameters=None, **kwargs):
        channel = hyperparameters if isinstance(hyperparameters, Channel) else None
        super().__init__(id=id, beam_args=beam_args, hyperparameters=channel, **kwargs)
        if hyperparameters is not None and channel is None:
            self.parameters["hyperparameters"] = (
                hyperparameters
                if is_deferred(hyperparameters)
                else hyperparameters_config(hyperparameters, f"{self.id}: hyperparameters")
            )
        check_user_settings(self, self.USER_FUNCTION)

    def execute(self, ctx):
        from conveyor.beam_utils.io import read_examples_dir
        from conveyor.components.trainer.component import run_trainer
        from conveyor.components.trainer.fn_args import read_hyperparameters

        p = ctx.parameters
        module_file, run_fn = resolve_user_function(
            self.id, p["module_file"], p["run_fn"], "run_fn"
        )
        train = resolve_splits_and_steps(p, "train", "train")
        evaluation = resolve_splits_and_steps(p, "eval", "eval")
        schema = ctx.inputs.get("schema")
        graph = ctx.inputs.get("transform_graph")
        base = ctx.inputs.get("base_model")
        tuned = ctx.inputs.get("hyperparameters")
        hyperparameters = None
        if tuned is not None:
            hyperparameters = read_hyperparameters(tuned.uri)
        elif p["hyperparameters"] is not None:
            hyperparameters = hyperparameters_config(p["hyperparameters"])
        # Several Examples artifacts (a Resolver's spans) are one input: run_fn gets each split's
        # file patterns of all of them (fn_args.train_files holds one per artifact).
        uris = [a.uri for a in ctx.input_lists["examples"]]
        examples = uris[0] if len(uris) == 1 else uris
        splits = sorted({s for uri in uris for s in layout.examples_splits(uri)})
        summary = run_trainer(
            {s: read_examples_dir(examples, s) for s in splits},
            ctx.outputs["model"].uri,
            module_file,
            model_run_dir=ctx.outputs["model_run"].uri,
            transform_graph_dir=graph.uri if graph is not None else None,
            schema_path=layout.schema_path(schema.uri) if schema is not None else None,
            train_split=train.splits,
            eval_split=evaluation.splits,
            train_steps=train.num_steps,
            eval_steps=evaluation.num_steps,
            custom_config=parse_custom_config(p["custom_config"]),
            run_fn_name=run_fn,
            base_model=layout.serving_model_dir(base.uri) if base is not None else None,
            hyperparameters=hyperparameters,
        )  # writes the summary (trainer_summary.json) in model_run
        return {"model": {"signature": summary["signature"]}}

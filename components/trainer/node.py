"""Trainer as a pipeline component."""

from __future__ import annotations

from conveyor.dsl import REQUIRED, Component, InputSpec, layout


class Trainer(Component):
    """Trains a model with the user's ``run_fn`` from ``module_file``.

    Inputs: ``examples`` (usually Transform's transformed examples),
    optional ``transform_graph``, ``schema`` and ``base_model`` (a Model to
    warm-start from: ``fn_args.base_model`` is its ``Format-Serving`` folder,
    None without one, e.g. when a Resolver found no model yet). Outputs: ``model`` (the
    SavedModel in ``Format-Serving/``) and ``model_run`` (logs). The module
    file's contents are part of the cache key. Several Examples artifacts on
    ``examples`` (a Resolver's spans) are one input: ``fn_args.train_files``
    and ``eval_files`` hold the split's file pattern of each.

    Example::

        trainer = Trainer(module_file="flights_utils.py",
                          examples=transform.outputs["transformed_examples"],
                          transform_graph=transform.outputs["transform_graph"],
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
    }
    OUTPUTS = {"model": "Model", "model_run": "ModelRun"}
    PARAMETERS = {
        "module_file": REQUIRED,
        "run_fn": "run_fn",
        "train_split": "train",
        "eval_split": "eval",
        "train_steps": None,
        "eval_steps": None,
        "custom_config": None,
    }
    FILE_PARAMETERS = ("module_file",)

    def execute(self, ctx):
        from conveyor.beam_utils.io import read_examples_dir
        from conveyor.components.trainer.component import run_trainer

        p = ctx.parameters
        schema = ctx.inputs.get("schema")
        schema_path = None
        if schema is not None:
            schema_path = layout.schema_path(schema.uri)
        graph = ctx.inputs.get("transform_graph")
        base = ctx.inputs.get("base_model")
        # Several Examples artifacts (a Resolver's spans) are one input: run_fn gets each split's
        # file patterns of all of them (fn_args.train_files holds one per artifact).
        uris = [a.uri for a in ctx.input_lists["examples"]]
        examples = uris[0] if len(uris) == 1 else uris
        splits = sorted({s for uri in uris for s in layout.examples_splits(uri)})
        summary = run_trainer(
            {s: read_examples_dir(examples, s) for s in splits},
            ctx.outputs["model"].uri,
            p["module_file"],
            model_run_dir=ctx.outputs["model_run"].uri,
            transform_graph_dir=graph.uri if graph is not None else None,
            schema_path=schema_path,
            train_split=p["train_split"],
            eval_split=p["eval_split"],
            train_steps=p["train_steps"],
            eval_steps=p["eval_steps"],
            custom_config=p["custom_config"],
            run_fn_name=p["run_fn"],
            base_model=layout.serving_model_dir(base.uri) if base is not None else None,
        )  # writes the summary (trainer_summary.json) in model_run
        return {"model": {"signature": summary["signature"]}}

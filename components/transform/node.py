"""Transform as a pipeline component."""

from __future__ import annotations

import json
import os

from conveyor.dsl import REQUIRED, Component, InputSpec, layout


class Transform(Component):
    """Analyzes the train split with the user's ``preprocessing_fn`` and transforms every split.

    Outputs: ``transform_graph`` (``transform_fn/`` and ``transformed_metadata/``,
    readable with ``tft.TFTransformOutput``), ``transformed_examples``
    (``Split-<name>/transformed_examples-*.gz``) and ``updated_analyzer_cache``,
    which a later execution reuses so unchanged train data is not analyzed again
    (the ``analyzer_cache`` input, TFX's, names the cache to start from instead:
    a Resolver's latest ``updated_analyzer_cache``, say).
    The ``transform_graph`` artifact's ``analysis`` property says how its
    analyzers were found: ``"computed"`` (the train split was analyzed) or
    ``"cached"`` (every analyzer came from the previous execution's cache).
    Several Examples artifacts on ``examples`` (a Resolver's spans) are read as
    one: the analysis covers the train split of all of them, and each split's
    transformed examples hold that split of all of them.

    Example::

        transform = Transform(examples=gen.outputs["examples"], schema=schema_gen.outputs["schema"],
                              module_file="flights_utils.py")
    """

    INPUTS = {
        "examples": InputSpec("Examples"),
        "schema": InputSpec("Schema", optional=True),
        "analyzer_cache": InputSpec("TransformCache", optional=True),
    }
    OUTPUTS = {
        "transform_graph": "TransformGraph",
        "transformed_examples": "Examples",
        "updated_analyzer_cache": "TransformCache",
    }
    PARAMETERS = {
        "module_file": REQUIRED,
        "preprocessing_fn": "preprocessing_fn",
        "train_split": "train",
        # Splits whose transformed examples are written (TFX's splits_config.transform_splits);
        # empty: every split.
        "transform_splits": [],
    }
    FILE_PARAMETERS = ("module_file",)

    def execute(self, ctx):
        """Runs :func:`~conveyor.components.transform.component.run_transform` into the outputs."""
        import shutil

        from conveyor.beam_utils.errors import UsageError
        from conveyor.beam_utils.io import read_examples_dir
        from conveyor.beam_utils.proto_io import read_schema
        from conveyor.components.transform.component import (
            SUMMARY_FILE,
            TRANSFORM_GRAPH_DIR,
            TRANSFORMED_EXAMPLES_DIR,
            run_transform,
        )
        from conveyor.components.transform.user_fn import load_preprocessing_fn

        p = ctx.parameters
        # Several Examples artifacts (a Resolver's spans) are one input: each split reads them all.
        uris = [a.uri for a in ctx.input_lists["examples"]]
        examples = uris[0] if len(uris) == 1 else uris
        splits = sorted({s for uri in uris for s in layout.examples_splits(uri)})
        wanted = list(p.get("transform_splits") or [])
        missing = [s for s in wanted if s not in splits]
        if missing:
            raise UsageError(
                f"Transform: transform_splits names {missing}, which the examples do not have "
                f"(splits: {', '.join(splits)})"
            )
        if wanted:
            # The analyzed split is read even when it is not to be transformed.
            splits = sorted({*wanted, p["train_split"]} & set(splits))
        readers = {s: read_examples_dir(examples, s) for s in splits}
        schema = None
        if "schema" in ctx.inputs:
            schema = read_schema(layout.schema_path(ctx.inputs["schema"].uri))
        fn = load_preprocessing_fn(p["module_file"], p["preprocessing_fn"])
        cache = ctx.outputs["updated_analyzer_cache"].uri
        previous = _previous_cache(ctx)
        if previous:
            shutil.copytree(previous, cache, dirs_exist_ok=True)
        work = os.path.join(ctx.outputs["transform_graph"].uri, ".work")
        summary = run_transform(
            readers,
            work,
            fn,
            schema=schema,
            train_split=p["train_split"],
            cache_dir=cache,
            beam_args=ctx.beam_args,
        )
        # run_transform writes TFX's two folders; each becomes its own artifact.
        graph, examples_out = (
            ctx.outputs["transform_graph"].uri,
            ctx.outputs["transformed_examples"].uri,
        )
        for name in os.listdir(os.path.join(work, TRANSFORM_GRAPH_DIR)):
            os.replace(os.path.join(work, TRANSFORM_GRAPH_DIR, name), os.path.join(graph, name))
        for name in os.listdir(os.path.join(work, TRANSFORMED_EXAMPLES_DIR)):
            os.replace(
                os.path.join(work, TRANSFORMED_EXAMPLES_DIR, name), os.path.join(examples_out, name)
            )
        summary_path = os.path.join(work, SUMMARY_FILE)
        if os.path.exists(summary_path):
            os.replace(summary_path, os.path.join(graph, SUMMARY_FILE))
        shutil.rmtree(work, ignore_errors=True)
        for split in layout.examples_splits(examples_out):
            if wanted and split not in wanted:
                shutil.rmtree(layout.split_uri(examples_out, split))
        splits = sorted(layout.examples_splits(examples_out))
        return {
            "transformed_examples": {"split_names": json.dumps(splits)},
            "transform_graph": {"analysis": "computed" if summary["analyzed"] else "cached"},
        }


def _previous_cache(ctx) -> str | None:
    """The ``analyzer_cache`` input's folder if given, else the newest analyzer cache an
    earlier execution of this component published."""
    if "analyzer_cache" in ctx.inputs:
        return ctx.inputs["analyzer_cache"].uri
    folder = os.path.dirname(ctx.outputs["updated_analyzer_cache"].uri)
    done = [n for n in os.listdir(folder) if n.isdigit()] if os.path.isdir(folder) else []
    if not done:
        return None
    return os.path.join(folder, max(done, key=int))

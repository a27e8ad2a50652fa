"""StatisticsGen as a pipeline component."""

from __future__ import annotations

import json

from conveyor.dsl import Component, InputSpec, layout


class StatisticsGen(Component):
    """Computes statistics of every split: ``Split-<name>/FeatureStats.pb`` (TFX's layout).

    Parameters: ``slice_by`` (columns), ``weight_feature``, ``bytes_features``.
    Several Examples artifacts on ``examples`` (a Resolver's SpanRangeStrategy
    gives several spans) are read as one: each split's statistics cover that
    split of every one of them.

    Example::

        stats = StatisticsGen(examples=gen.outputs["examples"], slice_by=["carrier"])
    """

    INPUTS = {"examples": InputSpec("Examples")}
    OUTPUTS = {"statistics": "ExampleStatistics"}
    PARAMETERS = {"slice_by": (), "weight_feature": None, "bytes_features": ()}

    def execute(self, ctx):
        from conveyor.beam_utils.io import read_examples_dir
        from conveyor.components.statistics.component import run_statistics
        from conveyor.components.statistics.options import StatsOptions

        p = ctx.parameters
        # Several Examples artifacts (a Resolver's spans) are one input: each split reads them all.
        uris = [a.uri for a in ctx.input_lists["examples"]]
        examples = uris[0] if len(uris) == 1 else uris
        splits = sorted({s for uri in uris for s in layout.examples_splits(uri)})
        reads = {s: read_examples_dir(examples, s) for s in splits}
        options = StatsOptions(
            weight_feature=p["weight_feature"],
            slice_by=list(p["slice_by"]),
            bytes_features=list(p["bytes_features"]),
        )
        run_statistics(reads, ctx.outputs["statistics"].uri, options, ctx.beam_args)
        return {"statistics": {"split_names": json.dumps(sorted(reads))}}

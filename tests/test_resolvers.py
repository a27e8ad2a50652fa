"""Resolvers, the Importer, inputs of several artifacts and typed ML Metadata properties.

Small components (no TensorFlow) run in process over several runs of a
pipeline sharing one ML Metadata store; one test goes through `conveyor run`
and one through a real StatisticsGen over two small CSV spans.
"""

import json
import os

import pytest
from orchestration_components import CsvExamples

from conveyor.dsl import (
    ArtifactStore,
    Channel,
    Component,
    Importer,
    InputSpec,
    LatestArtifactStrategy,
    LatestBlessedModelStrategy,
    Pipeline,
    PipelineDefinitionError,
    Resolver,
    SpanRangeStrategy,
)
from conveyor.dsl.artifacts import Artifact
from conveyor.orchestration import LocalDagRunner, Metadata, PipelineRunError
from conveyor.orchestration.launcher import cache_key
from conveyor.orchestration.metadata import sqlite_config

# -- small components -----------------------------------------------------------------


class Train(Component):
    """A Model whose ``tag`` property says which run made it."""

    INPUTS = {"base_model": InputSpec("Model", optional=True)}
    OUTPUTS = {"model": "Model"}
    PARAMETERS = {"tag": 0}

    def execute(self, ctx):
        with open(os.path.join(ctx.outputs["model"].uri, "tag"), "w") as f:
            f.write(str(ctx.parameters["tag"]))
        return {"model": {"tag": ctx.parameters["tag"]}}


class Evaluate(Component):
    """A ModelBlessing of its model: ``blessed`` 1/0 (or the old "BLESSED" strings), with the
    model's id in ``current_model_id`` unless ``record_model_id`` is False (lineage then)."""

    INPUTS = {"model": InputSpec("Model")}
    OUTPUTS = {"blessing": "ModelBlessing"}
    PARAMETERS = {"blessed": True, "record_model_id": True, "legacy": False}

    def execute(self, ctx):
        p = ctx.parameters
        open(
            os.path.join(ctx.outputs["blessing"].uri, "BLESSED" if p["blessed"] else "NOT_BLESSED"),
            "w",
        ).close()
        if p["legacy"]:
            props = {"blessed": "BLESSED" if p["blessed"] else "NOT_BLESSED"}
        else:
            props = {"blessed": int(p["blessed"])}
        if p["record_model_id"]:
            props["current_model_id"] = ctx.inputs["model"].id
        return {"blessing": props}


def _describe(artifacts):
    return [
        {k: a.properties[k] for k in ("tag", "span", "version") if k in a.properties}
        for a in artifacts
    ]


class Record(Component):
    """Writes what its inputs held: every artifact's properties, and the first one's."""

    INPUTS = {"models": InputSpec("Model", optional=True)}
    OUTPUTS = {"report": "ModelEvaluation"}
    PARAMETERS = {"run": 0}

    def execute(self, ctx):
        report = {
            "lists": {k: _describe(v) for k, v in ctx.input_lists.items()},
            "first": {k: _describe([a])[0] for k, a in ctx.inputs.items()},
        }
        with open(os.path.join(ctx.outputs["report"].uri, "report.json"), "w") as f:
            json.dump(report, f)


class RecordRequired(Record):
    INPUTS = {"models": InputSpec("Model")}


class RecordExamples(Record):
    INPUTS = {"examples": InputSpec("Examples")}


class SpanExamples(Component):
    """An Examples artifact with ``span`` (and ``version``) properties, as ExampleGen records them."""

    OUTPUTS = {"examples": "Examples"}
    PARAMETERS = {"span": None, "version": None}

    def execute(self, ctx):
        open(os.path.join(ctx.outputs["examples"].uri, "data"), "w").close()
        props = {k: ctx.parameters[k] for k in ("span", "version") if ctx.parameters[k] is not None}
        return {"examples": props}


class ReadSchema(Component):
    """Reads an imported Schema folder's file."""

    INPUTS = {"schema": InputSpec("Schema")}
    OUTPUTS = {"statistics": "ExampleStatistics"}

    def execute(self, ctx):
        with open(os.path.join(ctx.inputs["schema"].uri, "schema.pbtxt")) as f:
            text = f.read()
        with open(os.path.join(ctx.outputs["statistics"].uri, "copy.pbtxt"), "w") as f:
            f.write(text)


class InfraValidate(Component):
    """An InfraBlessing of its model, as the InfraValidator records one: the ``INFRA_BLESSED`` or
    ``INFRA_NOT_BLESSED`` marker and ``blessed`` 1/0 (no property with ``markers_only``: the
    marker then decides). The model is known by lineage only (its ``model`` input)."""

    INPUTS = {"model": InputSpec("Model")}
    OUTPUTS = {"blessing": "InfraBlessing"}
    PARAMETERS = {"blessed": True, "markers_only": False}

    def execute(self, ctx):
        p = ctx.parameters
        marker = "INFRA_BLESSED" if p["blessed"] else "INFRA_NOT_BLESSED"
        open(os.path.join(ctx.outputs["blessing"].uri, marker), "w").close()
        return {"blessing": {} if p["markers_only"] else {"blessed": int(p["blessed"])}}


class RangeExamples(Component):
    """An Examples artifact with the properties given (``spans``/``versions`` as an ExampleGen
    that read a range records them)."""

    OUTPUTS = {"examples": "Examples"}
    PARAMETERS = {"properties": None}

    def execute(self, ctx):
        open(os.path.join(ctx.outputs["examples"].uri, "data"), "w").close()
        return {"examples": dict(ctx.parameters["properties"])}


def _run(pipeline, **kwargs):
    return LocalDagRunner(quiet=True, in_process=True).run(pipeline, **kwargs)


def _report(pipeline, result, component_id="Record"):
    md = Metadata(pipeline.metadata_path)
    out = md.latest_outputs(pipeline.name, result["run_id"], component_id)["report"]
    with open(os.path.join(out.uri, "report.json")) as f:
        return json.load(f)


def _states(pipeline, result):
    md = Metadata(pipeline.metadata_path)
    return {r["component_id"]: r["state"] for r in md.run_status(pipeline.name, result["run_id"])}


# -- definitions ------------------------------------------------------------------------


class ModelType:
    TYPE_NAME = "Model"


def test_channel_forms_and_definition_errors():
    train = Train()
    out = train.outputs["model"]
    assert (out.producer, out.key, out.type_name) == (train, "model", "Model")
    assert out.bound and out.producer_component_id == "Train" and out.output_key == "model"
    assert train.with_id("trainer") is train and out.producer_component_id == "trainer"
    legacy = Channel(train, "model", "Model")  # the old positional form still works
    assert legacy == out and hash(legacy) == hash(out)

    standalone = Channel(type="Model", producer_component_id="trainer", output_key="model")
    assert not standalone.bound and standalone.producer is None
    assert (standalone.type_name, standalone.key) == ("Model", "model")
    assert (
        Channel(type=ModelType).type_name == "Model" and Channel(type=ModelType).type is ModelType
    )
    assert (
        repr(standalone)
        == "Channel(type=Model, producer_component_id='trainer', output_key='model')"
    )
    with pytest.raises(PipelineDefinitionError, match="unknown artifact type 'Modle'"):
        Channel(type="Modle")
    with pytest.raises(PipelineDefinitionError, match="only a Resolver takes one"):
        Record(models=Channel(type="Model"))

    resolver = Resolver(
        strategy_class=LatestArtifactStrategy,
        config={"desired_num_of_artifacts": 2},
        model=standalone,
    ).with_id("latest_model")
    assert resolver.id == "latest_model" and resolver.upstream == []
    assert resolver.outputs["model"].type_name == "Model"
    assert resolver.outputs["model"].producer is resolver
    rec = Record(models=resolver.outputs["model"])
    assert rec.upstream == [resolver]
    # A component's output on a resolver makes it wait for that component.
    assert Resolver(strategy_class=LatestArtifactStrategy, model=out).upstream == [train]

    with pytest.raises(PipelineDefinitionError, match="does not take config"):
        Resolver(strategy_class=LatestArtifactStrategy, config={"n": 1}, model=standalone)
    with pytest.raises(
        PipelineDefinitionError, match="desired_num_of_artifacts must be a positive"
    ):
        Resolver(
            strategy_class=LatestArtifactStrategy,
            config={"desired_num_of_artifacts": 0},
            model=standalone,
        )
    with pytest.raises(PipelineDefinitionError, match="needs a channel 'model_blessing'"):
        Resolver(strategy_class=LatestBlessedModelStrategy, model=standalone)
    with pytest.raises(PipelineDefinitionError, match="strategy_class must be a ResolverStrategy"):
        Resolver(strategy_class="latest", model=standalone)
    with pytest.raises(
        PipelineDefinitionError, match="static_range or rolling_range|one of static_range"
    ):
        Resolver(
            strategy_class=SpanRangeStrategy,
            config={"range_config": {}},
            examples=Channel(type="Examples"),
        )
    with pytest.raises(PipelineDefinitionError, match="start_span_number <= end_span_number"):
        SpanRangeStrategy({"static_range": {"start_span_number": 3, "end_span_number": 1}})


class _FakeStore:
    """An ArtifactStore without ML Metadata: what a strategy may rely on, and nothing more."""

    def __init__(self, inputs_of=None):
        self.inputs_of = inputs_of or {}

    def artifacts(self, type_name, producer_component_id=None, output_key=None):
        return []

    def producer_inputs(self, artifact_id):
        return self.inputs_of.get(artifact_id, {})


def test_strategies_over_a_store_interface():
    assert isinstance(_FakeStore(), ArtifactStore)
    models = [Artifact("Model", f"m{i}", i, {"tag": i}) for i in (1, 2, 3)]
    latest = LatestArtifactStrategy(desired_num_of_artifacts=2).resolve_artifacts(
        _FakeStore(), {"model": models}
    )
    assert [a.id for a in latest["model"]] == [3, 2]  # newest first

    blessings = [
        Artifact("ModelBlessing", "b1", 11, {"blessed": 1, "current_model_id": 1}),
        Artifact("ModelBlessing", "b2", 12, {"blessed": "BLESSED"}),  # the old string, lineage
        Artifact("ModelBlessing", "b3", 13, {"blessed": 0, "current_model_id": 3}),
    ]
    store = _FakeStore({12: {"model": [models[1]], "examples": []}})
    got = LatestBlessedModelStrategy().resolve_artifacts(
        store, {"model": models, "model_blessing": blessings}
    )
    assert [a.id for a in got["model"]] == [2] and [a.id for a in got["model_blessing"]] == [12]
    nothing = LatestBlessedModelStrategy().resolve_artifacts(
        _FakeStore(), {"model": models, "model_blessing": blessings[2:]}
    )
    assert nothing == {"model": [], "model_blessing": []}

    examples = [
        Artifact("Examples", "e1", 1, {"span": 1}),
        Artifact("Examples", "e2", 2, {"span": 2, "version": 0}),
        Artifact("Examples", "e3", 3, {"span": 3}),
        Artifact("Examples", "e2v1", 4, {"span": 2, "version": 1}),
        Artifact("Examples", "e2v0again", 5, {"span": 2, "version": 0}),  # newer, older version
        Artifact("Examples", "nospan", 6, {}),
    ]
    static = SpanRangeStrategy({"static_range": {"start_span_number": 1, "end_span_number": 2}})
    assert [a.uri for a in static.resolve_artifacts(store, {"e": examples})["e"]] == ["e1", "e2v1"]
    rolling = SpanRangeStrategy({"rolling_range": {"num_spans": 2}})
    assert [a.uri for a in rolling.resolve_artifacts(store, {"e": examples})["e"]] == ["e2v1", "e3"]
    skip = SpanRangeStrategy({"rolling_range": {"num_spans": 1, "skip_num_recent_spans": 1}})
    assert [a.uri for a in skip.resolve_artifacts(store, {"e": examples})["e"]] == ["e2v1"]


class _BatchStore(_FakeStore):
    """A _FakeStore that also answers ``producer_inputs_by_id`` (as Metadata does), counting calls."""

    def __init__(self, inputs_of=None):
        super().__init__(inputs_of)
        self.batches, self.singles = [], 0

    def producer_inputs(self, artifact_id):
        self.singles += 1
        return super().producer_inputs(artifact_id)

    def producer_inputs_by_id(self, artifact_ids):
        self.batches.append(sorted(artifact_ids))
        return {i: self.inputs_of.get(i, {}) for i in artifact_ids}


def _infra(aid, blessed):
    return Artifact("InfraBlessing", f"infra{aid}", aid, {"blessed": int(blessed)})


def test_latest_blessed_model_strategy_with_an_infra_blessing():
    models = [Artifact("Model", f"m{i}", i) for i in (1, 2, 3)]
    blessings = [
        Artifact("ModelBlessing", f"b{i}", 10 + i, {"blessed": 1, "current_model_id": i})
        for i in (1, 2, 3)
    ]
    # Model 3: blessed, not infra-blessed; model 2: both (two infra blessings: the newer wins);
    # model 1: both. An InfraBlessing names its model by lineage only.
    infra = [_infra(21, True), _infra(22, True), _infra(23, False), _infra(24, True)]
    lineage = {i.id: {"model": [models[m - 1]]} for i, m in zip(infra, (1, 2, 3, 2))}
    strategy = LatestBlessedModelStrategy()
    inputs = {"model": models, "model_blessing": blessings, "model_infra_blessing": infra}
    store = _BatchStore(lineage)
    got = strategy.resolve_artifacts(store, inputs)
    assert {k: [a.id for a in v] for k, v in got.items()} == {
        "model": [2],
        "model_blessing": [12],
        "model_infra_blessing": [24],
    }
    # The infra blessings' models were looked up in one batch (the infra-blessed ones only).
    assert store.batches == [[21, 22, 24]] and store.singles == 0
    # A store without the batch method: one producer_inputs call each.
    plain = _FakeStore(lineage)
    assert strategy.resolve_artifacts(plain, inputs) == got
    # Without the infra channel, as before: the newest blessed model.
    without = strategy.resolve_artifacts(store, {"model": models, "model_blessing": blessings})
    assert [a.id for a in without["model"]] == [3] and set(without) == {"model", "model_blessing"}

    # None infra-blessed (or no infra blessing at all): every output empty.
    none = {"model": [], "model_blessing": [], "model_infra_blessing": []}
    assert strategy.resolve_artifacts(store, {**inputs, "model_infra_blessing": infra[2:3]}) == none
    assert strategy.resolve_artifacts(store, {**inputs, "model_infra_blessing": []}) == none
    # Infra-blessed but not blessed by the Evaluator does not count either.
    assert strategy.resolve_artifacts(store, {**inputs, "model_blessing": blessings[2:]}) == none


def test_infra_blessing_verdict_from_markers(tmp_path):
    from conveyor.dsl.resolver import is_infra_blessed

    yes, no, empty = (tmp_path / n for n in ("yes", "no", "empty"))
    for folder, marker in ((yes, "INFRA_BLESSED"), (no, "INFRA_NOT_BLESSED"), (empty, None)):
        folder.mkdir()
        if marker:
            (folder / marker).write_text("")
    assert is_infra_blessed(Artifact("InfraBlessing", str(yes), 1))
    assert not is_infra_blessed(Artifact("InfraBlessing", str(no), 2))
    assert not is_infra_blessed(Artifact("InfraBlessing", str(empty), 3))  # no verdict
    assert not is_infra_blessed(Artifact("InfraBlessing", str(tmp_path / "gone"), 4))
    # The property wins over the markers; the strings too.
    assert not is_infra_blessed(Artifact("InfraBlessing", str(yes), 5, {"blessed": 0}))
    assert is_infra_blessed(Artifact("InfraBlessing", str(no), 6, {"blessed": "INFRA_BLESSED"}))


def test_latest_blessed_model_strategy_channel_errors():
    model, blessing = Channel(type="Model"), Channel(type="ModelBlessing")
    with pytest.raises(
        PipelineDefinitionError,
        match="channel 'model_infra_blessing' must be InfraBlessing, not ModelBlessing",
    ):
        Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=model,
            model_blessing=blessing,
            model_infra_blessing=Channel(type="ModelBlessing"),
        )
    with pytest.raises(
        PipelineDefinitionError, match="channel 'model' must be Model, not Examples"
    ):
        Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=Channel(type="Examples"),
            model_blessing=blessing,
        )
    with pytest.raises(
        PipelineDefinitionError, match="unknown channel 'infra_blessing' .*model_infra_blessing="
    ):
        Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=model,
            model_blessing=blessing,
            infra_blessing=Channel(type="InfraBlessing"),
        )
    ok = Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=model,
        model_blessing=blessing,
        model_infra_blessing=Channel(type="InfraBlessing"),
    )
    assert ok.outputs["model_infra_blessing"].type_name == "InfraBlessing"


def _ex(aid, **props):
    return Artifact("Examples", f"e{aid}", aid, props)


def _uris(strategy, examples):
    return [a.uri for a in strategy.resolve_artifacts(_FakeStore(), {"e": examples})["e"]]


def _rolling(n):
    return SpanRangeStrategy({"rolling_range": {"num_spans": n}})


def _static(a, b):
    return SpanRangeStrategy({"static_range": {"start_span_number": a, "end_span_number": b}})


def test_span_range_strategy_over_multi_span_artifacts():
    from conveyor.dsl.resolver import span_versions

    assert span_versions(_ex(1, span=4, spans="[3, 4]", versions="[0, 2]")) == {3: 0, 4: 2}
    assert span_versions(_ex(1, span=4, spans=[4, 3], version=1)) == {3: 1, 4: 1}
    assert span_versions(_ex(1, span=4)) == {4: 0} and span_versions(_ex(1)) == {}

    # An ExampleGen reading spans 1-2, then span 3 alone, then spans 3-4 (oldest first).
    a12 = _ex(1, span=2, spans="[1, 2]")
    b3 = _ex(2, span=3)
    c34 = _ex(3, span=4, spans="[3, 4]")
    history = [a12, b3, c34]
    # The rolling range counts spans (4 of them), not artifacts: the 2 highest are 3 and 4, and
    # c34 covers both (b3, older, shares span 3: left out so span 3 is read once).
    assert _uris(_rolling(2), history) == ["e3"]
    # Spans 1-3: a12 and b3 are inside; c34 reaches out to span 4: left out.
    assert _uris(_static(1, 3), history) == ["e1", "e2"]
    assert _uris(_static(2, 3), history) == ["e2"]  # a12 reaches out to span 1
    assert _uris(_rolling(4), history) == ["e1", "e3"]  # a12 and c34, in span order
    # Newest first: a span-3 artifact newer than c34 wins span 3, and c34 (sharing it) is left
    # out, so span 4 is not read: each span once, from the newest artifact.
    b3_again = _ex(4, span=3)
    assert _uris(_rolling(2), [*history, b3_again]) == ["e4"]

    # Daily windows of two spans: [1,2], [2,3], [3,4], [4,5].
    windows = [_ex(i, span=i + 1, spans=[i, i + 1]) for i in (1, 2, 3, 4)]
    assert _uris(_rolling(2), windows) == ["e4"]
    assert _uris(_rolling(4), windows) == ["e2", "e4"]  # spans 2-3 and 4-5, none twice
    assert _uris(_rolling(3), windows) == ["e4"]  # [3,4] shares span 4 with the newer [4,5]

    # The same spans read twice: the higher version (from the highest span down), then newest.
    older_v = _ex(1, span=4, spans="[3, 4]", versions="[0, 1]", version=1)
    newer_v = _ex(2, span=4, spans="[3, 4]", versions="[2, 0]", version=0)
    assert _uris(_rolling(2), [older_v, newer_v]) == ["e1"]
    same = _ex(3, span=4, spans="[3, 4]", versions="[0, 1]", version=1)
    assert _uris(_rolling(2), [older_v, newer_v, same]) == ["e3"]

    for bad, field in (
        (_ex(7, span=3, spans="3-4"), "'spans'"),
        (_ex(7, span=3, spans='["a"]'), "'spans'"),
        (_ex(7, span=4, spans="[3, 4]", versions="[1]"), "'versions'"),
    ):
        with pytest.raises(ValueError, match=f"Examples artifact 7 \\(e7\\): .*{field}"):
            _rolling(2).resolve_artifacts(_FakeStore(), {"e": [bad]})


def test_span_range_strategy_reads_example_gen_range_properties(tmp_path):
    from conveyor.components.example_gen.inputs import artifact_properties, resolve_input

    for span in (3, 4, 5):
        for version in (0, 1):
            folder = tmp_path / f"span-{span}" / f"v-{version}"
            folder.mkdir(parents=True)
            (folder / "data.csv").write_text("x\n1\n")
    config = {"splits": [{"name": "train", "pattern": "span-{SPAN}/v-{VERSION}/*"}]}
    summary = {"splits": {"train": 1}, "rows_read": 1, "rows_rejected": 0}

    def examples(aid, range_config):
        resolved = resolve_input(str(tmp_path), config, range_config)
        return _ex(aid, **artifact_properties(resolved, summary))

    both = examples(1, {"static_range": {"start_span_number": 3, "end_span_number": 4}})
    assert both.properties["spans"] == "[3, 4]" and both.properties["span"] == 4
    latest = examples(2, None)  # the latest span alone: 5
    from conveyor.dsl.resolver import span_versions

    assert span_versions(both) == {3: 1, 4: 1} and span_versions(latest) == {5: 1}
    assert _uris(_rolling(3), [both, latest]) == ["e1", "e2"]
    assert _uris(_rolling(2), [both, latest]) == ["e2"]  # spans 4-5: "both" reaches out to 3


def test_cache_key_counts_every_input_artifact():
    rec = Record()
    a1, a2 = Artifact("Model", "m1", 1), Artifact("Model", "m2", 2)
    one = cache_key(rec, {"models": a1}, [])
    assert cache_key(rec, {"models": [a1]}, []) == one  # a list of one is the single artifact
    assert cache_key(rec, {"models": [a1, a2]}, []) not in (
        one,
        cache_key(rec, {"models": [a2, a1]}, []),
    )


# -- strategies through pipeline runs --------------------------------------------------------


def test_latest_artifact_strategy_over_runs(tmp_path):
    root = str(tmp_path / "root")
    store = os.path.join(root, "metadata.sqlite")

    def pipeline(tag, producer="Train", name="ct"):
        train = Train(tag=tag)
        other = Train(tag=100 + tag).with_id("Other")  # Models from another component
        latest = Resolver(
            strategy_class=LatestArtifactStrategy,
            config={"desired_num_of_artifacts": 2},
            models=Channel(type="Model", producer_component_id=producer),
        ).with_id("latest_models")
        latest.add_upstream(train).add_upstream(other)  # this run's models count too
        record = Record(models=latest.outputs["models"])
        return Pipeline(name, root, [train, other, latest, record])

    first = pipeline(1)
    assert _report(first, _run(first))["lists"] == {"models": [{"tag": 1}]}
    p2 = pipeline(2)
    r2 = _report(p2, _run(p2))
    assert r2 == {"lists": {"models": [{"tag": 2}, {"tag": 1}]}, "first": {"models": {"tag": 2}}}
    # Models of another pipeline in the same store are not this pipeline's.
    elsewhere = Pipeline(
        "elsewhere",
        str(tmp_path / "other_root"),
        [Train(tag=50)],
        metadata_connection_config=sqlite_config(store),
    )
    _run(elsewhere)
    p3 = pipeline(3)
    result3 = _run(p3)
    assert _report(p3, result3)["lists"] == {"models": [{"tag": 3}, {"tag": 2}]}
    # Without producer_component_id, every component's Models of the pipeline count.
    anyone = pipeline(3, producer=None)
    assert _report(anyone, _run(anyone))["lists"] == {"models": [{"tag": 103}, {"tag": 3}]}
    # The same inputs again: Train is cached, the resolver resolves afresh (never cached) to
    # the same artifacts, and Record is cached on their ids.
    again = pipeline(3)
    result = _run(again)
    assert _states(again, result) == {
        "Train": "CACHED",
        "Other": "CACHED",
        "latest_models": "COMPLETE",
        "Record": "CACHED",
    }


def test_latest_blessed_model_strategy_over_runs(tmp_path):
    root = str(tmp_path / "root")

    def pipeline(tag, blessed, record_model_id=True, legacy=False):
        baseline = Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=Channel(type="Model", producer_component_id="Train"),
            model_blessing=Channel(type="ModelBlessing"),
        ).with_id("latest_blessed_model_resolver")
        train = Train(tag=tag, base_model=baseline.outputs["model"])
        evaluate = Evaluate(
            model=train.outputs["model"],
            blessed=blessed,
            record_model_id=record_model_id,
            legacy=legacy,
        )
        record = Record(models=baseline.outputs["model"], run=tag)
        return Pipeline("ct", root, [baseline, train, evaluate, record])

    def baseline_after(*args, **kwargs):
        p = pipeline(*args, **kwargs)
        return _report(p, _run(p))["lists"].get("models")

    # Run 1: nothing blessed yet: the optional inputs are left out (Train and Record run).
    assert baseline_after(1, blessed=True) is None
    assert baseline_after(2, blessed=False) == [{"tag": 1}]  # model 1 blessed in run 1
    assert baseline_after(3, blessed=True, record_model_id=False, legacy=True) == [{"tag": 1}]
    # Model 3's blessing has no current_model_id: found by lineage (its Evaluate's input).
    assert baseline_after(4, blessed=False) == [{"tag": 3}]
    md = Metadata(os.path.join(root, "metadata.sqlite"))
    [execution] = [
        e
        for e in md.executions_of_run("ct", md.runs("ct")[0]["run_id"])
        if e.properties["component_id"].string_value == "latest_blessed_model_resolver"
    ]
    outputs = md.output_lists_of_execution(execution.id)
    assert outputs["model"][0].properties["tag"] == 3
    assert outputs["model_blessing"][0].properties["blessed"] == "BLESSED"
    assert md.input_lists_of_execution(execution.id) == outputs


def test_span_range_strategy_over_runs(tmp_path):
    root = str(tmp_path / "root")

    def pipeline(span, version=None, range_config=None):
        gen = SpanExamples(span=span, version=version).with_id("ExampleGen")
        spans = Resolver(
            strategy_class=SpanRangeStrategy,
            config={"range_config": range_config or {"rolling_range": {"num_spans": 2}}},
            examples=Channel(type="Examples", producer_component_id="ExampleGen"),
        ).with_id("span_resolver")
        spans.add_upstream(gen)
        record = RecordExamples(examples=spans.outputs["examples"]).with_id("Record")
        return Pipeline("spans", root, [gen, spans, record])

    def spans_after(*args, **kwargs):
        p = pipeline(*args, **kwargs)
        return _report(p, _run(p))

    assert spans_after(1)["lists"]["examples"] == [{"span": 1}]
    assert spans_after(2, 0)["lists"]["examples"] == [{"span": 1}, {"span": 2, "version": 0}]
    got = spans_after(3)
    assert got["lists"]["examples"] == [{"span": 2, "version": 0}, {"span": 3}]
    assert got["first"]["examples"] == {"span": 2, "version": 0}
    # A new version of span 2 replaces the old one.
    assert spans_after(2, 1)["lists"]["examples"] == [{"span": 2, "version": 1}, {"span": 3}]
    static = {"static_range": {"start_span_number": 1, "end_span_number": 2}}
    assert spans_after(3, range_config=static)["lists"]["examples"] == [
        {"span": 1},
        {"span": 2, "version": 1},
    ]


def test_latest_blessed_model_strategy_with_infra_blessing_over_runs(tmp_path):
    root = str(tmp_path / "root")

    def pipeline(tag, infra_blessed, markers_only=False):
        baseline = Resolver(
            strategy_class=LatestBlessedModelStrategy,
            model=Channel(type="Model", producer_component_id="Train"),
            model_blessing=Channel(type="ModelBlessing"),
            model_infra_blessing=Channel(type="InfraBlessing"),
        ).with_id("latest_blessed_model_resolver")
        train = Train(tag=tag, base_model=baseline.outputs["model"])
        evaluate = Evaluate(model=train.outputs["model"], blessed=True)
        infra = InfraValidate(
            model=train.outputs["model"], blessed=infra_blessed, markers_only=markers_only
        )
        record = Record(models=baseline.outputs["model"], run=tag)
        return Pipeline("ct", root, [baseline, train, evaluate, infra, record])

    def baseline_after(*args, **kwargs):
        p = pipeline(*args, **kwargs)
        result = _run(p)
        return _report(p, result)["lists"].get("models"), result

    assert baseline_after(1, infra_blessed=True)[0] is None
    assert baseline_after(2, infra_blessed=False)[0] == [{"tag": 1}]
    # Model 2 is blessed but not infra-blessed: the older model 1 (both) stays the baseline.
    assert baseline_after(3, infra_blessed=True, markers_only=True)[0] == [{"tag": 1}]
    # Model 3's InfraBlessing has no property: its INFRA_BLESSED marker decides.
    models, result = baseline_after(4, infra_blessed=False)
    assert models == [{"tag": 3}]
    md = Metadata(os.path.join(root, "metadata.sqlite"))
    [execution] = [
        e
        for e in md.executions_of_run("ct", result["run_id"])
        if e.properties["component_id"].string_value == "latest_blessed_model_resolver"
    ]
    outputs = md.output_lists_of_execution(execution.id)
    [infra] = outputs["model_infra_blessing"]
    assert os.path.exists(os.path.join(infra.uri, "INFRA_BLESSED"))
    assert md.producer_inputs(infra.id)["model"][0].id == outputs["model"][0].id
    assert outputs["model_blessing"][0].properties["current_model_id"] == outputs["model"][0].id
    assert md.input_lists_of_execution(execution.id) == outputs


def test_span_range_strategy_over_multi_span_runs(tmp_path):
    root = str(tmp_path / "root")

    # What the resolver output, read back from ML Metadata: each artifact's spans.
    def covered(props, num_spans):
        gen = RangeExamples(properties=props).with_id("ExampleGen")
        spans = Resolver(
            strategy_class=SpanRangeStrategy,
            config={"range_config": {"rolling_range": {"num_spans": num_spans}}},
            examples=Channel(type="Examples", producer_component_id="ExampleGen"),
        ).with_id("span_resolver")
        spans.add_upstream(gen)
        p = Pipeline("spans", root, [gen, spans])
        result = _run(p)
        md = Metadata(p.metadata_path)
        arts = md.latest_output_lists("spans", result["run_id"], "span_resolver")["examples"]
        return [a.properties.get("spans", a.properties["span"]) for a in arts]

    assert covered({"span": 2, "spans": "[1, 2]"}, 2) == ["[1, 2]"]
    assert covered({"span": 3}, 3) == ["[1, 2]", 3]
    assert covered({"span": 4, "spans": "[3, 4]"}, 2) == ["[3, 4]"]  # span 3 read once
    assert covered({"span": 5}, 3) == ["[3, 4]", 5]


def test_an_empty_resolver_output_fails_a_required_input(tmp_path):
    resolver = Resolver(
        strategy_class=LatestArtifactStrategy,
        models=Channel(type="Model", producer_component_id="Trainer"),
    ).with_id("latest_model_resolver")
    pipeline = Pipeline(
        "empty", str(tmp_path), [resolver, RecordRequired(models=resolver.outputs["models"])]
    )
    with pytest.raises(PipelineRunError) as e:
        _run(pipeline)
    message = str(e.value)
    assert "RecordRequired: required input 'models' is empty" in message
    assert "resolver latest_model_resolver found nothing" in message
    assert (
        "LatestArtifactStrategy over models=Channel(type=Model, producer_component_id='Trainer')"
        in message
    )
    md = Metadata(pipeline.metadata_path)
    [run] = md.runs("empty")
    assert [
        (r["component_id"], r["state"])
        for r in md.run_summary("empty", run["run_id"])["components"]
    ] == [
        ("latest_model_resolver", "COMPLETE"),
        ("RecordRequired", "FAILED"),
    ]
    resolver_ex = md.executions_of_run("empty", run["run_id"])[0]
    assert md.output_lists_of_execution(resolver_ex.id) == {}


def test_resolver_in_ml_metadata_and_run_status(tmp_path, monkeypatch, capsys):
    from conftest import run_conveyor_in_process
    from ml_metadata.proto import metadata_store_pb2 as pb

    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))
    root = tmp_path / "root"
    path = tmp_path / "ct_pipeline.py"
    path.write_text(
        "from orchestration_components import Produce, Sum\n"
        "from conveyor.dsl import Channel, LatestArtifactStrategy, Pipeline, Resolver\n"
        "p = Produce(n=4)\n"
        "latest = Resolver(strategy_class=LatestArtifactStrategy,\n"
        "                  examples=Channel(type='Examples', producer_component_id='Produce'),\n"
        "                  ).with_id('latest_examples')\n"
        "latest.add_upstream(p)\n"
        "s = Sum(examples=latest.outputs['examples'])\n"
        f"pipeline = Pipeline('ct', {str(root)!r}, [p, latest, s])\n"
    )
    assert run_conveyor_in_process("pipeline", "create", "--pipeline-path", path) == 0
    assert run_conveyor_in_process("run", "create", "--pipeline-name", "ct") == 0
    assert run_conveyor_in_process("run", "create", "--pipeline-name", "ct") == 0
    capsys.readouterr()
    assert run_conveyor_in_process("run", "status", "--pipeline-name", "ct") == 0
    status = {line.split()[0]: line.split()[1] for line in capsys.readouterr().out.splitlines()[1:]}
    assert status == {"Produce": "CACHED", "latest_examples": "COMPLETE", "Sum": "CACHED"}

    md = Metadata(str(root / "metadata.sqlite"))
    [examples] = md.artifacts_of_type("Examples")
    # What a strategy reads: the store seen from one pipeline.
    assert isinstance(md.for_pipeline("ct"), ArtifactStore)
    assert [a.id for a in md.for_pipeline("ct").artifacts("Examples", "Produce")] == [examples.id]
    assert md.for_pipeline("ct").artifacts("Examples", "Produce", "statistics") == []
    assert md.for_pipeline("another").artifacts("Examples") == []
    resolvers = md.store.get_executions_by_type("conveyor.Resolver")
    assert len(resolvers) == 2  # one per run, never cached
    for ex in resolvers:
        assert ex.properties["state"].string_value == "COMPLETE"
        assert ex.properties["component_id"].string_value == "latest_examples"
        events = md.store.get_events_by_execution_ids([ex.id])
        # The resolved artifact is its input and its output, on path [key, index] (TFX's).
        assert sorted(
            (e.type, e.artifact_id, e.path.steps[0].key, e.path.steps[1].index) for e in events
        ) == [
            (pb.Event.INPUT, examples.id, "examples", 0),
            (pb.Event.OUTPUT, examples.id, "examples", 0),
        ]
    # Lineage walks through: Sum's statistics come from Produce's examples.
    [stats] = md.artifacts_of_type("ExampleStatistics")
    assert [(cid, a.id) for cid, a in md.lineage(stats.id)] == [("Produce", examples.id)]


# -- the Importer ----------------------------------------------------------------------------


def test_importer_reuses_or_reimports(tmp_path):
    source = tmp_path / "schemas"
    source.mkdir()
    (source / "schema.pbtxt").write_text('feature { name: "x" type: INT }\n')
    root = str(tmp_path / "root")

    def pipeline(reimport):
        schema = Importer(
            source_uri=str(source),
            artifact_type="Schema",
            reimport=reimport,
            properties={"span": 3},
            custom_properties={"note": "hand-written", "score": 0.5},
        ).with_id("import_schema")
        return Pipeline("imp", root, [schema, ReadSchema(schema=schema.outputs["result"])])

    md = Metadata(os.path.join(root, "metadata.sqlite"))
    first = _run(pipeline(False))
    [schema] = md.artifacts_of_type("Schema")
    assert schema.uri == str(source)  # registered where it is: no copy
    assert schema.properties == {"span": 3, "note": "hand-written", "score": 0.5}
    again = _run(pipeline(False))
    assert [a.id for a in md.artifacts_of_type("Schema")] == [schema.id]  # the same artifact
    assert _states(pipeline(False), again) == {"import_schema": "COMPLETE", "ReadSchema": "CACHED"}
    fresh = _run(pipeline(True))
    assert len(md.artifacts_of_type("Schema")) == 2
    assert _states(pipeline(True), fresh) == {"import_schema": "COMPLETE", "ReadSchema": "COMPLETE"}
    importers = md.store.get_executions_by_type("conveyor.Importer")
    assert len(importers) == 3
    assert md.outputs_of_execution(importers[0].id)["result"].id == schema.id
    assert md.latest_outputs("imp", first["run_id"], "import_schema")["result"].id == schema.id

    missing = Importer(source_uri=str(tmp_path / "nope"), artifact_type="Schema")
    with pytest.raises(PipelineRunError, match="source_uri .*nope does not exist"):
        _run(Pipeline("imp", root, [missing]))
    with pytest.raises(PipelineDefinitionError, match="unknown artifact type"):
        Importer(source_uri=str(source), artifact_type="Schemaa")


# -- several Examples artifacts as one input, and typed properties --------------------------


def _csv(path, rows, start):
    with open(path, "w") as f:
        f.write("x,name\n")
        for i in range(start, start + rows):
            f.write(f"{i},n{i % 3}\n")
    return str(path)


class SpanCsvExamples(CsvExamples):
    """CsvExamples with a ``span`` property, as ExampleGen records one."""

    PARAMETERS = {**CsvExamples.PARAMETERS, "span": None}

    def execute(self, ctx):
        props = super().execute(ctx)
        props["examples"]["span"] = ctx.parameters["span"]
        return props


TRAINER_MODULE = """
import json


def run_fn(fn_args):
    with open(fn_args.custom_config["out"], "w") as f:
        json.dump({"train": fn_args.train_files, "eval": fn_args.eval_files}, f)
    raise ValueError("recorded the files")
"""


def test_statistics_gen_and_trainer_merge_the_examples_of_two_spans(tmp_path):
    from conveyor.beam_utils.files import read_summary
    from conveyor.beam_utils.proto_io import read_statistics
    from conveyor.components import StatisticsGen, Trainer

    splits = {"train": 1, "eval": 1}
    gen_a = SpanCsvExamples(csv=_csv(tmp_path / "a.csv", 30, 0), splits=splits, span=1)
    gen_b = SpanCsvExamples(csv=_csv(tmp_path / "b.csv", 20, 1000), splits=splits, span=2)
    gen_c = SpanExamples(span=3)  # out of the range
    gens = [gen_a.with_id("span1"), gen_b.with_id("span2"), gen_c.with_id("span3")]
    spans = Resolver(
        strategy_class=SpanRangeStrategy,
        config={"range_config": {"static_range": {"start_span_number": 1, "end_span_number": 2}}},
        examples=Channel(type="Examples"),
    ).with_id("spans")
    for gen in gens:
        spans.add_upstream(gen)
    stats = StatisticsGen(examples=spans.outputs["examples"])
    module = tmp_path / "trainer_module.py"
    module.write_text(TRAINER_MODULE)
    out = tmp_path / "files.json"
    trainer = Trainer(
        module_file=str(module),
        examples=spans.outputs["examples"],
        custom_config={"out": str(out)},
    )
    pipeline = Pipeline("merge", str(tmp_path / "root"), [*gens, spans, stats, trainer])
    with pytest.raises(PipelineRunError, match="recorded the files"):
        _run(pipeline)
    md = Metadata(pipeline.metadata_path)
    [run] = md.runs("merge")
    merged = md.latest_outputs("merge", run["run_id"], "StatisticsGen")["statistics"]
    assert merged.properties["split_names"] == '["eval", "train"]'
    uris = [md.latest_outputs("merge", run["run_id"], g.id)["examples"].uri for g in gens[:2]]
    rows = [read_summary(uri)["splits"] for uri in uris]
    for split in ("train", "eval"):
        [ds] = read_statistics(f"{merged.uri}/Split-{split}/FeatureStats.pb").datasets
        assert ds.num_examples == rows[0][split] + rows[1][split]
        x = next(f for f in ds.features if f.path.step[0] == "x")
        assert x.num_stats.min < 30 and x.num_stats.max >= 1000  # both spans' rows
    # StatisticsGen's execution has both artifacts on its input, in span order.
    [ex] = [
        e
        for e in md.executions_of_run("merge", run["run_id"])
        if e.properties["component_id"].string_value == "StatisticsGen"
    ]
    assert [a.uri for a in md.input_lists_of_execution(ex.id)["examples"]] == uris
    # run_fn got each split's files of both spans.
    files = json.loads(out.read_text())
    assert files == {s: [f"{uri}/Split-{s}/*" for uri in uris] for s in ("train", "eval")}


def test_read_examples_of_several_patterns_and_folders(tmp_path):
    from conveyor.beam_utils.errors import InputError
    from conveyor.beam_utils.read import ReadExamples, read_examples_dir

    a, b = _csv(tmp_path / "a.csv", 3, 0), _csv(tmp_path / "b.csv", 2, 10)
    both = ReadExamples([b, a, b])
    assert both.files == [b, a] and both.file_patterns == [b, a, b]
    single = ReadExamples(a)
    assert single.file_pattern == a and single.file_patterns == [a] and single.files == [a]
    with pytest.raises(InputError, match="missing.csv: no such file"):
        ReadExamples([a, str(tmp_path / "missing.csv")])

    for name, features in (
        ("d1", {"x": "INT"}),
        ("d2", {"x": "INT", "y": "FLOAT"}),
        ("d3", {"x": "BYTES"}),
    ):
        split = tmp_path / name / "Split-train"
        split.mkdir(parents=True)
        (split / "data.gz").write_bytes(b"")
        (tmp_path / name / "summary.json").write_text(json.dumps({"features": features}))
    dirs = [str(tmp_path / n) for n in ("d1", "d2")]
    read = read_examples_dir(dirs, "train")
    assert read.file_patterns == [f"{d}/Split-train/*" for d in dirs]
    assert read.arrow_schema.names == ["x", "y"]  # the union of the summaries' features
    assert read_examples_dir(dirs[0], "train").file_pattern == f"{dirs[0]}/Split-train/*"
    with pytest.raises(InputError, match="no split 'eval'"):
        read_examples_dir(dirs, "eval")


def test_typed_properties_round_trip(tmp_path):
    from ml_metadata.proto import metadata_store_pb2 as pb

    md = Metadata(str(tmp_path / "metadata.sqlite"))
    ex = md.start_execution("conveyor.Test", "typed", "r1", "Test", {}, "key")
    props = {
        "span": 3,
        "blessed": True,
        "score": 0.25,
        "name": "a",
        "split_names": '["train"]',
        "big": 2**70,
    }
    art = Artifact("Examples", str(tmp_path / "e"), properties=dict(props))
    md.finish_execution(ex, "COMPLETE", {"examples": art})
    [raw] = md.store.get_artifacts_by_id([art.id])
    assert raw.custom_properties["span"].int_value == 3
    assert raw.custom_properties["blessed"].int_value == 1
    assert raw.custom_properties["score"].double_value == 0.25
    assert raw.custom_properties["name"].string_value == "a"
    assert raw.custom_properties["big"].WhichOneof("value") == "string_value"
    assert raw.properties["split_names"].string_value == '["train"]'
    read = md.outputs_of_execution(ex)["examples"]
    assert read.properties == {
        "span": 3,
        "blessed": 1,
        "score": 0.25,
        "name": "a",
        "split_names": '["train"]',
        "big": str(2**70),
    }
    assert isinstance(read.properties["span"], int) and isinstance(read.properties["score"], float)
    # Stores written before typing held strings: they read back as the strings they are.
    old = pb.Artifact(type_id=raw.type_id, uri="old")
    old.custom_properties["span"].string_value = "7"
    [old_id] = md.store.put_artifacts([old])
    assert [a.properties for a in md.artifacts_of_type("Examples") if a.id == old_id] == [
        {"span": "7"}
    ]


# -- what resolvers read: pipeline-scoped ML Metadata queries -----------------------------------


class _CountingStore:
    """Wraps an MLMD store, counting the calls of each method."""

    def __init__(self, store):
        self._store, self.calls = store, {}

    def __getattr__(self, name):
        fn = getattr(self._store, name)

        def counted(*args, **kwargs):
            self.calls[name] = self.calls.get(name, 0) + 1
            return fn(*args, **kwargs)

        return counted


def _record(md, pipeline, component, outputs, inputs=None, run="r1", state="COMPLETE"):
    ex = md.start_execution("conveyor.Test", pipeline, run, component, inputs or {}, "")
    md.finish_execution(ex, state, outputs)
    return ex


def _scoped_store(tmp_path, extra_models=0):
    """A store of several pipelines whose artifacts test every rule of ``artifacts``."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    md = Metadata(str(tmp_path / "metadata.sqlite"))
    m = {n: Artifact("Model", str(tmp_path / n)) for n in ("m1", "m2", "m3", "m4", "m5", "gone")}
    _record(md, "ct", "Train", {"model": m["m1"], "best": m["m5"]})
    _record(md, "ct.x", "a", {"model": m["m2"]})  # node context "ct.x.a" ...
    _record(md, "ct", "x.a", {"model": m["m3"]})  # ... the same name as this one's
    _record(md, "other", "Train", {"model": m["m4"]})
    _record(md, "ct", "r", {"model": [m["m1"]]}, inputs={"model": [m["m1"]]})  # a Resolver
    _record(md, "ct", "Train", {"model": m["m1"]}, run="r2", state="CACHED")  # a cached rerun
    _record(md, "other", "importer", {"result": m["m1"]})  # an Importer reusing m1 elsewhere
    _record(md, "ct", "Train", {"model": m["gone"]}, run="r3")
    for i in range(extra_models):
        _record(md, "ct", "Train", {"model": Artifact("Model", str(tmp_path / f"x{i}"))}, run="r4")
    [gone] = md.store.get_artifacts_by_id([m["gone"].id])
    gone.state = pb.Artifact.DELETED
    md.store.put_artifacts([gone])
    stats = Artifact("ExampleStatistics", str(tmp_path / "s"))
    _record(md, "ct", "Train", {"statistics": stats}, inputs={"model": m["m1"]}, run="r5")
    return md, {k: v.id for k, v in m.items()}


def test_pipeline_scoped_artifacts_as_the_whole_store_scan(tmp_path):
    md, m = _scoped_store(tmp_path)

    def ids(pipeline, *args):
        view = md if pipeline is None else md.for_pipeline(pipeline)
        return [a.id for a in view.artifacts(*args)]

    assert ids("ct", "Model") == [m["m1"], m["m5"], m["m3"]]  # oldest first
    assert ids("ct", "Model", "Train") == [m["m1"], m["m5"]]  # first output by Train
    assert ids("ct", "Model", "Train", "model") == [m["m1"]]
    assert ids("ct", "Model", "Train", "best") == [m["m5"]]
    assert ids("ct", "Model", "r") == []  # the Resolver only passed m1 on
    assert ids("ct", "Model", "x.a") == [m["m3"]]  # not ct.x's a, whose node name is the same
    assert ids("ct.x", "Model", "a") == [m["m2"]]
    assert ids("ct.x", "Model") == [m["m2"]]
    assert ids("other", "Model") == [m["m4"]]  # m1 came from ct: not other's
    assert ids("other", "Model", "importer") == []
    assert ids("nope", "Model") == [] and ids("ct", "Model", "nope") == []
    assert ids("ct", "Examples") == [] and ids("ct", "ExampleStatistics", "Train") != []
    assert ids(None, "Model", "Train") == [m["m1"], m["m5"], m["m4"]]  # the whole store
    # Every question, against the whole-store scan (the reference: each artifact's producer).
    from ml_metadata.proto import metadata_store_pb2 as pb

    from conveyor.orchestration.metadata import _age

    compared = 0
    for pipeline in ("ct", "ct.x", "other", "nope"):
        view = md.for_pipeline(pipeline)
        for type_name in ("Model", "ExampleStatistics", "Examples"):
            live = [
                a for a in md.store.get_artifacts_by_type(type_name) if a.state == pb.Artifact.LIVE
            ]
            for component in (None, "Train", "a", "x.a", "r", "importer", "nope"):
                for key in (None, "model", "best", "result", "statistics"):
                    scan = sorted(view._first_output_by(live, component, key), key=_age)
                    got = view.artifacts(type_name, component, key)
                    assert [a.id for a in got] == [a.id for a in scan], (pipeline, component, key)
                    compared += 1
    assert compared == 4 * 3 * 7 * 5


def _calls(md, fn):
    md.store = counting = _CountingStore(md.store)
    try:
        fn()
    finally:
        md.store = counting._store
    return counting.calls


def test_pipeline_scoped_queries_do_not_grow_with_the_store(tmp_path):
    small, _ = _scoped_store(tmp_path / "small")
    big, _ = _scoped_store(tmp_path / "big", extra_models=25)
    for args in (("Model",), ("Model", "Train"), ("Model", "Train", "model"), ("Model", "x.a")):
        few = _calls(small, lambda a=args: small.for_pipeline("ct").artifacts(*a))
        many = _calls(big, lambda a=args: big.for_pipeline("ct").artifacts(*a))
        assert few == many, args  # the same queries, whatever the number of artifacts
        assert "get_artifacts_by_type" not in many  # never the whole store's
        assert sum(many.values()) <= 6, many
        # Only artifacts several executions output have their producer read.
        assert many.get("get_executions_by_id", 0) <= 1
    assert len(big.for_pipeline("ct").artifacts("Model", "Train")) == 2 + 25

    blessings = []
    for i in range(4):
        model = Artifact("Model", str(tmp_path / f"bm{i}"))
        _record(big, "ct", "Train", {"model": model}, run=f"b{i}")
        blessing = Artifact("InfraBlessing", str(tmp_path / f"ib{i}"))
        _record(big, "ct", "InfraValidator", {"blessing": blessing}, inputs={"model": model})
        blessings.append((blessing.id, model.id))
    ids = [b for b, _ in blessings] + [10**6]  # one unknown id: {}
    calls = _calls(big, lambda: big.producer_inputs_by_id(ids))
    assert sum(calls.values()) <= 4, calls  # not one round trip per artifact
    batch = big.producer_inputs_by_id(ids)
    for blessing, model in blessings:
        assert [a.id for a in batch[blessing]["model"]] == [model]
        assert batch[blessing] == big.producer_inputs(blessing)
    assert batch[10**6] == {} and big.producer_inputs(10**6) == {}

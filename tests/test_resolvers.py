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

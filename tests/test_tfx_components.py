"""conveyor.tfx.components: TFX's constructor arguments mapped onto Conveyor's nodes, TFX's ids and
output keys, and refusals that name the argument."""

from __future__ import annotations

import os

import pytest

from conveyor import tfx
from conveyor.dsl import Artifact, ExecutionContext, PipelineDefinitionError


@pytest.fixture
def gen():
    return tfx.components.CsvExampleGen(input_base="data/penguins")


@pytest.fixture
def chain(gen):
    stats = tfx.components.StatisticsGen(examples=gen.outputs["examples"])
    schema = tfx.components.SchemaGen(statistics=stats.outputs["statistics"])
    return gen, stats, schema


@pytest.fixture
def module_file(tmp_path):
    path = tmp_path / "penguin_utils.py"
    path.write_text(
        "def preprocessing_fn(inputs):\n    return inputs\n\ndef run_fn(fn_args):\n    pass\n"
    )
    return str(path)


def test_example_gen_takes_tfx_configs_and_is_conveyors_node(gen):
    from conveyor.components import ExampleGen

    config = tfx.proto.Input(splits=[tfx.proto.Input.Split(name="train", pattern="span-{SPAN}/*")])
    g = tfx.components.CsvExampleGen(
        input_base="data",
        input_config=config,
        range_config=tfx.proto.RangeConfig(rolling_range=tfx.proto.RollingRange(num_spans=2)),
        output_data_format=tfx.proto.PayloadFormat.FORMAT_TF_EXAMPLE,
    )
    assert isinstance(g, ExampleGen) and g.id == "CsvExampleGen"
    assert g.parameters["format"] == "csv"
    assert g.parameters["input_base"] == os.path.abspath("data")
    assert g.parameters["input_config"] == {
        "splits": [{"name": "train", "pattern": "span-{SPAN}/*"}]
    }
    assert g.parameters["range_config"] == {"rolling_range": {"num_spans": 2}}
    assert list(g.outputs) == ["examples"]
    imported = tfx.components.ImportExampleGen(input_base="records")
    assert (imported.id, imported.parameters["format"]) == ("ImportExampleGen", "tfrecord")


def test_ids_default_to_tfx_class_names_and_outputs_keep_tfx_keys(chain, module_file):
    gen, stats, schema = chain
    validator = tfx.components.ExampleValidator(
        statistics=stats.outputs["statistics"], schema=schema.outputs["schema"]
    )
    transform = tfx.components.Transform(
        examples=gen.outputs["examples"], schema=schema.outputs["schema"], module_file=module_file
    )
    trainer = tfx.components.Trainer(
        module_file=module_file,
        examples=transform.outputs["transformed_examples"],
        transform_graph=transform.outputs["transform_graph"],
    )
    expected = {
        stats: ("StatisticsGen", ["statistics"]),
        schema: ("SchemaGen", ["schema"]),
        validator: ("ExampleValidator", ["anomalies"]),
        transform: (
            "Transform",
            ["transform_graph", "transformed_examples", "updated_analyzer_cache"],
        ),
        trainer: ("Trainer", ["model", "model_run"]),
    }
    for component, (cid, keys) in expected.items():
        assert (component.id, list(component.outputs)) == (cid, keys)
    with pytest.raises(KeyError, match="post_transform_stats.*not made by Conveyor"):
        transform.outputs["post_transform_stats"]
    with pytest.raises(KeyError, match="SchemaGen has no output 'statistics'"):
        schema.outputs["statistics"]


def test_transform_and_trainer_map_tfx_arguments(chain, module_file, tmp_path, monkeypatch):
    gen, _, schema = chain
    monkeypatch.syspath_prepend(str(tmp_path))
    transform = tfx.components.Transform(
        examples=gen.outputs["examples"],
        schema=schema.outputs["schema"],
        preprocessing_fn="penguin_utils.preprocessing_fn",
        splits_config=tfx.proto.SplitsConfig(analyze_splits=["train"]),
    )
    assert transform.parameters["module_file"] == module_file
    assert transform.parameters["preprocessing_fn"] == "preprocessing_fn"
    trainer = tfx.components.Trainer(
        run_fn="penguin_utils.run_fn",
        transformed_examples=transform.outputs["transformed_examples"],
        schema=schema.outputs["schema"],
        train_args=tfx.proto.TrainArgs(num_steps=100),
        eval_args={"splits": ["test"], "num_steps": 5},
        custom_config={"epochs": 2},
    )
    p = trainer.parameters
    assert (p["module_file"], p["run_fn"]) == (module_file, "run_fn")
    assert (p["train_split"], p["train_steps"], p["eval_split"], p["eval_steps"]) == (
        "train", 100, "test", 5,
    )  # fmt: skip
    assert p["custom_config"] == {"epochs": 2}
    assert trainer.inputs["examples"].producer is transform


def test_transform_analyzer_cache_is_the_cache_it_starts_from(chain, module_file, tmp_path):
    from conveyor.components.transform.node import _previous_cache

    gen, _, schema = chain
    cache = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestArtifactStrategy,
        cache=tfx.dsl.Channel(type=tfx.types.standard_artifacts.TransformCache),
    ).with_id("latest_cache")
    transform = tfx.components.Transform(
        examples=gen.outputs["examples"],
        schema=schema.outputs["schema"],
        module_file=module_file,
        analyzer_cache=cache.outputs["cache"],
    )
    assert transform.inputs["analyzer_cache"].producer is cache
    out = tmp_path / "Transform" / "updated_analyzer_cache"
    (out / "7").mkdir(parents=True)  # an earlier execution's cache, not the one given
    given = Artifact("TransformCache", str(tmp_path / "given"))
    outputs = {"updated_analyzer_cache": Artifact("TransformCache", str(out / "9"))}
    ctx = ExecutionContext({"analyzer_cache": given}, outputs, {}, [], "r", str(tmp_path))
    assert _previous_cache(ctx) == given.uri
    ctx = ExecutionContext({}, outputs, {}, [], "r", str(tmp_path))
    assert _previous_cache(ctx) == str(out / "7")


def test_evaluator_infra_validator_pusher_bulk_inferrer(gen, module_file):
    import tensorflow_model_analysis as tfma

    trainer = tfx.components.Trainer(module_file=module_file, examples=gen.outputs["examples"])
    baseline = tfx.dsl.Resolver(
        strategy_class=tfx.dsl.experimental.LatestBlessedModelStrategy,
        model=tfx.dsl.Channel(type=tfx.types.standard_artifacts.Model),
        model_blessing=tfx.dsl.Channel(type=tfx.types.standard_artifacts.ModelBlessing),
    ).with_id("latest_blessed_model_resolver")
    eval_config = tfma.EvalConfig(model_specs=[tfma.ModelSpec(label_key="species")])
    evaluator = tfx.components.Evaluator(
        examples=gen.outputs["examples"],
        model=trainer.outputs["model"],
        baseline_model=baseline.outputs["model"],
        eval_config=eval_config,
        example_splits=["test"],
    )
    assert evaluator.parameters["split"] == "test"
    assert evaluator.parameters["eval_config"] == eval_config
    assert list(evaluator.outputs) == ["evaluation", "blessing"]
    infra = tfx.components.InfraValidator(
        model=trainer.outputs["model"],
        examples=gen.outputs["examples"],
        serving_spec=tfx.proto.ServingSpec(
            tensorflow_serving=tfx.proto.TensorFlowServing(tags=["latest"]),
            local_docker=tfx.proto.LocalDockerConfig(),
        ),
        validation_spec=tfx.proto.ValidationSpec(max_loading_time_seconds=60, num_tries=2),
    )
    assert infra.parameters["validation_spec"] == {"max_loading_time_seconds": 60, "num_tries": 2}
    with tfx.dsl.Cond(evaluator.outputs["blessing"].future()[0].custom_property("blessed") == 1):
        pusher = tfx.components.Pusher(
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            infra_blessing=infra.outputs["blessing"],
            push_destination=tfx.proto.PushDestination(
                filesystem=tfx.proto.PushDestination.Filesystem(base_directory="serving")
            ),
        )
    assert pusher.parameters["push_destination"] == {
        "filesystem": {"base_directory": os.path.abspath("serving")}
    }
    assert pusher.conditions and list(pusher.outputs) == ["pushed_model"]
    inferrer = tfx.components.BulkInferrer(
        examples=gen.outputs["examples"],
        model=trainer.outputs["model"],
        data_spec=tfx.proto.DataSpec(example_splits=["eval"]),
        model_spec=tfx.proto.ModelSpec(model_signature_name=["serving_default"]),
    )
    assert (inferrer.parameters["splits"], inferrer.parameters["signature"]) == (
        ["eval"],
        "serving_default",
    )
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="all",
        pipeline_root="out",
        components=[gen, trainer, baseline, evaluator, infra, pusher, inferrer],
    )
    assert pipeline.enable_cache is False  # TFX's default
    assert [c.id for c in pipeline.components][-1] in ("Pusher", "BulkInferrer")


def test_node_methods_with_id_upstream_and_beam_args(chain):
    gen, stats, schema = chain
    importer = tfx.dsl.Importer(
        source_uri="schema/", artifact_type=tfx.types.standard_artifacts.Schema
    ).with_id("schema_importer")
    importer.add_upstream_node(schema)
    gen.add_downstream_node(importer)
    assert {c.id for c in importer.upstream} == {"SchemaGen", "CsvExampleGen"}
    stats.with_beam_pipeline_args(["--direct_num_workers=2"]).with_id("stats")
    assert stats.beam_args == ["--direct_num_workers=2"] and stats.id == "stats"
    assert schema.inputs["statistics"].producer_component_id == "stats"


@pytest.fixture
def refusals(gen, module_file):
    examples = gen.outputs["examples"]
    c = tfx.components
    return {
        "custom_config": lambda: c.CsvExampleGen(input_base="d", custom_config={"a": 1}),
        "custom_executor_spec": lambda: c.CsvExampleGen(input_base="d", custom_executor_spec=1),
        "output_data_format": lambda: c.CsvExampleGen(
            input_base="d", output_data_format=tfx.proto.PayloadFormat.FORMAT_TF_SEQUENCE_EXAMPLE
        ),
        "payload_format": lambda: c.ImportExampleGen(input_base="d", payload_format=11),
        "input_base": lambda: c.CsvExampleGen(),
        "stats_options": lambda: c.StatisticsGen(examples=examples, stats_options=_stats_options()),
        "exclude_splits": lambda: c.SchemaGen(statistics=examples, exclude_splits=["eval"]),
        "preprocessing_fn": lambda: c.Transform(examples=examples, preprocessing_fn="nope"),
        "module_file": lambda: c.Transform(examples=examples),
        "materialize": lambda: c.Transform(
            examples=examples, module_file=module_file, materialize=False
        ),
        "force_tf_compat_v1": lambda: c.Transform(
            examples=examples, module_file=module_file, force_tf_compat_v1=True
        ),
        "trainer_fn": lambda: c.Trainer(examples=examples, trainer_fn="m.trainer_fn"),
        "train_args.splits": lambda: c.Trainer(
            examples=examples, module_file=module_file, train_args={"splits": ["a", "b"]}
        ),
        "train_args": lambda: c.Trainer(
            examples=examples,
            module_file=module_file,
            train_args=tfx.dsl.RuntimeParameter(name="args", ptype=str),
        ),
        "tune_args.num_parallel_trials": lambda: c.Tuner(
            examples=examples,
            module_file=module_file,
            tune_args=tfx.proto.TuneArgs(num_parallel_trials=2),
        ),
        "fairness_indicator_thresholds": lambda: c.Evaluator(
            examples=examples, fairness_indicator_thresholds=[0.5]
        ),
        "eval_config": lambda: c.Evaluator(examples=examples),
        "serving_spec": lambda: c.InfraValidator(model=examples),
        "model": lambda: c.Pusher(push_destination={"filesystem": {"base_directory": "s"}}),
        "output_example_spec": lambda: c.BulkInferrer(
            examples=examples, model=examples, output_example_spec=tfx.proto.OutputExampleSpec()
        ),
        "model_spec.tag": lambda: c.BulkInferrer(
            examples=examples, model=examples, model_spec=tfx.proto.ModelSpec(tag=["gpu"])
        ),
    }


def _stats_options():
    import tensorflow_data_validation as tfdv

    return tfdv.StatsOptions(num_top_values=5)


REFUSED = [
    ("custom_config", "CsvExampleGen: custom_config: "),
    ("custom_executor_spec", "CsvExampleGen: custom_executor_spec: "),
    ("output_data_format", "CsvExampleGen: output_data_format: FORMAT_TF_SEQUENCE_EXAMPLE"),
    ("payload_format", "ImportExampleGen: payload_format: FORMAT_PROTO"),
    ("input_base", "CsvExampleGen: input_base: required"),
    ("stats_options", "StatisticsGen: stats_options: .*num_top_values"),
    ("exclude_splits", "SchemaGen: exclude_splits: "),
    ("preprocessing_fn", "Transform: preprocessing_fn: a Python path"),
    ("module_file", "Transform: module_file: exactly one of"),
    ("materialize", "Transform: materialize: "),
    ("force_tf_compat_v1", "Transform: force_tf_compat_v1: "),
    ("trainer_fn", "Trainer: trainer_fn: TFX's Estimator"),
    ("train_args.splits", r"Trainer: train_args.splits: .*\['a', 'b'\]"),
    ("train_args", "Trainer: train_args: a RuntimeParameter"),
    ("tune_args.num_parallel_trials", "Tuner: tune_args.num_parallel_trials: trials run one"),
    ("fairness_indicator_thresholds", "Evaluator: fairness_indicator_thresholds: "),
    ("eval_config", "Evaluator: eval_config: required"),
    ("serving_spec", "InfraValidator: serving_spec: required"),
    ("model", "Pusher: model: required"),
    ("output_example_spec", "BulkInferrer: output_example_spec: "),
    ("model_spec.tag", r"BulkInferrer: model_spec.tag: .*\['gpu'\]"),
]


@pytest.mark.parametrize("argument,message", REFUSED, ids=[a for a, _ in REFUSED])
def test_arguments_conveyor_cannot_honour_are_refused_naming_them(refusals, argument, message):
    with pytest.raises(PipelineDefinitionError, match=message):
        refusals[argument]()


def test_udf_types_for_module_files():
    from conveyor.components.trainer import FnArgs

    assert tfx.components.FnArgs is FnArgs
    result = tfx.components.TunerFnResult(tuner="t", fit_kwargs={"x": 1})
    assert (result.tuner, result.fit_kwargs) == ("t", {"x": 1})
    accessor = tfx.components.DataAccessor(
        tf_dataset_factory=len, record_batch_factory=None, data_view_decode_fn=None
    )
    assert accessor.tf_dataset_factory is len

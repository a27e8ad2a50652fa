"""conveyor.tfx: tfx.v1's names, a light import, and TFX's Pipeline and LocalDagRunner arguments."""

from __future__ import annotations

import subprocess
import sys

import pytest

from conveyor import tfx
from conveyor.dsl import PipelineDefinitionError

#: tfx.v1's public names that conveyor.tfx implements (module -> names).
V1_NAMES = {
    "components": [
        "CsvExampleGen", "ImportExampleGen", "StatisticsGen", "SchemaGen", "ImportSchemaGen",
        "ExampleValidator", "Transform", "Trainer", "Tuner", "Evaluator", "InfraValidator",
        "Pusher", "BulkInferrer", "FnArgs", "DataAccessor", "TunerFnResult",
    ],
    "dsl": [
        "Pipeline", "Channel", "Resolver", "Importer", "Cond", "Artifact", "ExecutionMode",
        "RuntimeParameter", "experimental",
    ],
    "dsl.experimental": [
        "LatestArtifactStrategy", "LatestBlessedModelStrategy", "SpanRangeStrategy",
        "ResolverStrategy", "RuntimeParameter", "create_container_component",
    ],
    "dsl.placeholders": ["input", "output", "exec_property"],
    "types": ["standard_artifacts", "Channel", "BaseChannel", "OutputChannel", "BaseNode"],
    "types.standard_artifacts": [
        "Examples", "ExampleStatistics", "Schema", "ExampleAnomalies", "TransformGraph",
        "TransformCache", "Model", "ModelRun", "ModelEvaluation", "ModelBlessing",
        "InferenceResult", "InfraBlessing", "PushedModel", "HyperParameters", "String",
        "Integer", "Float", "Boolean", "JsonValue", "Bytes",
    ],
    "orchestration": ["LocalDagRunner", "metadata", "experimental"],
    "orchestration.metadata": [
        "sqlite_metadata_connection_config", "mysql_metadata_connection_config",
        "ConnectionConfigType",
    ],
    "orchestration.experimental": ["KubeflowV2DagRunner", "KubeflowV2DagRunnerConfig"],
    "dsl.io": ["fileio"],
    "extensions.google_cloud_big_query": ["BigQueryExampleGen"],
    "extensions.google_cloud_ai_platform": ["Trainer", "Tuner", "Pusher", "BulkInferrer"],
}  # fmt: skip


@pytest.mark.parametrize(
    "module,name", [(m, n) for m, names in V1_NAMES.items() for n in names], ids=str
)
def test_tfx_v1_names_exist(module, name):
    obj = tfx
    for part in module.split("."):
        obj = getattr(obj, part)
    assert getattr(obj, name) is not None


def test_importing_the_namespace_and_its_dsl_loads_neither_beam_nor_tensorflow():
    code = (
        "import sys\nfrom conveyor import tfx\n"
        "tfx.dsl.Pipeline, tfx.proto.TrainArgs, tfx.orchestration.metadata, tfx.types.Channel\n"
        "tfx.dsl.experimental.create_container_component, tfx.dsl.placeholders.input\n"
        "print(sorted({m.split('.')[0] for m in sys.modules} & {'apache_beam', 'tensorflow'}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.fixture
def gen():
    return tfx.components.CsvExampleGen(input_base="data/penguins")


@pytest.fixture
def chain(gen):
    stats = tfx.components.StatisticsGen(examples=gen.outputs["examples"])
    schema = tfx.components.SchemaGen(statistics=stats.outputs["statistics"])
    return gen, stats, schema


def test_pipeline_takes_tfx_arguments_and_refuses_the_rest(chain, tmp_path):
    gen, stats, schema = chain
    config = tfx.orchestration.metadata.sqlite_metadata_connection_config(
        str(tmp_path / "md" / "metadata.db")
    )
    pipeline = tfx.dsl.Pipeline(
        pipeline_name="penguins",
        pipeline_root=str(tmp_path / "root"),
        components=[schema, stats, gen],
        enable_cache=True,
        metadata_connection_config=config,
        beam_pipeline_args=["--direct_num_workers=1"],
    )
    assert [c.id for c in pipeline.components] == ["CsvExampleGen", "StatisticsGen", "SchemaGen"]
    assert (pipeline.pipeline_name, pipeline.pipeline_root) == ("penguins", str(tmp_path / "root"))
    assert pipeline.metadata_path == str(tmp_path / "md" / "metadata.db")
    assert pipeline.beam_pipeline_args == ["--direct_num_workers=1"] and pipeline.enable_cache
    with pytest.raises(PipelineDefinitionError, match="Pipeline: execution_mode: only SYNC"):
        tfx.dsl.Pipeline(
            pipeline_name="p",
            pipeline_root="r",
            components=[gen],
            execution_mode=tfx.dsl.ExecutionMode.ASYNC,
        )
    with pytest.raises(PipelineDefinitionError, match="Pipeline: platform_config: "):
        tfx.dsl.Pipeline(pipeline_name="p", pipeline_root="r", components=[gen], platform_config={})
    with pytest.raises(PipelineDefinitionError, match="Pipeline: pipeline_root: required"):
        tfx.dsl.Pipeline(pipeline_name="p", components=[gen])
    with pytest.raises(PipelineDefinitionError, match="LocalDagRunner.run: run_options: "):
        tfx.orchestration.LocalDagRunner().run(pipeline, run_options=object())


def test_cloud_extensions_are_refused_naming_the_argument():
    ext = tfx.extensions
    with pytest.raises(PipelineDefinitionError, match="BigQueryExampleGen: query: BigQuery"):
        ext.google_cloud_big_query.BigQueryExampleGen(query="SELECT 1")
    vertex = {ext.google_cloud_ai_platform.ENABLE_VERTEX_KEY: True}
    with pytest.raises(PipelineDefinitionError, match="Trainer: custom_config: Vertex AI"):
        ext.google_cloud_ai_platform.Trainer(module_file="m.py", custom_config=vertex)


def test_fileio_and_version(tmp_path):
    fileio = tfx.dsl.io.fileio
    folder = str(tmp_path / "a" / "b")
    fileio.makedirs(folder)
    with fileio.open(f"{folder}/x.txt", "w") as f:
        f.write("hello")
    assert fileio.exists(f"{folder}/x.txt") and fileio.isdir(folder)
    assert fileio.glob(f"{folder}/*.txt") == [f"{folder}/x.txt"]
    fileio.rename(f"{folder}/x.txt", f"{folder}/y.txt")
    assert fileio.listdir(folder) == ["y.txt"]
    fileio.rmtree(str(tmp_path / "a"))
    assert not fileio.exists(folder)
    assert tfx.__version__ == __import__("importlib.metadata").metadata.version("conveyor")

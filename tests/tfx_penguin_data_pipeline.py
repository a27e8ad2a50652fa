"""Penguin data checks, a pipeline file in TFX's style: ``from conveyor import tfx`` and tfx.v1's API.

CsvExampleGen -> StatisticsGen -> SchemaGen -> ExampleValidator over the
palmerpenguins CSV, on the LocalDagRunner with TFX's usual Beam flags (the
multi-processing direct runner, one worker per CPU). Run it as a script; the
folders come from the environment (``PENGUIN_DATA``, ``PENGUIN_HOME``), as a
TFX example takes them from ``$HOME``.
"""

import os

from conveyor import tfx

_pipeline_name = "penguin_data"
_data_root = os.environ.get("PENGUIN_DATA", os.path.join(os.environ["HOME"], "penguin", "data"))
_tfx_root = os.environ.get("PENGUIN_HOME", os.path.join(os.environ["HOME"], "penguin", "tfx"))
_pipeline_root = os.path.join(_tfx_root, "pipelines", _pipeline_name)
_metadata_path = os.path.join(_tfx_root, "metadata", _pipeline_name, "metadata.db")

# Pipeline arguments for Beam powered components: several local worker processes
# (0 means one per CPU available when the component runs).
_beam_pipeline_args = [
    "--direct_running_mode=multi_processing",
    "--direct_num_workers=0",
]


def _create_pipeline(
    pipeline_name: str,
    pipeline_root: str,
    data_root: str,
    metadata_path: str,
    beam_pipeline_args: list,
) -> tfx.dsl.Pipeline:
    """Ingests the CSV, computes statistics, infers a schema and checks the data against it."""
    example_gen = tfx.components.CsvExampleGen(
        input_base=data_root,
        output_config=tfx.proto.Output(
            split_config=tfx.proto.SplitConfig(
                splits=[
                    tfx.proto.SplitConfig.Split(name="train", hash_buckets=3),
                    tfx.proto.SplitConfig.Split(name="eval", hash_buckets=1),
                ]
            )
        ),
    )
    statistics_gen = tfx.components.StatisticsGen(examples=example_gen.outputs["examples"])
    schema_gen = tfx.components.SchemaGen(
        statistics=statistics_gen.outputs["statistics"], infer_feature_shape=True
    )
    example_validator = tfx.components.ExampleValidator(
        statistics=statistics_gen.outputs["statistics"], schema=schema_gen.outputs["schema"]
    )
    return tfx.dsl.Pipeline(
        pipeline_name=pipeline_name,
        pipeline_root=pipeline_root,
        components=[example_gen, statistics_gen, schema_gen, example_validator],
        enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            metadata_path
        ),
        beam_pipeline_args=beam_pipeline_args,
    )


if __name__ == "__main__":
    tfx.orchestration.LocalDagRunner().run(
        _create_pipeline(
            pipeline_name=_pipeline_name,
            pipeline_root=_pipeline_root,
            data_root=_data_root,
            metadata_path=_metadata_path,
            beam_pipeline_args=_beam_pipeline_args,
        )
    )

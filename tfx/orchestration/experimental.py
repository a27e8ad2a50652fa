"""TFX's ``tfx.orchestration.experimental``: the Kubeflow V2 runner and its config.

Example::

    from conveyor import tfx

    tfx.orchestration.experimental.KubeflowV2DagRunner(
        config=tfx.orchestration.experimental.KubeflowV2DagRunnerConfig(default_image="img:1"),
        output_filename="pipeline.json").run(pipeline)
"""

from conveyor.tfx.orchestration.kubeflow_v2_dag_runner import (
    KubeflowV2DagRunner,
    KubeflowV2DagRunnerConfig,
)

__all__ = ["KubeflowV2DagRunner", "KubeflowV2DagRunnerConfig"]

#: TFX's Kubeflow V1 runner (Argo workflows); Conveyor writes KFP v2 specs only.
_V1 = ("KubeflowDagRunner", "KubeflowDagRunnerConfig", "get_default_kubeflow_metadata_config")


def __getattr__(name: str):
    if name in _V1:
        raise AttributeError(
            f"conveyor.tfx.orchestration.experimental has no {name}: Conveyor compiles Kubeflow "
            "Pipelines v2 specs only; use KubeflowV2DagRunner"
        )
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""Pipelines of Conveyor components: DSL, artifacts, ML Metadata, runners and the CLI.

Example::

    from conveyor.orchestration import Pipeline, LocalDagRunner
    pipeline = Pipeline("flights", root="out/p", components=[...])
    LocalDagRunner().run(pipeline)

Names are imported on first use so that the command line starts fast.
"""

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "Pipeline": "conveyor.orchestration.dsl",
    "Component": "conveyor.orchestration.dsl",
    "InputSpec": "conveyor.orchestration.dsl",
    "PipelineDefinitionError": "conveyor.orchestration.dsl",
    "Artifact": "conveyor.orchestration.artifacts",
    "Metadata": "conveyor.orchestration.metadata",
    "LocalDagRunner": "conveyor.orchestration.local_runner",
    "BeamDagRunner": "conveyor.orchestration.beam_runner",
    "InteractiveContext": "conveyor.orchestration.interactive",
    "AirflowDagRunner": "conveyor.orchestration.airflow",
    "KubeflowDagRunner": "conveyor.orchestration.kubeflow",
    "PipelineRunError": "conveyor.orchestration.local_runner",
    "load_pipeline": "conveyor.orchestration.loader",
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

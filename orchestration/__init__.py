"""Running pipelines of Conveyor components: ML Metadata, runners, exporters and the CLI.

The pipeline definitions themselves live in :mod:`conveyor.dsl`; their names
are re-exported here, so ``from conveyor.orchestration import Pipeline`` works.

Example::

    from conveyor.orchestration import Pipeline, LocalDagRunner
    pipeline = Pipeline("flights", root="out/p", components=[...])
    LocalDagRunner().run(pipeline)

Names are imported on first use so that the command line starts fast.
"""

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "Pipeline": "conveyor.dsl",
    "Component": "conveyor.dsl",
    "Channel": "conveyor.dsl",
    "ExecutionContext": "conveyor.dsl",
    "InputSpec": "conveyor.dsl",
    "PipelineDefinitionError": "conveyor.dsl",
    "Cond": "conveyor.dsl",
    "Importer": "conveyor.dsl",
    "Resolver": "conveyor.dsl",
    "RuntimeParameter": "conveyor.dsl",
    "LatestArtifactStrategy": "conveyor.dsl",
    "LatestBlessedModelStrategy": "conveyor.dsl",
    "SpanRangeStrategy": "conveyor.dsl",
    "Artifact": "conveyor.dsl",
    "PipelineRootError": "conveyor.orchestration.launcher",
    "RunCanceled": "conveyor.orchestration.local_runner",
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

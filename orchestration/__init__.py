"""Pipelines of Conveyor components: DSL, artifacts, ML Metadata, runners and the CLI.

Example::

    from conveyor.orchestration import Pipeline, LocalDagRunner
    pipeline = Pipeline("flights", root="out/p", components=[...])
    LocalDagRunner().run(pipeline)

Names are imported on first use so that the command line starts fast.
"""

_EXPORTS = {
    "Pipeline": "conveyor.orchestration.dsl",
    "Component": "conveyor.orchestration.dsl",
    "InputSpec": "conveyor.orchestration.dsl",
    "PipelineDefinitionError": "conveyor.orchestration.dsl",
    "Artifact": "conveyor.orchestration.artifacts",
    "Metadata": "conveyor.orchestration.metadata",
    "LocalDagRunner": "conveyor.orchestration.local_runner",
    "PipelineRunError": "conveyor.orchestration.local_runner",
    "load_pipeline": "conveyor.orchestration.loader",
}


def __getattr__(name):
    if name in _EXPORTS:
        import importlib

        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(name)

"""TFX's ``tfx.dsl.Pipeline`` on Conveyor's :class:`~conveyor.dsl.Pipeline`.

TFX's arguments and defaults: ``enable_cache`` is False unless given (TFX's
default; Conveyor's own Pipeline caches by default), and a
``metadata_connection_config`` (from
``tfx.orchestration.metadata.sqlite_metadata_connection_config(path)``) is the
ML Metadata store every runner uses.

Example::

    from conveyor import tfx

    pipeline = tfx.dsl.Pipeline(
        pipeline_name="penguins",
        pipeline_root="out/penguins",
        components=[example_gen, statistics_gen],
        enable_cache=True,
        metadata_connection_config=tfx.orchestration.metadata.sqlite_metadata_connection_config(
            "out/metadata.db"),
        beam_pipeline_args=["--direct_running_mode=multi_processing", "--direct_num_workers=0"])
"""

from __future__ import annotations

import enum
import os

from conveyor.dsl import Pipeline as _Pipeline
from conveyor.dsl import PipelineDefinitionError

__all__ = ["ExecutionMode", "Pipeline"]


class ExecutionMode(enum.Enum):
    """TFX's execution modes; Conveyor runs pipelines in SYNC mode (a DAG run after run)."""

    SYNC = 1
    ASYNC = 2


def _refuse(argument: str, why: str) -> PipelineDefinitionError:
    return PipelineDefinitionError(f"Pipeline: {argument}: {why}")


class Pipeline(_Pipeline):
    """A TFX pipeline: named components under ``pipeline_root``, with an ML Metadata store.

    Args (TFX's): ``pipeline_name``, ``pipeline_root`` (required here),
    ``components``, ``enable_cache`` (default False, as TFX),
    ``metadata_connection_config`` (an ML Metadata ``ConnectionConfig``; default
    SQLite at ``<pipeline_root>/metadata.sqlite``), ``beam_pipeline_args``,
    ``architecture_description`` (kept as :attr:`description`). Refused:
    ``platform_config``, ``execution_mode=ASYNC``, ``inputs`` / ``outputs``
    (TFX's composable sub-pipelines), ``dsl_context_registry``.
    """

    def __init__(
        self,
        pipeline_name: str,
        pipeline_root: str | None = None,
        architecture_description: str | None = None,
        components=None,
        enable_cache: bool = False,
        metadata_connection_config=None,
        beam_pipeline_args: list[str] | None = None,
        platform_config=None,
        execution_mode: ExecutionMode = ExecutionMode.SYNC,
        inputs=None,
        outputs=None,
        dsl_context_registry=None,
    ):
        if not pipeline_root or not isinstance(pipeline_root, str):
            raise _refuse(
                "pipeline_root",
                f"required: the folder for the pipeline's outputs, not {pipeline_root!r}",
            )
        if platform_config is not None:
            raise _refuse(
                "platform_config", "platform configs (Vertex, Kubernetes) are not supported"
            )
        if execution_mode not in (ExecutionMode.SYNC, None):
            raise _refuse("execution_mode", f"only SYNC is supported, not {execution_mode}")
        for argument, value in (
            ("inputs", inputs),
            ("outputs", outputs),
            ("dsl_context_registry", dsl_context_registry),
        ):
            if value is not None:
                raise _refuse(argument, "composable sub-pipelines are not supported")
        if components is None:
            components = []
        self.description = architecture_description
        super().__init__(
            name=pipeline_name,
            root=pipeline_root,
            components=list(components),
            beam_pipeline_args=beam_pipeline_args,
            enable_cache=bool(enable_cache),
            metadata_connection_config=metadata_connection_config,
        )

    @property
    def pipeline_name(self) -> str:
        """TFX's name of :attr:`name`."""
        return self.name

    @property
    def pipeline_root(self) -> str:
        """TFX's name of :attr:`root`."""
        return self.root

    @property
    def metadata_path(self) -> str:
        """The SQLite file of the ML Metadata store: the connection config's when it is SQLite,
        else ``<root>/metadata.sqlite``."""
        config = self.metadata_connection_config
        if config is not None and config.HasField("sqlite"):
            return os.path.abspath(config.sqlite.filename_uri)
        return super().metadata_path

"""TFX's ``tfx.orchestration.LocalDagRunner`` on Conveyor's
:class:`~conveyor.orchestration.LocalDagRunner`.

``LocalDagRunner().run(pipeline)`` runs every component on this machine,
independent ones at once, each in its own process, with the pipeline's Beam
flags: TFX's usual ``["--direct_running_mode=multi_processing",
"--direct_num_workers=0"]`` give each Beam step one worker process per CPU.

Example::

    from conveyor import tfx

    tfx.orchestration.LocalDagRunner().run(pipeline)
"""

from __future__ import annotations

from conveyor.dsl import PipelineDefinitionError

__all__ = ["LocalDagRunner"]


class LocalDagRunner:
    """TFX's local DAG runner: ``LocalDagRunner().run(pipeline)``.

    Args (Conveyor's, all optional; TFX's runner takes none): ``max_workers``
    (components at once), ``in_process`` (one process, one component at a
    time), ``quiet``.
    """

    def __init__(self, max_workers: int | None = None, in_process: bool = False, quiet=False):
        self.max_workers = max_workers
        self.in_process = in_process
        self.quiet = quiet

    def run(
        self,
        pipeline,
        run_options=None,
        *,
        run_id: str | None = None,
        runtime_parameters: dict | None = None,
    ) -> dict:
        """Runs the pipeline; returns ``{"run_id", "components": {id: status}, "failed"}``.

        ``run_options`` (TFX's partial runs) is refused; ``run_id`` and
        ``runtime_parameters`` (``{name: value}`` for the pipeline's
        RuntimeParameters) are Conveyor's. A failing component raises
        ``conveyor.orchestration.PipelineRunError`` naming it.
        """
        from conveyor.orchestration.loader import captured_by_loader
        from conveyor.orchestration.local_runner import LocalDagRunner as _LocalDagRunner

        if captured_by_loader(pipeline):  # 'conveyor pipeline create' reading this file
            return None
        if run_options is not None:
            raise PipelineDefinitionError(
                "LocalDagRunner.run: run_options: partial runs are not supported; "
                "run the whole pipeline (completed components come from the cache)"
            )
        runner = _LocalDagRunner(
            max_workers=self.max_workers, in_process=self.in_process, quiet=self.quiet
        )
        return runner.run(pipeline, run_id=run_id, runtime_parameters=runtime_parameters)

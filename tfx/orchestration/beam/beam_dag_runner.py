"""TFX's ``BeamDagRunner`` (``tfx.orchestration.beam.beam_dag_runner``) on Conveyor's
:class:`~conveyor.orchestration.BeamDagRunner`: the pipeline as one Beam pipeline.

Example::

    from conveyor.tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

    BeamDagRunner().run(pipeline)
"""

from __future__ import annotations

from conveyor.dsl import PipelineDefinitionError

__all__ = ["BeamDagRunner"]


class BeamDagRunner:
    """TFX's Beam DAG runner.

    Args:
      beam_orchestrator_args: Beam flags of the orchestrating pipeline (TFX's
        argument; default: the pipeline's ``beam_pipeline_args``).
      config: TFX's ``PipelineConfig``; refused unless None.
    """

    def __init__(self, beam_orchestrator_args: list[str] | None = None, config=None):
        if config is not None:
            raise PipelineDefinitionError(
                "BeamDagRunner: config: TFX's PipelineConfig (launcher classes) is not supported"
            )
        self.beam_orchestrator_args = beam_orchestrator_args

    def run(self, pipeline, run_options=None, **kwargs) -> dict:
        """Runs the pipeline; returns Conveyor's run result (``run_id``, component statuses).

        ``run_options`` is refused; ``run_id`` and ``runtime_parameters`` are Conveyor's.
        """
        from conveyor.orchestration.beam_runner import BeamDagRunner as _BeamDagRunner
        from conveyor.orchestration.loader import captured_by_loader

        if captured_by_loader(pipeline):  # 'conveyor pipeline create' reading this file
            return None
        if run_options is not None:
            raise PipelineDefinitionError(
                "BeamDagRunner.run: run_options: partial runs are not supported"
            )
        return _BeamDagRunner(self.beam_orchestrator_args).run(pipeline, **kwargs)

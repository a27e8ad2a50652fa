"""TFX's Beam orchestrator: ``BeamDagRunner`` (:mod:`.beam_dag_runner`).

Example::

    from conveyor.tfx.orchestration.beam import BeamDagRunner

    BeamDagRunner().run(pipeline)
"""

from conveyor.tfx.orchestration.beam.beam_dag_runner import BeamDagRunner

__all__ = ["BeamDagRunner"]

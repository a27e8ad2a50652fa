"""TFX's Airflow orchestrator: ``AirflowDagRunner`` and ``AirflowPipelineConfig``
(:mod:`.airflow_dag_runner`).

Example::

    from conveyor.tfx.orchestration.airflow import AirflowDagRunner, AirflowPipelineConfig

    AirflowDagRunner(AirflowPipelineConfig({"schedule_interval": "@daily"})).run(pipeline)
"""

from conveyor.tfx.orchestration.airflow.airflow_dag_runner import (
    AirflowDagRunner,
    AirflowPipelineConfig,
)

__all__ = ["AirflowDagRunner", "AirflowPipelineConfig"]

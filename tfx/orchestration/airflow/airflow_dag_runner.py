"""TFX's Airflow runner (``tfx.orchestration.airflow.airflow_dag_runner``) on Conveyor's
:class:`~conveyor.orchestration.AirflowDagRunner`.

``AirflowDagRunner(AirflowPipelineConfig(airflow_dag_config)).run(pipeline)``
writes the pipeline's Airflow DAG file (one ``BashOperator`` running ``conveyor
component run`` per component, the pipeline pickled beside it) and returns the
``airflow.DAG`` when Airflow can be imported here (TFX's way: the pipeline file
in Airflow's DAG folder defines the DAG), else the DAG file's path (copy it into
the DAG folder). ``airflow_dag_config`` takes the ``DAG`` arguments Conveyor's
DAG has: ``dag_id``, ``schedule_interval`` (or ``schedule``), ``start_date``,
``tags``, ``default_args`` with only ``retries``, ``catchup=False``; any other
is refused, naming it.

Example::

    from conveyor.tfx.orchestration.airflow import AirflowDagRunner, AirflowPipelineConfig

    DAG = AirflowDagRunner(AirflowPipelineConfig(
        airflow_dag_config={"schedule_interval": None,
                            "start_date": datetime.datetime(2024, 1, 1)},
        output="dags/penguins.py")).run(pipeline)
"""

from __future__ import annotations

import datetime
import os
from collections.abc import Mapping

from conveyor.dsl import PipelineDefinitionError

__all__ = ["AirflowDagRunner", "AirflowPipelineConfig"]


def _refuse(argument: str, why: str) -> PipelineDefinitionError:
    return PipelineDefinitionError(f"AirflowPipelineConfig: {argument}: {why}")


class AirflowPipelineConfig:
    """TFX's Airflow config: the ``DAG`` arguments, and where Conveyor writes the DAG.

    Args:
      airflow_dag_config: TFX's dict of ``airflow.DAG`` arguments (see the module docstring).
      output: (Conveyor's) the DAG file to write; default
        ``<pipeline_root>/.conveyor/airflow/<dag_id>.py``.
      conveyor: (Conveyor's) the ``conveyor`` executable on Airflow's workers.
      beam_args: (Conveyor's) Beam flags for every component, after the pipeline's.
      **kwargs: TFX's ``PipelineConfig`` arguments (launcher classes); refused.
    """

    def __init__(
        self,
        airflow_dag_config: Mapping | None = None,
        output: str | None = None,
        conveyor: str = "conveyor",
        beam_args: list[str] | None = None,
        **kwargs,
    ):
        if kwargs:
            raise _refuse(
                ", ".join(sorted(kwargs)),
                "TFX's PipelineConfig settings (launchers) are not supported",
            )
        self.airflow_dag_config = dict(airflow_dag_config or {})
        self.output = output
        self.conveyor = conveyor
        self.beam_args = list(beam_args or [])
        self._settings()  # refuses what Conveyor's DAG cannot take, now

    def _settings(self) -> dict:
        """The AirflowDagConfig fields of ``airflow_dag_config``."""
        out: dict = {}
        for key, value in self.airflow_dag_config.items():
            if key == "dag_id":
                out["dag_id"] = str(value)
            elif key in ("schedule_interval", "schedule"):
                if value is not None and not isinstance(value, str):
                    raise _refuse(key, f"a cron string or preset ('@daily') or None, not {value!r}")
                out["schedule"] = value
            elif key == "start_date":
                if not isinstance(value, datetime.date):
                    raise _refuse(key, f"a datetime or date, not {value!r}")
                out["start_date"] = value
            elif key == "tags":
                out["tags"] = [str(t) for t in value]
            elif key == "catchup":
                if value:
                    raise _refuse(key, "Conveyor's DAG does not catch up (catchup=False)")
            elif key == "default_args":
                other = sorted(set(value) - {"retries"})
                if other:
                    raise _refuse(f"default_args[{other[0]!r}]", "only retries is supported")
                if "retries" in value:
                    out["retries"] = int(value["retries"])
            else:
                raise _refuse(
                    f"airflow_dag_config[{key!r}]",
                    "not supported (dag_id, schedule_interval, start_date, tags, catchup, "
                    "default_args['retries'] are)",
                )
        return out


class AirflowDagRunner:
    """TFX's Airflow DAG runner: ``AirflowDagRunner(config).run(pipeline)``.

    ``config`` is an :class:`AirflowPipelineConfig` or, as TFX allows, the
    ``airflow_dag_config`` dict itself.
    """

    def __init__(self, config: AirflowPipelineConfig | Mapping | None = None):
        if config is None or isinstance(config, Mapping):
            config = AirflowPipelineConfig(airflow_dag_config=config)
        if not isinstance(config, AirflowPipelineConfig):
            raise PipelineDefinitionError(
                f"AirflowDagRunner: config: an AirflowPipelineConfig or a dict, not "
                f"{type(config).__name__}"
            )
        self.config = config

    def dag_file(self, pipeline) -> str:
        """Where the DAG file goes for ``pipeline``."""
        from conveyor.orchestration.airflow import safe_id

        if self.config.output:
            return os.path.abspath(self.config.output)
        dag_id = self.config._settings().get("dag_id") or safe_id(pipeline.name)
        return os.path.join(pipeline.root, ".conveyor", "airflow", f"{dag_id}.py")

    def run(self, pipeline):
        """Writes the DAG file; returns the ``airflow.DAG`` if Airflow imports here, else the
        file's path."""
        from conveyor.orchestration.airflow import AirflowDagConfig
        from conveyor.orchestration.airflow import AirflowDagRunner as _AirflowDagRunner
        from conveyor.orchestration.loader import captured_by_loader

        if captured_by_loader(pipeline):  # 'conveyor pipeline create' reading this file
            return None

        cfg = AirflowDagConfig(
            output=self.dag_file(pipeline),
            conveyor=self.config.conveyor,
            beam_args=self.config.beam_args,
            **self.config._settings(),
        )
        path = _AirflowDagRunner(cfg).run(pipeline)
        try:
            import airflow
        except ImportError:
            return path
        if getattr(airflow, "__file__", None) is None:  # a folder named airflow, not Airflow
            return path
        namespace: dict = {"__file__": path, "__name__": "conveyor_airflow_dag"}
        with open(path) as f:
            exec(compile(f.read(), path, "exec"), namespace)  # noqa: S102 - the DAG we wrote
        return namespace["dag"]

"""TFX's ``tfx.v1.orchestration``: ``LocalDagRunner``, ``metadata``, ``experimental`` (the
Kubeflow V2 runner), and the Beam and Airflow runners TFX keeps outside ``v1``
(``BeamDagRunner``; ``AirflowDagRunner`` with ``AirflowPipelineConfig``; also in
:mod:`.beam` and :mod:`.airflow`, the paths of TFX's modules).

Example::

    from conveyor import tfx

    tfx.orchestration.LocalDagRunner().run(pipeline)

Names are imported on first use.
"""

import importlib

_EXPORTS = {
    "LocalDagRunner": "local_dag_runner",
    "BeamDagRunner": "beam",
    "AirflowDagRunner": "airflow",
    "AirflowPipelineConfig": "airflow",
}
_SUBMODULES = ("airflow", "beam", "experimental", "metadata")

__all__ = sorted([*_EXPORTS, *_SUBMODULES])


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"{__name__}.{name}")
    if name in _EXPORTS:
        return getattr(importlib.import_module(f"{__name__}.{_EXPORTS[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return list(__all__)

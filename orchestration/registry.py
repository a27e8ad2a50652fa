"""Registered pipelines: what ``conveyor pipeline create`` remembers.

Each registered pipeline is ``$CONVEYOR_HOME/pipelines/<name>.json`` (default
home ``~/.conveyor``): its name, the pipeline file, its root, the engine,
for Airflow and Kubeflow the DAG file or pipeline spec compiled for it, and
its ML Metadata store when that is a MySQL server (``metadata``, no password) or a
SQLite file other than ``<root>/metadata.sqlite``.
"""

from __future__ import annotations

import json
import os
import pathlib
import time


def home() -> pathlib.Path:
    root = os.environ.get("CONVEYOR_HOME") or os.path.join(pathlib.Path.home(), ".conveyor")
    path = pathlib.Path(root) / "pipelines"
    path.mkdir(parents=True, exist_ok=True)
    return path


def _path(name: str) -> pathlib.Path:
    return home() / f"{name}.json"


def register(
    name: str,
    pipeline_path: str,
    root: str,
    engine: str,
    update: bool,
    compiled: str | None = None,
    metadata: dict | None = None,
) -> dict:
    """Records a pipeline; ``compiled`` is its Airflow DAG file or Kubeflow spec, if any;
    ``metadata`` where its ML Metadata is when not SQLite under the root (no password:
    :func:`conveyor.orchestration.metadata_flags.record_entry`)."""
    path = _path(name)
    if path.exists() and not update:
        raise FileExistsError(f"pipeline {name!r} already exists; use 'conveyor pipeline update'")
    if not path.exists() and update:
        raise FileNotFoundError(f"pipeline {name!r} does not exist; use 'conveyor pipeline create'")
    record = {
        "name": name,
        "pipeline_path": os.path.abspath(pipeline_path),
        "root": root,
        "engine": engine,
        "compiled": compiled,
        "metadata": metadata,
        "updated": time.strftime("%Y-%m-%dT%H:%M:%S"),
    }
    tmp = path.with_suffix(f".tmp{os.getpid()}")
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    os.replace(tmp, path)
    return record


def get(name: str) -> dict:
    path = _path(name)
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in home().glob("*.json"))) or "none"
        raise FileNotFoundError(f"no registered pipeline {name!r} (registered: {known})")
    return json.loads(path.read_text())


def delete(name: str) -> None:
    get(name)
    _path(name).unlink()


def all_pipelines() -> list[dict]:
    return [json.loads(p.read_text()) for p in sorted(home().glob("*.json"))]

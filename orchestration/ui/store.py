"""What the UI reads: the registered pipelines, the pipeline roots given, their ML Metadata.

Every pipeline root holds its store at ``<root>/metadata.sqlite``, unless its
pipeline names a SQLite file elsewhere (registered so: TFX's ``metadata_path``) or
keeps ML Metadata on a MySQL server (registered so, or shown with
``conveyor ui --metadata-mysql``: the ``roots`` given may then be ``ConnectionConfig``
messages too). A store is opened once (a SQLite one is never created: a root
without one has no runs yet) and read under a lock of its own, since the web
server answers from several threads; each read goes through
:class:`conveyor.orchestration.Metadata`, which takes the store's lock file and
retries while a runner writing at the same time holds the database.
"""

from __future__ import annotations

import json
import os
import threading

from conveyor.orchestration import registry


class NotFound(LookupError):
    """What a request names does not exist (the API answers 404 with the message)."""


class PipelineRef:
    """A pipeline the UI knows: its name, root and, when registered, its record.

    Args:
      name: the pipeline's name (its ML Metadata context).
      root: its pipeline root (absolute); None for one found on a MySQL server that
        recorded none (:data:`NO_ROOT`, inside which no file is).
      record: its registry record (``conveyor pipeline create``), or None for a
        pipeline found only in a ``--root`` store or on a MySQL server.
      connection: the ``ConnectionConfig`` of its MySQL store; None: SQLite
        (:attr:`metadata_path`).
    """

    def __init__(self, name: str, root: str | None, record: dict | None = None, connection=None):
        self.name = name
        self.root = os.path.realpath(root) if root else NO_ROOT
        self.record = record
        self.connection = connection

    @property
    def engine(self) -> str | None:
        """``local``, ``beam``, ``airflow``, ``kubeflow``; None when not registered."""
        return self.record["engine"] if self.record else None

    @property
    def startable(self) -> bool:
        """Whether the UI can start a run of it (a registered local or Beam pipeline)."""
        return self.engine in ("local", "beam")

    @property
    def metadata_path(self) -> str:
        """Its SQLite file: the one its registry record names, else ``<root>/metadata.sqlite``."""
        from conveyor.orchestration.metadata_flags import sqlite_path_of_record

        return sqlite_path_of_record({**(self.record or {}), "root": self.root})

    @property
    def store_key(self) -> str:
        """Which store holds it: the SQLite path, or ``mysql://user@host:port/db``."""
        if self.connection is not None:
            from conveyor.orchestration.metadata import describe_config

            return describe_config(self.connection)
        return self.metadata_path


#: The root of a pipeline whose MySQL store recorded none: a path below a file, so no real
#: path is ever inside it and nothing is served from it.
NO_ROOT = os.path.join(os.devnull, "no-pipeline-root")


class Store:
    """The pipelines of a registry (``CONVEYOR_HOME``) and of extra pipeline roots.

    Args:
      roots: pipeline roots to show beside the registered pipelines; each one's
        ``metadata.sqlite`` may hold several pipelines. An item may also be a MySQL
        ``ConnectionConfig`` (``--metadata-mysql``): every pipeline on that server too.

    Example::

        store = Store(["out/demo"])
        [p.name for p in store.pipelines()]     # ['flights']
        with store.metadata(store.pipeline("flights")) as md:
            md.runs("flights")
    """

    def __init__(self, roots: list | None = None):
        folders = [r for r in roots or [] if isinstance(r, (str, os.PathLike))]
        self.servers = [r for r in roots or [] if not isinstance(r, (str, os.PathLike))]
        self.roots = [os.path.realpath(r) for r in folders]
        for r in self.roots:
            if not os.path.isdir(r):
                raise FileNotFoundError(f"--root {r}: no such folder")
        for c in self.servers:
            if not (hasattr(c, "HasField") and c.HasField("mysql")):
                raise TypeError(f"roots: a folder or a MySQL ConnectionConfig, not {c!r}")
        self._open: dict[str, object] = {}
        self._records: dict[tuple, object] = {}
        self._locks: dict[str, threading.Lock] = {}
        self._guard = threading.Lock()

    # -- pipelines --------------------------------------------------------------

    def pipelines(self) -> list[PipelineRef]:
        """Every pipeline known: registered ones first, then those in the roots' stores."""
        refs: dict[str, PipelineRef] = {}
        for record in registry.all_pipelines():
            refs[record["name"]] = PipelineRef(
                record["name"], record["root"], record, self._record_connection(record)
            )
        for root in self.roots:
            for name in self._pipeline_names(root):
                refs.setdefault(name, PipelineRef(name, root))
        for config in self.servers:
            for name, root in self._server_pipelines(config):
                refs.setdefault(name, PipelineRef(name, root, connection=config))
        return list(refs.values())

    def _record_connection(self, record: dict):
        """The MySQL ``ConnectionConfig`` a registered pipeline's record names (None: SQLite),
        worked out once per version of the record."""
        if not record.get("metadata"):
            return None
        key = (record["name"], record.get("updated"))
        if key not in self._records:
            from conveyor.orchestration.metadata_flags import config_of_record

            self._records[key] = config_of_record(record)
        return self._records[key]

    def _server_pipelines(self, config) -> list[tuple[str, str | None]]:
        """``(name, root)`` of every pipeline in a MySQL store (root: as its latest run
        recorded it)."""
        from conveyor.orchestration.metadata import PIPELINE_CONTEXT, describe_config

        with self._reading(describe_config(config), config) as md:
            contexts = md._call(md.store.get_contexts_by_type, PIPELINE_CONTEXT)
            return [
                (c.name, c.custom_properties["root"].string_value or None)
                if "root" in c.custom_properties
                else (c.name, None)
                for c in contexts
            ]

    def pipeline(self, name: str) -> PipelineRef:
        """The pipeline named ``name``; :class:`NotFound` naming those known otherwise."""
        refs = {p.name: p for p in self.pipelines()}
        if name not in refs:
            known = ", ".join(sorted(refs)) or "none"
            raise NotFound(f"no pipeline {name!r} (known: {known})")
        return refs[name]

    def known_roots(self) -> list[str]:
        """The real paths of every pipeline root: the only folders files are served from."""
        return sorted({p.root for p in self.pipelines()} | set(self.roots))

    def _pipeline_names(self, root: str) -> list[str]:
        from conveyor.orchestration.metadata import PIPELINE_CONTEXT

        path = os.path.join(root, "metadata.sqlite")
        with self._reading(path) as md:
            if md is None:
                return []
            return [c.name for c in md._call(md.store.get_contexts_by_type, PIPELINE_CONTEXT)]

    # -- stores -----------------------------------------------------------------

    def metadata(self, ref: PipelineRef):
        """A context manager giving ``ref``'s :class:`Metadata` (None: no runs yet), read alone."""
        return self._reading(ref.store_key, ref.connection)

    def _reading(self, path: str, connection=None):
        with self._guard:
            lock = self._locks.setdefault(path, threading.Lock())
        return _Reading(self, path, lock, connection)

    def _get(self, path: str, connection=None):
        if path not in self._open:
            from conveyor.orchestration.metadata import Metadata

            if connection is not None:  # a server's store: opened (made) as runs would
                self._open[path] = Metadata(connection)
                return self._open[path]
            if not os.path.exists(path):
                return None
            self._open[path] = Metadata(path)
        return self._open[path]

    # -- runs -------------------------------------------------------------------

    def find_run(self, run_id: str, pipeline: str | None = None) -> PipelineRef:
        """The pipeline that has a run ``run_id`` (among all, or the one named)."""
        from conveyor.orchestration.metadata import RUN_CONTEXT

        refs = [self.pipeline(pipeline)] if pipeline else self.pipelines()
        for ref in refs:
            with self.metadata(ref) as md:
                if md is None:
                    continue
                ctx = md._call(
                    md.store.get_context_by_type_and_name, RUN_CONTEXT, f"{ref.name}.{run_id}"
                )
                if ctx is not None:
                    return ref
        raise NotFound(f"no run {run_id!r}" + (f" of pipeline {pipeline!r}" if pipeline else ""))

    def find_artifact(self, artifact_id: int, pipeline: str | None = None) -> PipelineRef:
        """The pipeline whose store holds artifact ``artifact_id``.

        Artifact ids are per store: without ``pipeline``, the id must be in exactly one
        known store (else :class:`NotFound`, or ``LookupError`` naming the candidates).
        """
        refs = [self.pipeline(pipeline)] if pipeline else self.pipelines()
        found: dict[str, PipelineRef] = {}
        for ref in refs:
            if ref.store_key in found:
                continue
            with self.metadata(ref) as md:
                if md is not None and md._call(md.store.get_artifacts_by_id, [artifact_id]):
                    found[ref.store_key] = ref
        if not found:
            raise NotFound(f"no artifact {artifact_id}")
        if len(found) > 1:
            names = ", ".join(sorted(r.name for r in found.values()))
            raise Ambiguous(
                f"artifact {artifact_id} is in several stores ({names}): add ?pipeline="
            )
        return next(iter(found.values()))


class Ambiguous(LookupError):
    """An id that several stores hold (the API answers 409)."""


class _Reading:
    def __init__(self, store: Store, path: str, lock: threading.Lock, connection=None):
        self.store, self.path, self.lock = store, path, lock
        self.connection = connection

    def __enter__(self):
        self.lock.acquire()
        try:
            return self.store._get(self.path, self.connection)
        except BaseException:
            self.lock.release()
            raise

    def __exit__(self, *exc):
        self.lock.release()


def read_json(path: str):
    """A JSON file's content, or None when it is missing or not JSON."""
    try:
        with open(path) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None

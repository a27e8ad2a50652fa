"""Recording pipelines in ML Metadata: artifacts, executions, contexts, events.

Uses the real ``ml-metadata`` library; SQLite at ``<root>/metadata.sqlite`` by
default, any MLMD ``ConnectionConfig`` otherwise: a MySQL or MariaDB server
(:func:`mysql_config`) that several runs and teams share. Every pipeline run is a
context (``conveyor.PipelineRun``) inside the pipeline's context
(``conveyor.Pipeline``); every component is a ``conveyor.Node`` context; every
execution links its input and output artifacts by events, so lineage can be
walked both ways.

SQLite allows one writer at a time and MLMD reports a busy database as an
error, so calls on a SQLite store are serialized across processes with a lock
file beside the database. A MySQL server takes writers at once: a call that a
deadlock undid, or that lost the race to make the same type or context, is
made again.

Each execution records the process that runs it (pid, host and a token that
tells it from a later process given the same pid), and each run started by a
runner records the runner's process the same way on its ``conveyor.PipelineRun``
context, so a reader can tell an execution or a run that is still going from
one whose process is gone: :meth:`Metadata.run_summary` does, and
:meth:`Metadata.reap_lost` records the executions of vanished processes FAILED
and removes their temporary outputs.
"""

from __future__ import annotations

import contextlib
import copy
import fcntl
import json
import os
import shutil
import socket
import time
from collections.abc import Iterable

from conveyor.beam_utils.errors import UsageError
from conveyor.dsl.artifacts import ARTIFACT_TYPES, Artifact, declared_properties, make_artifact

PIPELINE_CONTEXT = "conveyor.Pipeline"
RUN_CONTEXT = "conveyor.PipelineRun"
NODE_CONTEXT = "conveyor.Node"

# Execution states as recorded (MLMD's Execution.State names).
RUNNING, COMPLETE, FAILED, CACHED, CANCELED = "RUNNING", "COMPLETE", "FAILED", "CACHED", "CANCELED"
#: What ``run_summary`` shows for a component of a run that has no execution (yet).
NOT_STARTED = "NOT_STARTED"
DONE_STATES = (COMPLETE, CACHED)
#: A component that did not run: its condition was false, or a producer it needs was skipped.
#: MLMD has no such state: recorded as last_known_state CANCELED, with our "state" SKIPPED.
SKIPPED = "SKIPPED"


# -- processes ------------------------------------------------------------------


def _proc_stat(pid: int) -> tuple[str, str] | None:
    """``(state letter, start time in clock ticks since boot)`` from /proc, or None without it."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            stat = f.read()
    except FileNotFoundError:
        return ("gone", "")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) ", comm may hold spaces
    return fields[0], fields[19]


def _boot_id() -> str:
    try:
        with open("/proc/sys/kernel/random/boot_id") as f:
            return f.read().strip()
    except OSError:
        return ""


def process_identity(pid: int | None = None) -> dict:
    """``{"pid", "host", "token"}`` of a process (default: this one).

    The token (boot id and start time, on Linux) tells the process from a later
    one that gets the same pid, after a reboot too; elsewhere it is empty and
    only the pid is checked.
    """
    pid = pid or os.getpid()
    stat = _proc_stat(pid) if os.path.exists("/proc/self/stat") else None
    token = f"{_boot_id()}:{stat[1]}" if stat and stat[1] else ""
    return {"pid": pid, "host": socket.gethostname(), "token": token}


def process_alive(info: dict) -> bool | None:
    """Whether a process recorded by :func:`process_identity` still runs.

    None when that cannot be told from here: another host, or nothing recorded.
    A zombie (exited, not yet waited for) counts as gone.
    """
    pid = int(info.get("pid") or 0)
    if not pid or info.get("host") != socket.gethostname():
        return None
    if os.path.exists("/proc/self/stat"):
        stat = _proc_stat(pid)
        if stat is not None:
            if stat[0] in ("gone", "Z", "X"):
                return False
            token = info.get("token")
            return not token or token == f"{_boot_id()}:{stat[1]}"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def describe_process(info: dict) -> str:
    return f"pid {info.get('pid')} on {info.get('host') or '?'}"


def remove_staging(uris, beam_args: list[str] | None = None) -> dict[str, str]:
    """Removes temporary output folders (``<root>/<component>/<key>/.<execution>.tmp``), on
    local disk or on an object store; returns those it could not remove, each with the store's
    error (it must not hide why the execution ended, and a later run tries again).

    ``beam_args`` (the execution's own flags: ``--s3_endpoint_url``, credentials...) set up
    Beam's FileSystems for a remote URI; without them, as they were set last in this process.
    """
    remote = []
    for uri in uris:
        if "://" in uri:
            remote.append(uri)
        else:
            shutil.rmtree(uri, ignore_errors=True)
    if not remote:
        return {}
    from conveyor.beam_utils import publish

    if beam_args is not None:
        from apache_beam.io.filesystems import FileSystems
        from apache_beam.options.pipeline_options import PipelineOptions

        # Not pipeline_options(): cleaning up must not wait on the engine the flags name.
        FileSystems.set_options(PipelineOptions(list(beam_args)))
    failed = {}
    for uri in remote:
        try:
            publish.remove_tree(uri)
        except Exception as exc:  # any store error: reported to the caller, tried again later
            failed[uri] = str(exc)
    return failed


def sqlite_config(path: str):
    """An MLMD ``ConnectionConfig`` for a SQLite file (created if missing)."""
    from ml_metadata.proto import metadata_store_pb2

    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    config = metadata_store_pb2.ConnectionConfig()
    config.sqlite.filename_uri = path
    config.sqlite.connection_mode = (
        metadata_store_pb2.SqliteMetadataSourceConfig.READWRITE_OPENCREATE
    )
    return config


def mysql_config(host: str, port: int, database: str, user: str, password: str = ""):
    """An MLMD ``ConnectionConfig`` for a MySQL (or MariaDB) server; ML Metadata creates
    ``database`` if it is missing (the user needs the CREATE privilege for that).

    Example::

        Pipeline("flights", root="out/flights", components=[...],
                 metadata_connection_config=mysql_config("127.0.0.1", 3306, "conveyor",
                                                         "conveyor", os.environ["PW"]))
    """
    from ml_metadata.proto import metadata_store_pb2

    if not host or not isinstance(host, str):
        raise ValueError(f"mysql_config: host is a host name or address, not {host!r}")
    if not database or not isinstance(database, str):
        raise ValueError(f"mysql_config: database is a database name, not {database!r}")
    try:
        port = int(port)
    except (TypeError, ValueError):
        port = -1
    if not 0 < port < 65536:
        raise ValueError(f"mysql_config: port is a port number (1-65535), not {port!r}")
    config = metadata_store_pb2.ConnectionConfig()
    config.mysql.host = host
    config.mysql.port = port
    config.mysql.database = database
    config.mysql.user = user or ""
    config.mysql.password = password or ""
    return config


def describe_config(config) -> str:
    """Where a ``ConnectionConfig`` points, without its password: ``mysql://user@host:port/db``
    or ``sqlite:PATH``."""
    if config.HasField("mysql"):
        m = config.mysql
        where = f"{m.host}:{m.port}" if m.host else f"socket {m.socket}"
        return f"mysql://{m.user + '@' if m.user else ''}{where}/{m.database}"
    if config.HasField("sqlite"):
        return f"sqlite:{config.sqlite.filename_uri}"
    return config.WhichOneof("config") or "an empty ConnectionConfig"


class MetadataConnectionError(UsageError):
    """The metadata store cannot be reached or opened; the message names it and what to do."""


def _connection_error(config, error: Exception) -> MetadataConnectionError:
    """Why a MySQL store did not open, told apart by a plain TCP connection (MLMD's own
    message names neither the server nor the cause)."""
    m = config.mysql
    where = describe_config(config)
    if m.host:
        try:
            socket.create_connection((m.host, m.port or 3306), timeout=5).close()
        except OSError as e:
            return MetadataConnectionError(
                f"no MySQL server answers at {m.host}:{m.port or 3306} ({e.strerror or e}): "
                "start one (a private MariaDB for tests and trials: python -m "
                "conveyor.orchestration.engines start mariadb, then use the flags in "
                ".engines/mariadb.args and the password in .engines/mariadb.env), or give "
                "the server's address with --metadata-mysql HOST:PORT/DATABASE"
            )
    return MetadataConnectionError(
        f"the MySQL server at {where} did not open the ML Metadata store ({error}): check the "
        "user (--metadata-mysql-user or CONVEYOR_MYSQL_USER), the password "
        "(CONVEYOR_MYSQL_PASSWORD) and that the user may create and use database "
        f"{m.database!r} (GRANT ALL PRIVILEGES ON `{m.database}`.* TO the user)"
    )


#: Errors of MySQL that a retry of the same call gets past: lock waits and deadlocks between
#: two runs writing at once, and the race of two processes making the same type or context.
_MYSQL_TRANSIENT = ("deadlock", "lock wait timeout", "try restarting transaction")


class Metadata:
    """A pipeline's ML Metadata store.

    Args:
      connection_config: an MLMD ``ConnectionConfig`` (SQLite, or a MySQL/MariaDB
        server: :func:`mysql_config`), or a path to a SQLite file.

    A MySQL store that cannot be reached is a :class:`MetadataConnectionError`
    naming the server and how to start one.
    """

    def __init__(self, connection_config):
        from ml_metadata.metadata_store import metadata_store

        if isinstance(connection_config, (str, os.PathLike)):
            connection_config = sqlite_config(str(connection_config))
        self.config = connection_config
        self._lock_path = None
        self._mysql = connection_config.HasField("mysql")
        if connection_config.HasField("sqlite"):
            self._lock_path = connection_config.sqlite.filename_uri + ".lock"
        if not self._mysql:
            with self._locked():
                self.store = metadata_store.MetadataStore(connection_config)
                self._types = self._register_types()
            return
        for attempt in range(10):
            try:
                self.store = metadata_store.MetadataStore(connection_config)
            except Exception as e:  # MLMD raises RuntimeError with no cause for every failure
                if "mysql_real_connect" in str(e):
                    raise _connection_error(connection_config, e) from None
                if attempt == 9:
                    raise
                # Two processes making the schema of a new database at once: one sees the
                # other's half-made tables; it is whole a moment later.
                time.sleep(0.2 * (attempt + 1))
                continue
            break
        self._types = self._call(self._register_types, retry_exists=True)

    # -- locking ----------------------------------------------------------------

    @contextlib.contextmanager
    def _locked(self):
        if self._lock_path is None:
            yield
            return
        try:
            f = open(self._lock_path, "a")
        except OSError:  # a read-only root: nobody writes there, reading needs no lock
            yield
            return
        with f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    def _call(self, fn, *args, retry_exists: bool = False, **kwargs):
        """One store call under the lock, retried briefly if the database is busy (SQLite) or
        a transaction met another's (MySQL). ``retry_exists``: ``fn`` gets or makes something
        by name, so "already exists" (another process made it first) is retried too."""
        import ml_metadata.errors as mlmd_errors

        for attempt in range(20):
            try:
                with self._locked():
                    return fn(*args, **kwargs)
            except Exception as e:  # MLMD raises its own errors for a busy database
                text = str(e).lower()
                transient = "locked" in text or "busy" in text
                if self._mysql:
                    transient = transient or any(t in text for t in _MYSQL_TRANSIENT)
                    if retry_exists and isinstance(e, mlmd_errors.AlreadyExistsError):
                        transient = True
                if not transient or attempt == 19:
                    raise
                time.sleep(0.05 * (attempt + 1))

    def _held(self, fn, *args):
        """One store call inside a block that holds the lock already (SQLite: no retry, the
        lock keeps others out; MySQL: no lock, so retried as :meth:`_call` retries). Each MLMD
        call is one transaction, so a call a deadlock undid can be made again."""
        if not self._mysql:
            return fn(*args)
        return self._call(fn, *args)

    # -- types ------------------------------------------------------------------

    def _register_types(self) -> dict:
        from ml_metadata.proto import metadata_store_pb2 as pb

        types = {}
        for name in ARTIFACT_TYPES:
            types[name] = self.store.put_artifact_type(
                _artifact_type_proto(name), can_add_fields=True, can_omit_fields=True
            )
        for name in (PIPELINE_CONTEXT, RUN_CONTEXT, NODE_CONTEXT):
            types[name] = self.store.put_context_type(pb.ContextType(name=name))
        return types

    def _artifact_type_id(self, type_name: str) -> int:
        """The id of an artifact type, registered (with its declared typed properties) if new:
        a custom artifact class is registered the first time one of its artifacts is recorded."""
        if type_name not in self._types:
            self._types[type_name] = self._call(
                self.store.put_artifact_type,
                _artifact_type_proto(type_name),
                can_add_fields=True,
                can_omit_fields=True,
                retry_exists=True,
            )
        return self._types[type_name]

    def _execution_type(self, type_name: str) -> int:
        from ml_metadata.proto import metadata_store_pb2 as pb

        key = "exec:" + type_name
        if key not in self._types:
            t = pb.ExecutionType(name=type_name)
            for prop in ("component_id", "run_id", "pipeline_name", "cache_key", "state"):
                t.properties[prop] = pb.STRING
            self._types[key] = self._call(
                self.store.put_execution_type, t, can_add_fields=True, retry_exists=True
            )
        return self._types[key]

    # -- contexts ---------------------------------------------------------------

    def _context(self, type_name: str, name: str, properties: dict | None = None) -> int:
        from ml_metadata.proto import metadata_store_pb2 as pb

        def get_or_put():
            found = self.store.get_context_by_type_and_name(type_name, name)
            if found is not None:
                return found.id
            ctx = pb.Context(type_id=self._types[type_name], name=name)
            for k, v in (properties or {}).items():
                ctx.custom_properties[k].string_value = str(v)
            return self.store.put_contexts([ctx])[0]

        return self._call(get_or_put, retry_exists=True)

    def run_contexts(self, pipeline_name: str, run_id: str, component_id: str) -> list[int]:
        """Context ids (pipeline, run, node) an execution of a component belongs to."""
        p = self._context(PIPELINE_CONTEXT, pipeline_name)
        r = self._context(
            RUN_CONTEXT, f"{pipeline_name}.{run_id}", self._run_properties(pipeline_name, run_id)
        )
        n = self._context(
            NODE_CONTEXT,
            f"{pipeline_name}.{component_id}",
            {"pipeline_name": pipeline_name, "component_id": component_id},
        )
        return [p, r, n]

    # -- executions ---------------------------------------------------------------

    def start_execution(
        self,
        type_name: str,
        pipeline_name: str,
        run_id: str,
        component_id: str,
        inputs: dict[str, Artifact | list[Artifact]],
        cache_key: str,
        parameters: dict | None = None,
        process: dict | None = None,
        beam_args: list[str] | None = None,
    ) -> int:
        """Records a RUNNING execution with its input events and parameters; returns its id.

        An input may hold several artifacts (a list): one event each, its path
        ``[key, index]`` as TFX records it. ``process`` is the
        :func:`process_identity` of the process that runs it (default: this one).
        ``beam_args``, the flags the step's Beam pipeline gets (the pipeline's, then the
        component's), is recorded as a JSON list in the ``beam_args`` custom property.
        """
        from ml_metadata.proto import metadata_store_pb2 as pb

        contexts = self.run_contexts(pipeline_name, run_id, component_id)
        ex = pb.Execution(type_id=self._execution_type(type_name))
        ex.last_known_state = pb.Execution.RUNNING
        for k, v in (
            ("component_id", component_id),
            ("run_id", run_id),
            ("pipeline_name", pipeline_name),
            ("cache_key", cache_key),
            ("state", RUNNING),
        ):
            ex.properties[k].string_value = v
        ex.custom_properties["start_time"].double_value = time.time()
        if beam_args:
            ex.custom_properties["beam_args"].string_value = json.dumps(list(beam_args))
        ex.custom_properties["parameters"].string_value = json.dumps(
            parameters or {}, sort_keys=True, default=str
        )
        _set_process(ex.custom_properties, "", process or process_identity())
        events = _merged_events(
            self._event(pb.Event.INPUT, key, art, i)
            for key, arts in inputs.items()
            for i, art in enumerate(_as_list(arts))
        )
        ex_id, _, _ = self._call(self.store.put_execution, ex, [], self._contexts_by_id(contexts))
        if events:
            pairs = []
            for ev in events:
                ev.execution_id = ex_id
                pairs.append(ev)
            self._call(self.store.put_events, pairs)
        return ex_id

    def set_staging(self, execution_id: int, uris: list[str]) -> None:
        """Records where a RUNNING execution writes its outputs before they are published."""

        def put():
            [ex] = self.store.get_executions_by_id([execution_id])
            ex.custom_properties["staging"].string_value = json.dumps(list(uris))
            self.store.put_executions([ex])

        self._call(put)

    def end_if_running(self, execution_id: int, state: str, error: str) -> bool:
        """Marks an execution FAILED or CANCELED if it is still RUNNING, and removes its temporary
        outputs; returns whether it was still RUNNING (False: its process recorded an end itself)."""

        def end():
            [ex] = self.store.get_executions_by_id([execution_id])
            if ex.properties["state"].string_value != RUNNING:
                return None
            ex.last_known_state = _mlmd_state(state)
            ex.properties["state"].string_value = state
            ex.custom_properties["end_time"].double_value = time.time()
            ex.custom_properties["error"].string_value = error[-4000:]
            self.store.put_executions([ex])
            return ex

        ex = self._call(end)
        if ex is None:
            return False
        remove_staging(_staging_of(ex), _beam_args_of(ex))
        return True

    def running_executions(self, pipeline_name: str, run_id: str | None = None) -> list:
        """Executions of a pipeline (or of one of its runs) still recorded RUNNING."""
        import ml_metadata as mlmd

        if run_id is None:
            ctx = self._call(
                self.store.get_context_by_type_and_name, PIPELINE_CONTEXT, pipeline_name
            )
        else:
            ctx = self._call(
                self.store.get_context_by_type_and_name, RUN_CONTEXT, f"{pipeline_name}.{run_id}"
            )
        if ctx is None:
            return []
        options = mlmd.ListOptions(filter_query="last_known_state = RUNNING")
        return self._call(self.store.get_executions_by_context, ctx.id, list_options=options)

    def reap_lost(self, pipeline_name: str) -> list[int]:
        """Records FAILED every RUNNING execution of a pipeline whose process is gone (checked on
        this host only) and removes its temporary outputs; records a run whose runner is gone
        without recording an end FAILED too. Returns the executions so ended."""
        ended = []
        for ex in self.running_executions(pipeline_name):
            info = _get_process(ex.custom_properties, "")
            if process_alive(info) is False:
                why = f"its process ({describe_process(info)}) is gone; found still RUNNING by a later run"
                if self.end_if_running(ex.id, FAILED, why):
                    ended.append(ex.id)
        for ctx in self._run_contexts_of(pipeline_name):
            props = ctx.custom_properties
            if "state" in props and props["state"].string_value == RUNNING:
                runner = _get_process(props, "runner_")
                if process_alive(runner) is False:
                    self._set_run_state(ctx.id, FAILED, f"runner gone ({describe_process(runner)})")
        return ended

    # -- runs -------------------------------------------------------------------------

    def start_run(
        self,
        pipeline_name: str,
        run_id: str,
        component_ids: list[str],
        runner: dict | None = None,
        root: str | None = None,
    ) -> None:
        """Records a run a runner starts: its components, the runner's process, state RUNNING;
        ``root``, the pipeline root, on the pipeline's context (:meth:`pipeline_root`)."""
        self._note_root(pipeline_name, root)
        ctx_id = self._context(
            RUN_CONTEXT, f"{pipeline_name}.{run_id}", self._run_properties(pipeline_name, run_id)
        )

        def put():
            [ctx] = self.store.get_contexts_by_id([ctx_id])
            props = ctx.custom_properties
            props["components"].string_value = json.dumps(list(component_ids))
            _set_process(props, "runner_", runner or process_identity())
            props["runner_start_time"].double_value = time.time()
            props["state"].string_value = RUNNING
            props["reason"].string_value = ""
            self.store.put_contexts([ctx])

        self._call(put)

    def _note_root(self, pipeline_name: str, root: str | None) -> None:
        """The pipeline's context, made if new, with its latest root (a store on a server
        is shared by pipelines whose roots are anywhere: readers such as the UI find them so)."""
        ctx_id = self._context(PIPELINE_CONTEXT, pipeline_name)
        if not root:
            return

        def put():
            [ctx] = self.store.get_contexts_by_id([ctx_id])
            props = ctx.custom_properties
            if "root" not in props or props["root"].string_value != root:
                props["root"].string_value = root
                self.store.put_contexts([ctx])

        self._call(put)

    def pipeline_root(self, pipeline_name: str) -> str | None:
        """The pipeline root its latest run recorded (None: none did, or no such pipeline)."""
        ctx = self._call(self.store.get_context_by_type_and_name, PIPELINE_CONTEXT, pipeline_name)
        if ctx is None or "root" not in ctx.custom_properties:
            return None
        return ctx.custom_properties["root"].string_value or None

    def note_components(
        self, pipeline_name: str, run_id: str, component_ids: list[str], root: str | None = None
    ) -> None:
        """Records a run's components, if nothing did yet (runs an orchestrator drives one by
        one); ``root`` as :meth:`start_run` records it."""
        if root:
            self._note_root(pipeline_name, root)
        ctx_id = self._context(
            RUN_CONTEXT, f"{pipeline_name}.{run_id}", self._run_properties(pipeline_name, run_id)
        )

        def put():
            [ctx] = self.store.get_contexts_by_id([ctx_id])
            if "components" not in ctx.custom_properties:
                ctx.custom_properties["components"].string_value = json.dumps(list(component_ids))
                self.store.put_contexts([ctx])

        self._call(put)

    def record_runtime_parameters(self, pipeline_name: str, run_id: str, values: dict) -> None:
        """Records the values of a run's runtime parameters on its context (JSON ``runtime_parameters``)."""
        ctx_id = self._context(
            RUN_CONTEXT, f"{pipeline_name}.{run_id}", self._run_properties(pipeline_name, run_id)
        )

        def put():
            [ctx] = self.store.get_contexts_by_id([ctx_id])
            text = json.dumps(dict(values), sort_keys=True)
            ctx.custom_properties["runtime_parameters"].string_value = text
            self.store.put_contexts([ctx])

        self._call(put)

    def runtime_parameters(self, pipeline_name: str, run_id: str) -> dict | None:
        """The runtime parameters' values recorded for a run; None if none were."""
        ctx = self._call(
            self.store.get_context_by_type_and_name, RUN_CONTEXT, f"{pipeline_name}.{run_id}"
        )
        if ctx is None or "runtime_parameters" not in ctx.custom_properties:
            return None
        return json.loads(ctx.custom_properties["runtime_parameters"].string_value)

    def record_skipped(
        self,
        type_name: str,
        pipeline_name: str,
        run_id: str,
        component_id: str,
        parameters: dict,
        reason: str,
    ) -> int:
        """Records an execution that did not run: state SKIPPED (MLMD's CANCELED), its parameters and
        why (``skip_reason``); returns its id."""
        ex_id = self.start_execution(
            type_name, pipeline_name, run_id, component_id, {}, "", parameters
        )

        def put():
            [ex] = self.store.get_executions_by_id([ex_id])
            ex.last_known_state = _mlmd_state(SKIPPED)
            ex.properties["state"].string_value = SKIPPED
            ex.custom_properties["end_time"].double_value = time.time()
            ex.custom_properties["skip_reason"].string_value = reason[-4000:]
            self.store.put_executions([ex])

        self._call(put)
        return ex_id

    def finish_run(self, pipeline_name: str, run_id: str, state: str, reason: str = "") -> None:
        """Records how a run a runner started ended: COMPLETE, FAILED or CANCELED."""
        ctx = self._call(
            self.store.get_context_by_type_and_name, RUN_CONTEXT, f"{pipeline_name}.{run_id}"
        )
        if ctx is not None:
            self._set_run_state(ctx.id, state, reason)

    def _set_run_state(self, ctx_id: int, state: str, reason: str) -> None:
        def put():
            [ctx] = self.store.get_contexts_by_id([ctx_id])
            ctx.custom_properties["state"].string_value = state
            ctx.custom_properties["reason"].string_value = reason
            ctx.custom_properties["end_time"].double_value = time.time()
            self.store.put_contexts([ctx])

        self._call(put)

    @staticmethod
    def _run_properties(pipeline_name: str, run_id: str) -> dict:
        return {
            "pipeline_name": pipeline_name,
            "run_id": run_id,
            "create_time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        }

    def _run_contexts_of(self, pipeline_name: str) -> list:
        return [
            c
            for c in self._call(self.store.get_contexts_by_type, RUN_CONTEXT)
            if c.custom_properties["pipeline_name"].string_value == pipeline_name
        ]

    def _contexts_by_id(self, ids):
        return self._call(self.store.get_contexts_by_id, ids)

    @staticmethod
    def _event(kind, key: str, art: Artifact, index: int = 0):
        from ml_metadata.proto import metadata_store_pb2 as pb

        ev = pb.Event(type=kind, artifact_id=art.id)
        ev.path.steps.add().key = key
        ev.path.steps.add().index = index  # TFX's path: [key, index in the key's list]
        return ev

    def finish_execution(
        self,
        execution_id: int,
        state: str,
        outputs: dict[str, Artifact | list[Artifact]] | None = None,
        error: str | None = None,
    ) -> dict[str, Artifact | list[Artifact]]:
        """Marks an execution COMPLETE, CACHED, FAILED or CANCELED and records its outputs (LIVE).

        An output may hold several artifacts (a list, a Resolver's) or none (an
        empty list: no event). Artifacts without an id are created, their
        properties typed (:func:`set_value`); those with one (a cached or
        resolved artifact) get only the event.
        """
        from ml_metadata.proto import metadata_store_pb2 as pb

        outputs = outputs or {}
        [ex] = self._call(self.store.get_executions_by_id, [execution_id])
        ex.last_known_state = _mlmd_state(state)
        ex.properties["state"].string_value = state
        ex.custom_properties["end_time"].double_value = time.time()
        if error:
            ex.custom_properties["error"].string_value = error[-4000:]
        listed = [
            (key, i, a) for key, arts in outputs.items() for i, a in enumerate(_as_list(arts))
        ]
        new = [a for _, _, a in listed if a.id is None]
        arts = [self._artifact_proto(a) for a in new]
        held = self._held
        with self._locked():
            held(self.store.put_executions, [ex])
            ids = held(self.store.put_artifacts, arts) if arts else []
            for a, i in zip(new, ids):
                a.id = i
            events = [self._event(pb.Event.OUTPUT, key, a, i) for key, i, a in listed]
            for ev in events:
                ev.execution_id = execution_id
            if events:
                held(self.store.put_events, events)
            contexts = [c.id for c in held(self.store.get_contexts_by_execution, execution_id)]
            if listed:
                attributions = [
                    pb.Attribution(context_id=c, artifact_id=aid)
                    for c in contexts
                    for aid in sorted({a.id for _, _, a in listed})
                ]
                held(self.store.put_attributions_and_associations, attributions, [])
        return outputs

    def _artifact_proto(self, a: Artifact):
        from ml_metadata.proto import metadata_store_pb2 as pb

        type_id = self._artifact_type_id(a.type_name)
        art = pb.Artifact(type_id=type_id, uri=a.uri, state=pb.Artifact.LIVE)
        typed = _mlmd_property_types(a.type_name)
        for pk, pv in a.properties.items():
            if pk in typed and _set_typed(art.properties[pk], typed[pk], pv):
                continue
            if pk in art.properties:  # a value that does not fit the declared type: kept custom
                del art.properties[pk]
            set_value(art.custom_properties[pk], pv)
        return art

    # -- queries ------------------------------------------------------------------

    def find_cached(
        self, cache_key: str, type_name: str, pipeline_name: str | None = None
    ) -> dict[str, Artifact] | None:
        """Outputs of the latest COMPLETE execution with this cache key whose files still exist;
        of ``pipeline_name``'s executions only, when given: pipelines that share a store (a
        MySQL server, or one root) may have components alike, whose outputs are each other's
        to reuse no more than TFX's are (they lie under the other pipeline's root)."""
        executions = self._call(self.store.get_executions_by_type, type_name)
        for ex in sorted(executions, key=lambda e: e.id, reverse=True):
            if ex.properties["cache_key"].string_value != cache_key:
                continue
            if pipeline_name is not None and (
                ex.properties["pipeline_name"].string_value != pipeline_name
            ):
                continue
            if ex.properties["state"].string_value not in (COMPLETE,):
                continue
            outputs = self.outputs_of_execution(ex.id)
            if outputs and all(
                os.path.exists(a.uri) for a in outputs.values() if "://" not in a.uri
            ):
                return outputs
        return None

    def outputs_of_execution(self, execution_id: int) -> dict[str, Artifact]:
        """``{key: Artifact}``: each output's (first) artifact."""
        return _firsts(self._artifacts_by_event(execution_id, output=True))

    def inputs_of_execution(self, execution_id: int) -> dict[str, Artifact]:
        """``{key: Artifact}``: each input's (first) artifact."""
        return _firsts(self._artifacts_by_event(execution_id, output=False))

    def output_lists_of_execution(self, execution_id: int) -> dict[str, list[Artifact]]:
        """``{key: [Artifact, ...]}``: every artifact of each output, in event path order."""
        return self._artifacts_by_event(execution_id, output=True)

    def input_lists_of_execution(self, execution_id: int) -> dict[str, list[Artifact]]:
        """``{key: [Artifact, ...]}``: every artifact of each input, in event path order."""
        return self._artifacts_by_event(execution_id, output=False)

    def _artifacts_by_event(self, execution_id: int, output: bool) -> dict[str, list[Artifact]]:
        from ml_metadata.proto import metadata_store_pb2 as pb

        events = self._call(self.store.get_events_by_execution_ids, [execution_id])
        wanted = pb.Event.OUTPUT if output else pb.Event.INPUT
        chosen = [e for e in events if e.type == wanted]
        if not chosen:
            return {}
        arts = {
            a.id: a
            for a in self._call(self.store.get_artifacts_by_id, [e.artifact_id for e in chosen])
        }
        return _by_key(chosen, arts, self._type_names())

    def _type_names(self) -> dict[int, str]:
        return {t.id: t.name for t in self._call(self.store.get_artifact_types)}

    def executions_of_run(self, pipeline_name: str, run_id: str):
        """The executions recorded in one run, oldest first."""
        ctx = self._call(
            self.store.get_context_by_type_and_name, RUN_CONTEXT, f"{pipeline_name}.{run_id}"
        )
        if ctx is None:
            return []
        return sorted(self._call(self.store.get_executions_by_context, ctx.id), key=lambda e: e.id)

    def latest_outputs(
        self, pipeline_name: str, run_id: str, component_id: str
    ) -> dict[str, Artifact] | None:
        """Outputs of a component's successful (or cached) execution in a run."""
        lists = self.latest_output_lists(pipeline_name, run_id, component_id)
        return None if lists is None else _firsts(lists)

    def latest_output_lists(
        self, pipeline_name: str, run_id: str, component_id: str
    ) -> dict[str, list[Artifact]] | None:
        """Every artifact of each output of a component's successful (or cached) execution in a
        run; a Resolver's output may hold several, or none (the key is then absent)."""
        for ex in reversed(self.executions_of_run(pipeline_name, run_id)):
            if ex.properties["component_id"].string_value != component_id:
                continue
            if ex.properties["state"].string_value in (COMPLETE, CACHED):
                return self.output_lists_of_execution(ex.id)
        return None

    def runs(self, pipeline_name: str) -> list[dict]:
        """Runs of a pipeline, newest first: ``{run_id, create_time, states, state, reason}``.

        ``states`` are the recorded states of its executions; ``state`` and
        ``reason`` the run's, as :meth:`run_summary` tells them.
        """
        ctx = self._call(self.store.get_context_by_type_and_name, PIPELINE_CONTEXT, pipeline_name)
        if ctx is None:
            return []
        out = []
        for c in sorted(self._run_contexts_of(pipeline_name), key=lambda c: c.id, reverse=True):
            run_id = c.custom_properties["run_id"].string_value
            summary = self.run_summary(pipeline_name, run_id, context=c)
            out.append(
                {
                    "run_id": run_id,
                    "create_time": c.custom_properties["create_time"].string_value,
                    "states": [e["state"] for e in summary["executions"]],
                    "state": summary["state"],
                    "reason": summary["reason"],
                }
            )
        return out

    def run_status(self, pipeline_name: str, run_id: str) -> list[dict]:
        """Each execution of a run, as recorded: component, state, seconds, cached or not, error.

        ``alive`` says, for a RUNNING one, whether its process still runs (None:
        cannot be told from this host).
        """
        out = []
        for ex in self.executions_of_run(pipeline_name, run_id):
            start = ex.custom_properties["start_time"].double_value
            end = (
                ex.custom_properties["end_time"].double_value
                if "end_time" in ex.custom_properties
                else None
            )
            state = ex.properties["state"].string_value
            process = _get_process(ex.custom_properties, "")
            out.append(
                {
                    "component_id": ex.properties["component_id"].string_value,
                    "state": state,
                    "seconds": round(end - start, 2) if end else None,
                    "cached": state == CACHED,
                    "execution_id": ex.id,
                    "error": ex.custom_properties["error"].string_value
                    if "error" in ex.custom_properties
                    else "",
                    "reason": ex.custom_properties["skip_reason"].string_value
                    if "skip_reason" in ex.custom_properties
                    else "",
                    "process": process,
                    "alive": process_alive(process) if state == RUNNING else False,
                }
            )
        return out

    def run_summary(self, pipeline_name: str, run_id: str, context=None) -> dict | None:
        """A run's state and each component's, as ``conveyor run status`` shows them; None if no such run.

        Returns ``{"run_id", "state", "reason", "create_time", "runner", "components",
        "executions"}``. ``components`` has one row per component (its latest
        execution): the recorded state, except that an execution recorded
        RUNNING whose process is gone shows as FAILED; a component without an
        execution shows as NOT_STARTED. The run's state is RUNNING while a
        component runs or its runner is alive; else the end its runner recorded
        (COMPLETE, FAILED or CANCELED); else FAILED with reason "runner gone" if
        its runner's process is gone; a run an orchestrator drives component by
        component (no runner recorded) is FAILED or CANCELED if a component is,
        COMPLETE when all are done, RUNNING otherwise.
        """
        ctx = context or self._call(
            self.store.get_context_by_type_and_name, RUN_CONTEXT, f"{pipeline_name}.{run_id}"
        )
        if ctx is None:
            return None
        props = ctx.custom_properties
        executions = self.run_status(pipeline_name, run_id)
        latest: dict[str, dict] = {}
        for row in executions:
            latest[row["component_id"]] = row
        planned = json.loads(props["components"].string_value) if "components" in props else []
        order = list(planned) + [cid for cid in latest if cid not in planned]
        rows = []
        for cid in order:
            row = latest.get(cid)
            if row is None:
                rows.append(
                    {
                        "component_id": cid,
                        "state": NOT_STARTED,
                        "recorded_state": None,
                        "seconds": None,
                        "cached": False,
                        "execution_id": None,
                        "error": "",
                    }
                )
                continue
            row = dict(row, recorded_state=row["state"])
            if row["state"] == RUNNING and row["alive"] is False:
                row["state"] = FAILED
                row["error"] = (
                    f"its process ({describe_process(row['process'])}) is gone (recorded RUNNING)"
                )
            rows.append(row)
        states = [r["state"] for r in rows]
        recorded = props["state"].string_value if "state" in props else ""
        runner = _get_process(props, "runner_")
        reason = props["reason"].string_value if "reason" in props else ""
        if RUNNING in states:
            state, reason = RUNNING, ""
        elif recorded in (COMPLETE, FAILED, CANCELED):
            state = recorded
        elif runner:
            if process_alive(runner) is False:
                state, reason = FAILED, f"runner gone ({describe_process(runner)})"
            else:
                state, reason = RUNNING, ""
        elif FAILED in states:
            state = FAILED
        elif CANCELED in states:
            state = CANCELED
        elif rows and all(st in DONE_STATES or st == SKIPPED for st in states):
            state = COMPLETE
        else:
            state = RUNNING
        return {
            "run_id": run_id,
            "state": state,
            "reason": reason,
            "create_time": props["create_time"].string_value,
            "runner": runner,
            "components": rows,
            "executions": executions,
        }

    def lineage(self, artifact_id: int) -> list[tuple[str, Artifact]]:
        """Every artifact upstream of one, with the component that produced it.

        Returns ``[(producer component id, artifact), ...]``: for a Model, the
        Examples, Schema and TransformGraph it was trained from, and theirs.
        """
        from ml_metadata.proto import metadata_store_pb2 as pb

        seen: set[int] = {artifact_id}
        out = []
        frontier = [artifact_id]
        while frontier:
            events = self._call(self.store.get_events_by_artifact_ids, frontier)
            producers = sorted({e.execution_id for e in events if e.type == pb.Event.OUTPUT})
            frontier = []
            for ex_id in producers:
                for art in (
                    a for arts in self.input_lists_of_execution(ex_id).values() for a in arts
                ):
                    if art.id in seen:
                        continue
                    seen.add(art.id)
                    out.append((self.producer_of(art.id), art))
                    frontier.append(art.id)
        return out

    def producing_execution(self, artifact_id: int):
        """``(component id, parameters dict)`` of the execution that first output an artifact."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        events = self._call(self.store.get_events_by_artifact_ids, [artifact_id])
        outs = sorted(e.execution_id for e in events if e.type == pb.Event.OUTPUT)
        if not outs:
            return None, {}
        [ex] = self._call(self.store.get_executions_by_id, [outs[0]])
        params = (
            ex.custom_properties["parameters"].string_value
            if "parameters" in ex.custom_properties
            else "{}"
        )
        return ex.properties["component_id"].string_value, json.loads(params)

    def producer_of(self, artifact_id: int) -> str | None:
        """The component id of the first execution that output an artifact."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        events = self._call(self.store.get_events_by_artifact_ids, [artifact_id])
        outs = sorted(e.execution_id for e in events if e.type == pb.Event.OUTPUT)
        if not outs:
            return None
        [ex] = self._call(self.store.get_executions_by_id, [outs[0]])
        return ex.properties["component_id"].string_value

    def artifacts_of_type(self, type_name: str) -> list[Artifact]:
        """Every artifact of a type in the store, with its properties, oldest first."""
        arts = self._call(self.store.get_artifacts_by_type, type_name)
        names = self._type_names()
        return [_artifact_of(a, names) for a in sorted(arts, key=_age)]

    # -- what resolvers read (conveyor.dsl.resolver.ArtifactStore) --------------------

    #: The pipeline :meth:`artifacts` looks in (None: the whole store); see :meth:`for_pipeline`.
    scope: str | None = None

    def for_pipeline(self, pipeline_name: str) -> Metadata:
        """This store seen from one pipeline: :meth:`artifacts` gives that pipeline's only.

        The view a Resolver's strategy gets (a :class:`conveyor.dsl.ArtifactStore`).
        """
        view = copy.copy(self)
        view.scope = pipeline_name
        return view

    def _first_outputs(self, artifact_ids: list[int]) -> dict[int, tuple]:
        """``{artifact id: (execution, output key)}`` of the execution that first output each."""
        if not artifact_ids:
            return {}
        events = self._call(self.store.get_events_by_artifact_ids, list(artifact_ids))
        first = {aid: (x, key) for aid, (x, key, _) in _first_output_events(events).items()}
        if not first:
            return {}
        executions = {
            ex.id: ex
            for ex in self._call(
                self.store.get_executions_by_id, sorted({x for x, _ in first.values()})
            )
        }
        return {aid: (executions[x], key) for aid, (x, key) in first.items() if x in executions}

    def artifacts(
        self,
        type_name: str,
        producer_component_id: str | None = None,
        output_key: str | None = None,
    ) -> list[Artifact]:
        """The live artifacts of a type, oldest first (newest last), with their typed properties.

        Only the pipeline's (:meth:`for_pipeline`) when the store is seen from one;
        only those first output by the component ``producer_component_id`` (on
        ``output_key``) when given. An artifact's producer is the execution that
        first output it (a Resolver passing it on, or a cached rerun, is not).

        Seen from a pipeline, only that pipeline's artifacts are read (those
        attributed to its ``conveyor.Pipeline`` context, or to the component's
        ``conveyor.Node`` context): a handful of queries whatever else the store
        holds. See :meth:`_scoped_artifacts`.
        """
        from ml_metadata.proto import metadata_store_pb2 as pb

        if self.scope is not None:
            live = self._scoped_artifacts(type_name, producer_component_id, output_key)
        else:
            live = [
                a
                for a in self._call(self.store.get_artifacts_by_type, type_name)
                if a.state == pb.Artifact.LIVE
            ]
            if producer_component_id or output_key:
                live = self._first_output_by(live, producer_component_id, output_key)
        names = self._type_names()
        return [_artifact_of(a, names) for a in sorted(live, key=_age)]

    def _first_output_by(self, live: list, producer_component_id, output_key) -> list:
        """Those of ``live`` (MLMD artifacts) first output by the scope's pipeline, by
        ``producer_component_id`` and on ``output_key`` (each if given): the whole-store way,
        reading the producing execution of each."""
        producers = self._first_outputs([a.id for a in live])
        kept = []
        for a in live:
            if a.id not in producers:
                continue
            ex, key = producers[a.id]
            if _produced_by(ex, self.scope, producer_component_id) and (
                not output_key or key == output_key
            ):
                kept.append(a)
        return kept

    def _scoped_artifacts(self, type_name: str, producer_component_id, output_key) -> list:
        """The scope pipeline's LIVE MLMD artifacts of a type first output by
        ``producer_component_id`` on ``output_key`` (each if given), read through its contexts.

        Every artifact an execution outputs is attributed to that execution's
        contexts (:meth:`finish_execution`), so those of the component's
        ``conveyor.Node`` context (the ``conveyor.Pipeline`` one without a
        component) are exactly the ones some execution of it output: one query,
        the type filtered as it comes. Their events (one query) tell the first
        producing execution and its output key; only an artifact that several
        executions output (a Resolver or an Importer passed it on, a cached run
        output it again) has that first execution read (one query for all of
        them) to check its pipeline and component. The results are those of the
        whole-store scan.
        """
        from ml_metadata.proto import metadata_store_pb2 as pb

        type_id = self._types.get(type_name)
        if type_id is None:
            found = self._call(self.store.get_artifact_type, type_name)
            type_id = found.id if found is not None else None
        if type_id is None:
            return []
        live = [
            a
            for a in self._context_artifacts(type_name, producer_component_id)
            if a.type_id == type_id and a.state == pb.Artifact.LIVE
        ]
        if not live:
            return []
        events = self._call(self.store.get_events_by_artifact_ids, [a.id for a in live])
        first = _first_output_events(events)
        shared = sorted({x for x, _, several in first.values() if several})
        executions = {}
        if shared:
            executions = {ex.id: ex for ex in self._call(self.store.get_executions_by_id, shared)}
        kept = []
        for a in live:
            if a.id not in first:
                continue
            execution_id, key, several = first[a.id]
            if output_key and key != output_key:
                continue
            if several and not (
                execution_id in executions
                and _produced_by(executions[execution_id], self.scope, producer_component_id)
            ):
                continue
            kept.append(a)
        return kept

    def _context_artifacts(self, type_name: str, producer_component_id) -> list:
        """The MLMD artifacts attributed to the scope pipeline's context (of ``type_name``), or
        to both it and ``producer_component_id``'s node context; ``[]`` if there is none."""
        import ml_metadata as mlmd

        pipeline = self._call(self.store.get_context_by_type_and_name, PIPELINE_CONTEXT, self.scope)
        if pipeline is None:
            return []
        if not producer_component_id:
            query = f"contexts_p.id = {pipeline.id}"
        else:
            node = self._call(
                self.store.get_context_by_type_and_name,
                NODE_CONTEXT,
                f"{self.scope}.{producer_component_id}",
            )
            if node is None:
                return []
            if "." not in self.scope and "." not in producer_component_id:
                # "<pipeline>.<component>" names one pair only: the node's artifacts are its own
                # (all types: a component outputs few, so no filter is cheaper).
                return self._call(self.store.get_artifacts_by_context, node.id)
            # "a.b" + "c" and "a" + "b.c" share a node context: the pipeline's too, to tell them
            # apart.
            query = f"contexts_p.id = {pipeline.id} AND contexts_n.id = {node.id}"
        if "'" not in type_name and "\\" not in type_name:
            query = f"type = '{type_name}' AND " + query
        options = mlmd.ListOptions(filter_query=query)
        return self._call(self.store.get_artifacts, list_options=options)

    def producer_inputs(self, artifact_id: int) -> dict[str, list[Artifact]]:
        """The inputs of the execution that first output an artifact (``{}`` if none did)."""
        return self.producer_inputs_by_id([artifact_id]).get(artifact_id, {})

    def producer_inputs_by_id(
        self, artifact_ids: list[int]
    ) -> dict[int, dict[str, list[Artifact]]]:
        """:meth:`producer_inputs` of several artifacts in three queries (their events, the
        producing executions' events, the input artifacts): ``{artifact id: {key: [Artifact,
        ...]}}``, ``{}`` for one that no execution output.

        Example::

            md.producer_inputs_by_id([blessing.id])[blessing.id]["model"]  # the Evaluator's model
        """
        from ml_metadata.proto import metadata_store_pb2 as pb

        ids = sorted(set(artifact_ids))
        out: dict[int, dict[str, list[Artifact]]] = {i: {} for i in ids}
        if not ids:
            return out
        first = _first_output_events(self._call(self.store.get_events_by_artifact_ids, ids))
        producers = sorted({x for x, _, _ in first.values()})
        if not producers:
            return out
        inputs: dict[int, list] = {x: [] for x in producers}
        for e in self._call(self.store.get_events_by_execution_ids, producers):
            if e.type == pb.Event.INPUT:
                inputs[e.execution_id].append(e)
        wanted = sorted({e.artifact_id for evs in inputs.values() for e in evs})
        arts = (
            {a.id: a for a in self._call(self.store.get_artifacts_by_id, wanted)} if wanted else {}
        )
        names = self._type_names()
        by_execution = {x: _by_key(evs, arts, names) if evs else {} for x, evs in inputs.items()}
        for aid, (x, _, _) in first.items():
            out[aid] = by_execution[x]
        return out

    def artifacts_with_uri(self, uri: str, type_name: str) -> list[Artifact]:
        """The live artifacts of a type recorded with this uri, oldest first."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        names = self._type_names()
        found = [
            a
            for a in self._call(self.store.get_artifacts_by_uri, uri)
            if a.state == pb.Artifact.LIVE and names.get(a.type_id) == type_name
        ]
        return [_artifact_of(a, names) for a in sorted(found, key=_age)]


def _first_output_events(events) -> dict[int, tuple[int, str, bool]]:
    """``{artifact id: (first execution id, its output key, whether several executions output
    it)}`` from an artifact's events; the first is the lowest execution id."""
    from ml_metadata.proto import metadata_store_pb2 as pb

    first: dict[int, tuple[int, str, bool]] = {}
    for e in events:
        if e.type != pb.Event.OUTPUT:
            continue
        seen = first.get(e.artifact_id)
        if seen is None:
            first[e.artifact_id] = (e.execution_id, e.path.steps[0].key, False)
        elif e.execution_id < seen[0]:
            first[e.artifact_id] = (e.execution_id, e.path.steps[0].key, True)
        elif e.execution_id != seen[0]:
            first[e.artifact_id] = (seen[0], seen[1], True)
    return first


def _produced_by(execution, pipeline_name: str | None, component_id: str | None) -> bool:
    """Whether an MLMD execution is of that pipeline and that component (each if given)."""
    props = execution.properties
    if pipeline_name is not None and props["pipeline_name"].string_value != pipeline_name:
        return False
    return not component_id or props["component_id"].string_value == component_id


def _merged_events(events) -> list:
    """One event per artifact: MLMD keeps a single event of a type per artifact and execution,
    so an artifact given under several keys (a cached model that is also the resolved
    baseline) gets one event whose path holds each ``[key, index]`` in turn, as TFX records it."""
    by_artifact: dict = {}
    for ev in events:
        seen = by_artifact.get(ev.artifact_id)
        if seen is None:
            by_artifact[ev.artifact_id] = ev
        else:
            seen.path.steps.extend(ev.path.steps)
    return list(by_artifact.values())


def _event_paths(event, n: int) -> list[tuple[str, int]]:
    """The ``(key, index)`` pairs of an event's path: ``[key, index, key, index...]`` (one key
    step only in stores written before lists: index ``n``, the event's position)."""
    pairs: list[tuple[str, int]] = []
    for step in event.path.steps:
        if step.HasField("key"):
            pairs.append((step.key, n))
        elif step.HasField("index") and pairs:
            pairs[-1] = (pairs[-1][0], step.index)
    return pairs


def _by_key(events, arts: dict, type_names: dict[int, str]) -> dict[str, list[Artifact]]:
    """``{key: [Artifact, ...]}`` of one execution's input or output events, in event path order
    (``arts``: the MLMD artifacts by id)."""
    keyed: dict[str, list[tuple[int, Artifact]]] = {}
    for n, e in enumerate(events):
        for key, index in _event_paths(e, n):
            keyed.setdefault(key, []).append((index, _artifact_of(arts[e.artifact_id], type_names)))
    return {k: [a for _, a in sorted(v, key=lambda p: p[0])] for k, v in keyed.items()}


def _age(a) -> tuple:
    return (a.create_time_since_epoch, a.id)


def _as_list(arts) -> list[Artifact]:
    """An input's or output's artifacts as a list (one Artifact, or already a list)."""
    return list(arts) if isinstance(arts, (list, tuple)) else [arts]


def _firsts(lists: dict[str, list[Artifact]]) -> dict[str, Artifact]:
    return {k: v[0] for k, v in lists.items() if v}


#: The largest int an MLMD ``int_value`` holds (int64).
_INT64 = (-(2**63), 2**63 - 1)


def set_value(value, v) -> None:
    """Sets an MLMD ``Value`` keeping the Python type: an int (a bool as 1/0) as ``int_value``,
    a float as ``double_value``, a string as ``string_value``; a list or dict as its JSON text,
    anything else as its ``str``."""
    if isinstance(v, bool):
        value.int_value = int(v)
    elif isinstance(v, int) and _INT64[0] <= v <= _INT64[1]:
        value.int_value = v
    elif isinstance(v, float):
        value.double_value = v
    elif isinstance(v, str):
        value.string_value = v
    elif isinstance(v, (list, tuple, dict)):
        value.string_value = json.dumps(v, sort_keys=True, default=str)
    else:
        value.string_value = str(v)


def get_value(value):
    """The Python value of an MLMD ``Value``: an int, a float, a string (None if unset)."""
    kind = value.WhichOneof("value")
    if kind == "int_value":
        return value.int_value
    if kind == "double_value":
        return value.double_value
    if kind == "string_value":
        return value.string_value
    if kind == "bool_value":
        return value.bool_value
    if kind == "struct_value":
        from google.protobuf.json_format import MessageToDict

        return MessageToDict(value.struct_value)
    return None


def _artifact_of(a, type_names: dict[int, str]) -> Artifact:
    """The :class:`Artifact` of an MLMD artifact, of its type's class (``Examples``...) when one is
    registered: its properties and custom properties typed, in one dict."""
    props = {k: get_value(v) for k, v in a.custom_properties.items()}
    for k, v in a.properties.items():
        value = get_value(v)
        if k == "split_names" and not value:
            continue  # the empty string of an artifact without splits
        props[k] = value.get("__value__", value) if isinstance(value, dict) else value
    return make_artifact(type_names[a.type_id], a.uri, a.id, props)


#: An artifact property type as an MLMD property type's name.
_MLMD_TYPES = {"INT": "INT", "FLOAT": "DOUBLE", "STRING": "STRING", "JSON_VALUE": "STRUCT"}


def _mlmd_property_types(type_name: str) -> dict:
    """``{property: MLMD PropertyType}`` of an artifact type.

    A custom artifact class's declared properties. The standard types keep the
    layout Conveyor's stores (and their queries) have always had: ``split_names``
    the only typed property, the rest (an Examples' ``span`` and ``version`` too)
    custom properties.
    """
    from ml_metadata.proto import metadata_store_pb2 as pb

    if type_name in ARTIFACT_TYPES:
        return {"split_names": pb.STRING}
    return {
        k: getattr(pb, _MLMD_TYPES[p.type.name]) for k, p in declared_properties(type_name).items()
    }


def _artifact_type_proto(type_name: str):
    from ml_metadata.proto import metadata_store_pb2 as pb

    t = pb.ArtifactType(name=type_name)
    for k, v in _mlmd_property_types(type_name).items():
        t.properties[k] = v
    return t


def _set_typed(value, mlmd_type, v) -> bool:
    """Sets an MLMD ``Value`` of a declared property's type; False if ``v`` does not fit it."""
    from google.protobuf import json_format
    from ml_metadata.proto import metadata_store_pb2 as pb

    if mlmd_type == pb.INT and isinstance(v, int) and _INT64[0] <= v <= _INT64[1]:
        value.int_value = int(v)
    elif mlmd_type == pb.DOUBLE and isinstance(v, (int, float)) and not isinstance(v, bool):
        value.double_value = float(v)
    elif mlmd_type == pb.STRING and isinstance(v, str):
        value.string_value = v
    elif mlmd_type == pb.STRUCT:
        try:
            json_format.ParseDict(
                v if isinstance(v, dict) else {"__value__": v}, value.struct_value
            )
        except (json_format.ParseError, TypeError, ValueError):
            return False
    else:
        return False
    return True


def _mlmd_state(state: str):
    from ml_metadata.proto import metadata_store_pb2 as pb

    # MLMD has no SKIPPED: a skipped execution is CANCELED there (our "state" says SKIPPED).
    return pb.Execution.State.Value(CANCELED if state == SKIPPED else state)


def _set_process(props, prefix: str, info: dict) -> None:
    props[prefix + "pid"].int_value = int(info["pid"])
    props[prefix + "host"].string_value = info.get("host") or ""
    props[prefix + "token"].string_value = info.get("token") or ""


def _get_process(props, prefix: str) -> dict:
    if prefix + "pid" not in props:
        return {}
    return {
        "pid": props[prefix + "pid"].int_value,
        "host": props[prefix + "host"].string_value,
        "token": props[prefix + "token"].string_value,
    }


def _beam_args_of(ex) -> list[str] | None:
    if "beam_args" not in ex.custom_properties:
        return None
    return json.loads(ex.custom_properties["beam_args"].string_value)


def _staging_of(ex) -> list[str]:
    if "staging" not in ex.custom_properties:
        return []
    return json.loads(ex.custom_properties["staging"].string_value)


def ids(artifacts: Iterable[Artifact]) -> list[int]:
    return [a.id for a in artifacts]

"""Runs one component of a pipeline: resolve inputs, check the cache, execute, publish.

This is the unit every runner calls, in-process or as
``python -m conveyor.orchestration.launcher PIPELINE_PICKLE COMPONENT_ID RUN_ID``
(the child process :class:`LocalDagRunner`, :class:`BeamDagRunner` and
``conveyor component run`` start for each component).

Outputs are written to ``<root>/<component>/<key>/.<execution>.tmp`` and published
at ``<root>/<component>/<key>/<execution>`` only when the component succeeds, so
a failed or killed component leaves nothing published. The temporary folders
are recorded on the execution, so whoever finds it dead (its runner, or a later
run) can remove them. Publishing goes through Beam's ``FileSystems``
(:mod:`conveyor.beam_utils.publish`): a rename on a local disk; on an object
store (``s3://``, ``gs://``: no folders, no atomic rename) a copy, then a
completion marker written last. Readers here (cache hits, a component's inputs,
a Resolver's picks) skip an artifact under the root that lacks its marker, and
say so. Under a remote root a component with an output TensorFlow writes itself
(:data:`LOCAL_STAGING_TYPES`: SavedModels, which TensorFlow 2.16 cannot write to
S3 without tensorflow-io; Transform, Trainer, Tuner) runs on local disk: all its
outputs are staged in local temporary folders and copied up, all its inputs
copied down first. The others read and write the store directly through Beam,
copying down only the SavedModels they load (Evaluator, BulkInferrer,
InfraValidator, Pusher).

As a child process, the launcher stops cleanly: SIGTERM or SIGINT interrupts the
component's own code (Conveyor's bookkeeping finishes first), records the
execution CANCELED, removes its temporary outputs and exits with 128 + the
signal number. It also stops so when the process that started it (named by
``CONVEYOR_PARENT_PID``) goes away, even by ``kill -9``: on Linux the kernel
tells it with a SIGHUP (``prctl(PR_SET_PDEATHSIG)``; the thread that started it
must outlive it, as a runner's does), elsewhere, and as a fallback, a thread
checks the parent pid every half second. A component that does not stop within
``CONVEYOR_STOP_GRACE`` seconds (default 10) of being asked is ended by that
thread: its execution recorded CANCELED, its temporary outputs removed.
"""

from __future__ import annotations

import copy
import hashlib
import os
import shutil
import signal
import sys
import threading
import time
import traceback

from conveyor.beam_utils import publish as publishing
from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.flag_secrets import redact, without_secrets
from conveyor.dsl import Component, ExecutionContext, Importer, Pipeline, Resolver
from conveyor.dsl.artifacts import Artifact
from conveyor.orchestration.metadata import (
    CACHED,
    CANCELED,
    COMPLETE,
    FAILED,
    Metadata,
    remove_staging,
)

#: The environment variable naming the pid of the process that started a launcher.
PARENT_PID_ENV = "CONVEYOR_PARENT_PID"

#: Artifact types TensorFlow reads and writes itself (SavedModels and their assets), not through
#: Beam's FileSystems: under a remote root they are staged and read on local disk.
LOCAL_STAGING_TYPES = frozenset({"Model", "TransformGraph", "TransformCache", "ModelRun"})


def _use_remote_options(root: str, beam_args: list[str]) -> None:
    """Lets Beam's FileSystems reach a remote root outside a pipeline with the Beam flags
    (``--s3_endpoint_url``, credentials...), as the components' pipelines do."""
    if publishing.is_remote(root):
        from apache_beam.io.filesystems import FileSystems

        from conveyor.beam_utils.options import pipeline_options

        FileSystems.set_options(pipeline_options(beam_args))


def incomplete_artifacts(root: str, artifacts) -> list[str]:
    """The URIs of ``artifacts`` published under ``root`` on an object store without their
    completion marker: half written (the publisher was killed mid-copy) or half removed."""
    prefix = root.rstrip("/") + "/"
    return [
        a.uri
        for a in artifacts
        if a.uri.startswith(prefix)
        and publishing.is_remote(a.uri)
        and not publishing.has_folders(a.uri)
        and not publishing.is_complete(a.uri)
    ]


def _no_log(message: str) -> None:
    """``log`` for callers that want none."""


def _half_written(uri: str) -> str:
    return f"{uri} has no completion marker ({publishing.MARKER}): half written, ignored"


class PipelineRootError(InputError):
    """The pipeline root cannot be used: it is a file, cannot be created or is not writable.

    ``path`` is the root; the message names it and says why.
    """

    def __init__(self, path: str, why: str):
        super().__init__(f"pipeline root {path} {why}")
        self.path = path


def check_root(root: str) -> None:
    """Raises :class:`PipelineRootError` unless ``root`` is (or can be made) a writable folder.

    Roots on remote file systems (``gs://...``) are not checked.
    """
    import tempfile

    if "://" in root:
        return
    if os.path.exists(root) and not os.path.isdir(root):
        raise PipelineRootError(root, "is a file, not a directory")
    try:
        os.makedirs(root, exist_ok=True)
    except OSError as e:
        raise PipelineRootError(root, f"cannot be created: {e.strerror or e}") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".conveyor-write-check-", dir=root)
        os.close(fd)
        os.remove(probe)
    except OSError as e:
        raise PipelineRootError(root, f"is not writable: {e.strerror or e}") from None


class ComponentError(RuntimeError):
    """A component failed; the message leads with the user's error and where it came from."""


class EmptyInputError(ComponentError):
    """A required input whose Resolver found nothing; the component is recorded FAILED."""


class IncompleteInputError(EmptyInputError):
    """A required input whose every artifact lacks its completion marker (half written on an
    object store); the component is recorded FAILED."""


class ComponentCanceled(ComponentError):
    """A component was stopped from outside (a signal, its runner gone); recorded CANCELED."""

    def __init__(self, message: str, signum: int = signal.SIGTERM):
        super().__init__(message)
        self.signum = signum


class _Stop(BaseException):
    """Raised into a component's own code to stop it. Not an ``Exception``, so a component's
    ``except Exception`` does not swallow it (as with ``KeyboardInterrupt``)."""


class _StopGuard:
    """How a stop request reaches the component this process runs.

    The signal handler only raises while the component's own code runs
    (``armed``); Conveyor's bookkeeping (recording, publishing) runs under
    ``lock`` and looks at ``reason`` at fixed points, so a stop never leaves an
    execution half recorded or an output half published.
    """

    def __init__(self):
        self.reason: str | None = None
        self.signum = signal.SIGTERM
        self.asked_at = 0.0
        self.armed = False
        self.raised = False
        self.lock = threading.RLock()
        self.current = None  # (metadata config, execution id) while an execution runs

    def ask(self, reason: str, signum: int) -> bool:
        """Records a stop request; returns whether it is the first."""
        if self.reason is not None:
            return False
        self.reason, self.signum, self.asked_at = reason, signum, time.time()
        return True

    def check(self) -> None:
        if self.reason is not None:
            raise _Stop(self.reason)


_guard = _StopGuard()


def metadata_for(pipeline: Pipeline) -> Metadata:
    return Metadata(pipeline.metadata_connection_config or pipeline.metadata_path)


#: The execution types of the nodes that run no code (every subclass records as these).
RESOLVER_TYPE = "conveyor.Resolver"
IMPORTER_TYPE = "conveyor.Importer"


def execution_type(component: Component) -> str:
    if isinstance(component, Resolver):
        return RESOLVER_TYPE
    if isinstance(component, Importer):
        return IMPORTER_TYPE
    return f"conveyor.{type(component).__name__}"


def cache_key(
    component: Component, inputs: dict[str, Artifact | list[Artifact]], beam_args: list[str]
) -> str:
    """What an execution's outputs depend on: the component's fingerprint and id, every input
    artifact's id (``key=3``; ``key=3,5`` for an input of several) and the Beam flags (not
    those holding credentials: :func:`conveyor.beam_utils.flag_secrets.without_secrets`)."""

    h = hashlib.sha256(component.fingerprint().encode())
    h.update(component.id.encode())  # two nodes never share an execution, even if configured alike
    for key in sorted(inputs):
        arts = inputs[key] if isinstance(inputs[key], (list, tuple)) else [inputs[key]]
        h.update(f"{key}={','.join(str(a.id) for a in arts)}".encode())
    h.update(" ".join(without_secrets(beam_args)).encode())
    return h.hexdigest()


def resolve_input_lists(
    md: Metadata, pipeline: Pipeline, component: Component, run_id: str, log=print
) -> dict[str, list[Artifact]]:
    """``{key: [Artifact, ...]}``: what each input's producer output in this run.

    A Resolver's output may be empty: an optional input is then left out, a
    required one is a :class:`ComponentError` naming the resolver and what it
    looked for. An artifact under the root on an object store without its
    completion marker is left out (``log`` says so); an input left with none is
    a :class:`ComponentError`.
    """
    log = log or _no_log
    inputs = {}
    for key, channel in component.inputs.items():
        producer = channel.producer
        if producer is None:
            raise ComponentError(
                f"{component.id}: input {key!r} is {channel!r}, a standalone channel: "
                "only a Resolver takes one"
            )
        produced = md.latest_output_lists(pipeline.name, run_id, producer.id)
        arts = (produced or {}).get(channel.key) or []
        half = set(incomplete_artifacts(pipeline.root, arts))
        if half:
            for uri in sorted(half):
                log(f"{component.id}: input {key!r}: {_half_written(uri)}")
            arts = [a for a in arts if a.uri not in half]
            if not arts:
                raise IncompleteInputError(
                    f"{component.id}: input {key!r}: every artifact {producer.id} recorded "
                    f"({', '.join(sorted(half))}) lacks its completion marker "
                    f"({publishing.MARKER}): half written; run {producer.id} again"
                )
        if not arts and produced is not None and isinstance(producer, Resolver):
            spec = component.INPUTS.get(key)
            if spec is not None and spec.optional:
                continue  # nothing resolved: the input is left out
            raise EmptyInputError(
                f"{component.id}: required input {key!r} is empty: resolver {producer.id} "
                f"found nothing ({producer.describe(channel.key)}, in pipeline "
                f"{pipeline.name!r}) in run {run_id!r}"
            )
        if not arts:
            raise ComponentError(
                f"{component.id}: input {key!r} needs {producer.id}.outputs[{channel.key!r}], "
                f"which run {run_id!r} has not produced (run {producer.id} first)"
            )
        inputs[key] = arts
    return inputs


def resolve_inputs(
    md: Metadata, pipeline: Pipeline, component: Component, run_id: str
) -> dict[str, Artifact]:
    """``{key: Artifact}``: each input's first artifact (see :func:`resolve_input_lists`)."""
    return {k: v[0] for k, v in resolve_input_lists(md, pipeline, component, run_id).items()}


def user_error_summary(exc: BaseException) -> str:
    """The exception's message and the innermost frame outside Conveyor and Beam, first.

    An error that names the user's frames itself (``UserCodeError``) is its own summary.
    """
    if getattr(exc, "frames", None) is not None:
        return f"{type(exc).__name__}: {exc}"
    frames = traceback.extract_tb(exc.__traceback__)
    own = [
        f
        for f in frames
        if "/apache_beam/" not in f.filename
        and "/site-packages/" not in f.filename
        and not f.filename.startswith(_CONVEYOR_FOLDERS)
    ]
    where = f" (at {own[-1].filename}:{own[-1].lineno} in {own[-1].name})" if own else ""
    return f"{type(exc).__name__}: {exc}{where}"


def _conveyor_folders() -> tuple[str, ...]:
    import conveyor.beam_utils
    import conveyor.components
    import conveyor.dsl
    import conveyor.orchestration

    return tuple(
        os.path.join(os.path.abspath(p), "")
        for pkg in (conveyor.beam_utils, conveyor.dsl, conveyor.components, conveyor.orchestration)
        for p in pkg.__path__
    )


#: Where Conveyor's own code lives: its frames are not the user's.
_CONVEYOR_FOLDERS = _conveyor_folders()


def run_component(
    pipeline: Pipeline,
    component_id: str,
    run_id: str,
    enable_cache: bool | None = None,
    md: Metadata | None = None,
    log=print,
    runtime_parameters: dict | None = None,
) -> dict:
    """Runs one component of ``pipeline`` in run ``run_id``; returns its status.

    The status is ``{"component_id", "state" (COMPLETE|CACHED|SKIPPED), "seconds",
    "outputs": {key: uri}}`` (and ``"reason"`` for SKIPPED: its condition was false
    or a producer it needs was skipped; recorded so, nothing executed).
    ``runtime_parameters`` are the run's values (default: those recorded for the
    run, else the defaults). Raises :class:`ComponentError` if it fails
    (recorded FAILED), :class:`ComponentCanceled` if it is stopped (recorded
    CANCELED; a ``KeyboardInterrupt`` counts as a stop), and
    :class:`PipelineRootError` if the pipeline root cannot be used.
    """
    component = pipeline.component(component_id)
    check_root(pipeline.root)
    log = log or _no_log
    md = md or metadata_for(pipeline)
    start = time.time()
    # Its runtime parameters' values, and whether its condition and its producers let it run.
    from conveyor.orchestration.metadata import SKIPPED
    from conveyor.orchestration.skipping import prepare

    component, skipped = prepare(md, pipeline, component, run_id, runtime_parameters)
    if skipped is None:  # parameters read from another component's output in this run
        from conveyor.orchestration.parameter_values import with_placeholder_values

        component, skipped = with_placeholder_values(md, pipeline, component, run_id)
    if skipped is not None:
        ids = (pipeline.name, run_id, component_id)
        md.record_skipped(execution_type(component), *ids, component.parameters, skipped)
        return {
            "component_id": component_id,
            "state": SKIPPED,
            "seconds": time.time() - start,
            "outputs": {},
            "reason": skipped,
        }
    if isinstance(component, (Resolver, Importer)):
        _use_remote_options(pipeline.root, pipeline.beam_pipeline_args + component.beam_args)
        return _run_without_code(md, pipeline, component, run_id, start, log)
    _use_remote_options(pipeline.root, pipeline.beam_pipeline_args + component.beam_args)
    try:
        input_lists = resolve_input_lists(md, pipeline, component, run_id, log)
    except EmptyInputError as e:  # recorded, so `run status` shows it FAILED and why
        ids = (execution_type(component), pipeline.name, run_id, component_id)
        with _guard.lock:
            ex_id = md.start_execution(*ids, {}, "", component.parameters)
            md.finish_execution(ex_id, FAILED, error=str(e))
        raise
    beam_args = pipeline.beam_pipeline_args + component.beam_args
    key = cache_key(component, input_lists, beam_args)
    local_io = publishing.is_remote(pipeline.root) and any(
        t in LOCAL_STAGING_TYPES for t in component.OUTPUTS.values()
    )
    use_cache = pipeline.enable_cache if enable_cache is None else enable_cache
    type_name = execution_type(component)
    ex_id = None
    staging: dict[str, Artifact] = {}
    published: list[str] = []
    local_inputs: str | None = None
    try:
        with _guard.lock:
            _guard.check()
            cached = (
                md.find_cached(key, type_name, pipeline_name=pipeline.name) if use_cache else None
            )
            half = incomplete_artifacts(pipeline.root, (cached or {}).values())
            if half:
                log(f"{component_id}: not using the cache: {'; '.join(map(_half_written, half))}")
                cached = None
            ex_id = md.start_execution(
                type_name,
                pipeline.name,
                run_id,
                component_id,
                input_lists,
                key,
                component.parameters,
                beam_args=redact(beam_args),
            )
            if cached is not None:
                md.finish_execution(ex_id, CACHED, cached)
                return {
                    "component_id": component_id,
                    "state": CACHED,
                    "seconds": time.time() - start,
                    "outputs": {k: a.uri for k, a in cached.items()},
                }
            final = {
                k: Artifact(t, f"{pipeline.root}/{component_id}/{k}/{ex_id}")
                for k, t in component.OUTPUTS.items()
            }
            staging = {
                k: Artifact(
                    a.type_name, _staging_uri(pipeline.root, component_id, k, ex_id, local_io)
                )
                for k, a in final.items()
            }
            md.set_staging(ex_id, [a.uri for a in staging.values()])
            _guard.current = (md.config, ex_id)
            for a in staging.values():
                publishing.prepare_staging(a.uri)
            _guard.check()
        ctx_lists = input_lists
        if publishing.is_remote(pipeline.root):
            local_inputs, ctx_lists = _localized_inputs(input_lists, every_type=local_io)
        ctx = ExecutionContext(
            {k: v[0] for k, v in ctx_lists.items()},
            staging,
            dict(component.parameters),
            beam_args,
            run_id,
            pipeline.root,
            input_lists=ctx_lists,
        )
        try:
            _guard.armed = True
            props = component.execute(ctx) or {}
        finally:
            _guard.armed = False
        with _guard.lock:
            _guard.check()
            for k, a in final.items():
                published.append(a.uri)  # before: a publish stopped midway is removed too
                publishing.publish(staging[k].uri, a.uri)
                a.properties.update(props.get(k, {}))
            md.finish_execution(ex_id, COMPLETE, final)
            ex_id = None
            _guard.current = None
    except BaseException as e:
        with _guard.lock:
            _guard.current = None
            stopped = isinstance(e, (_Stop, KeyboardInterrupt))
            if stopped:
                reason = (
                    str(e) if isinstance(e, _Stop) else "canceled: interrupted (KeyboardInterrupt)"
                )
                message = f"{component_id} {reason}"
                error = reason
            else:
                summary = user_error_summary(e)
                message = f"{component_id} failed: {summary}"
                error = summary + "\n" + traceback.format_exc()
            leftovers = list(published) + [a.uri for a in staging.values()]
            # The launcher set the store's options; its error must not hide the component's.
            for uri, cleanup in remove_staging(leftovers).items():
                log(f"{component_id}: could not remove {uri}: {cleanup}")
            if ex_id is not None:
                md.finish_execution(ex_id, CANCELED if stopped else FAILED, error=error)
        if stopped:
            raise ComponentCanceled(
                message, _guard.signum if isinstance(e, _Stop) else signal.SIGINT
            ) from e
        raise ComponentError(message) from e
    finally:
        if local_inputs is not None:
            shutil.rmtree(local_inputs, ignore_errors=True)
    return {
        "component_id": component_id,
        "state": COMPLETE,
        "seconds": time.time() - start,
        "outputs": {k: a.uri for k, a in final.items()},
    }


def _staging_uri(root: str, component_id: str, key: str, ex_id: int, local: bool) -> str:
    """Where an output is written before it is published: beside its final URI, or a local
    temporary folder (``local``: a component that writes with TensorFlow, under a remote root)."""
    if local:
        import tempfile

        return tempfile.mkdtemp(prefix=f"conveyor-{component_id}-{key}-{ex_id}-")
    return f"{root}/{component_id}/{key}/.{ex_id}.tmp"


def _localized_inputs(
    input_lists: dict[str, list[Artifact]], every_type: bool = False
) -> tuple[str | None, dict[str, list[Artifact]]]:
    """Local copies of the remote inputs of :data:`LOCAL_STAGING_TYPES` (of every type with
    ``every_type``; the others are read where they are): ``(the temporary folder holding them
    or None, the input lists to give the component)``. The recorded inputs keep their URIs."""
    import tempfile

    folder = None
    lists = {}
    for key, arts in input_lists.items():
        lists[key] = []
        for a in arts:
            wanted = every_type or a.type_name in LOCAL_STAGING_TYPES
            if wanted and publishing.is_remote(a.uri):
                folder = folder or tempfile.mkdtemp(prefix="conveyor-inputs-")
                local = copy.copy(a)
                local.properties = dict(a.properties)
                local.uri = publishing.localize(a.uri, folder)
                a = local
            lists[key].append(a)
    return folder, lists


# -- nodes that run no code: resolvers and importers ----------------------------------------


def _imported(md: Metadata, importer: Importer) -> Artifact:
    """The artifact an Importer records: with ``reimport=False`` the newest one recorded with its
    uri and type (and its properties), if any; else a new one."""
    art = importer.artifact()
    if "://" not in art.uri and not os.path.exists(art.uri):
        raise InputError(f"{importer.id}: source_uri {art.uri} does not exist")
    if not importer.reimport:
        for old in reversed(md.artifacts_with_uri(art.uri, art.type_name)):
            if all(old.properties.get(k) == v for k, v in art.properties.items()):
                return old
    return art


def _run_without_code(
    md: Metadata,
    pipeline: Pipeline,
    component: Resolver | Importer,
    run_id: str,
    start: float,
    log=print,
) -> dict:
    """Runs a Resolver (its strategy picks artifacts from ML Metadata, within the pipeline) or an
    Importer (registers its source): one execution, recorded COMPLETE and never cached, whose
    input (a Resolver's) and output events are those artifacts. A Resolver's pick without its
    completion marker (on an object store) is left out, and ``log`` says so. A failure is
    recorded FAILED."""
    component_id = component.id
    type_name = execution_type(component)
    ids = (type_name, pipeline.name, run_id, component_id)
    ex_id = None
    try:
        with _guard.lock:
            _guard.check()
            if isinstance(component, Resolver):
                outputs = component.resolve(md.for_pipeline(pipeline.name))
                for k, arts in outputs.items():
                    half = set(incomplete_artifacts(pipeline.root, arts))
                    for uri in sorted(half):
                        log(f"{component_id}: {k}: {_half_written(uri)}")
                    outputs[k] = [a for a in arts if a.uri not in half]
                inputs = {k: v for k, v in outputs.items() if v}
            else:
                inputs, outputs = {}, {component.output_key: [_imported(md, component)]}
            ex_id = md.start_execution(*ids, inputs, "", component.parameters)
            md.finish_execution(ex_id, COMPLETE, outputs)
    except (_Stop, KeyboardInterrupt) as e:
        reason = str(e) if isinstance(e, _Stop) else "canceled: interrupted (KeyboardInterrupt)"
        signum = _guard.signum if isinstance(e, _Stop) else signal.SIGINT
        raise ComponentCanceled(f"{component_id} {reason}", signum) from e
    except Exception as e:
        summary = user_error_summary(e)
        with _guard.lock:
            if ex_id is None:
                ex_id = md.start_execution(*ids, {}, "", component.parameters)
            md.finish_execution(ex_id, FAILED, error=summary + "\n" + traceback.format_exc())
        raise ComponentError(f"{component_id} failed: {summary}") from e
    return {
        "component_id": component_id,
        "state": COMPLETE,
        "seconds": time.time() - start,
        "outputs": {k: v[0].uri for k, v in outputs.items() if v},
        "artifacts": {k: [a.uri for a in v] for k, v in outputs.items()},
    }


# -- the child process ------------------------------------------------------------------


def _stop_grace() -> float:
    try:
        return float(os.environ.get("CONVEYOR_STOP_GRACE") or 10.0)
    except ValueError:
        return 10.0


def _stop_reason(signum: int, parent_pid: int) -> str:
    if signum == signal.SIGHUP:
        return f"canceled: the process that started it (pid {parent_pid or '?'}) is gone"
    return f"canceled by {signal.Signals(signum).name}"


def _install_stop_handling(parent_pid: int) -> None:
    """SIGTERM, SIGINT (and SIGHUP, the pid-death signal, for a child) stop the component; a
    watchdog thread sees them even when the component's code holds the main thread in C code,
    notices a parent gone without a signal, and ends the process after the grace period."""

    def on_signal(signum, frame):
        _guard.ask(_stop_reason(signum, parent_pid), signum)
        if _guard.armed and not _guard.raised:
            _guard.raised = True
            raise _Stop(_guard.reason)

    stop_signals = [signal.SIGTERM, signal.SIGINT] + ([signal.SIGHUP] if parent_pid else [])
    for signum in stop_signals:
        signal.signal(signum, on_signal)
    # Python runs handlers in the main thread only, between bytecodes; the wakeup fd gets the
    # signal's number at once, whichever thread the kernel hands the signal to.
    wake_r, wake_w = os.pipe()
    os.set_blocking(wake_r, False)
    os.set_blocking(wake_w, False)
    signal.set_wakeup_fd(wake_w, warn_on_full_buffer=False)
    if (
        parent_pid
        and sys.platform.startswith("linux")
        and os.environ.get("CONVEYOR_PARENT_WATCH") != "poll"
    ):
        import ctypes

        pr_set_pdeathsig = 1
        # SIGHUP, not SIGTERM: the parent's pid may still be ours to see when it comes (a dying
        # process's other threads outlive the one that started us), so the signal says who died.
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, int(signal.SIGHUP), 0, 0, 0)

    def watch():
        import select

        grace = _stop_grace()
        while True:
            if select.select([wake_r], [], [], 0.5)[0]:
                try:
                    for signum in os.read(wake_r, 64):
                        if signum in stop_signals:
                            _guard.ask(_stop_reason(signum, parent_pid), signum)
                except BlockingIOError:
                    pass
            if parent_pid and os.getppid() != parent_pid and _guard.reason is None:
                os.kill(os.getpid(), signal.SIGHUP)  # the fallback: stop as if told by the kernel
                _guard.ask(_stop_reason(signal.SIGHUP, parent_pid), signal.SIGHUP)
            if _guard.reason is not None and time.time() - _guard.asked_at > grace:
                _end_now(
                    f"{_guard.reason} (it did not stop within {grace:g}s: ended by its launcher)"
                )

    threading.Thread(target=watch, name="conveyor-stop-watch", daemon=True).start()


def _end_now(reason: str) -> None:
    """Records the running execution CANCELED, removes its temporary outputs and exits at once."""
    if _guard.lock.acquire(timeout=_stop_grace()):
        try:
            if _guard.current is not None:
                config, ex_id = _guard.current
                Metadata(config).end_if_running(ex_id, CANCELED, reason)
        except Exception:  # nothing better to do on the way out
            traceback.print_exc()
    print(f"ERROR {reason}", file=sys.stderr, flush=True)
    _exit(128 + int(_guard.signum))


def _exit(code: int) -> None:
    """Exits without waiting for threads a component left (Beam's, TensorFlow's), and takes the
    processes it started along when this launcher leads its own process group."""
    sys.stdout.flush()
    sys.stderr.flush()
    if os.getpgid(0) == os.getpid():
        try:  # this process too, which only notes it (its handler is in place)
            os.killpg(0, signal.SIGTERM)
        except OSError:
            pass
    os._exit(code)


def main(argv=None) -> int:
    """``launcher PIPELINE_PICKLE_OR_PY COMPONENT_ID RUN_ID [--no-cache]``."""
    import json
    import warnings

    parent_pid = int(os.environ.pop(PARENT_PID_ENV, "0") or 0)
    _install_stop_handling(parent_pid)
    if parent_pid and os.getppid() != parent_pid:
        print(
            f"ERROR canceled before it started: the process that started it (pid {parent_pid}) is gone",
            file=sys.stderr,
        )
        return 128 + signal.SIGTERM
    warnings.filterwarnings("ignore", category=FutureWarning)
    from conveyor.orchestration.loader import load_pipeline

    argv = list(sys.argv[1:] if argv is None else argv)
    no_cache = "--no-cache" in argv
    argv = [a for a in argv if a != "--no-cache"]
    if len(argv) != 3:
        print("usage: launcher PIPELINE COMPONENT_ID RUN_ID [--no-cache]", file=sys.stderr)
        return 2
    path, component_id, run_id = argv
    pipeline = load_pipeline(path)
    try:
        status = run_component(
            pipeline, component_id, run_id, enable_cache=False if no_cache else None
        )
    except ComponentCanceled as e:
        print(f"ERROR {e}", file=sys.stderr)
        _exit(128 + int(e.signum))
    except ComponentError as e:
        print(f"ERROR {e}", file=sys.stderr)
        traceback.print_exc()
        return 1
    except (PipelineRootError, KeyError) as e:
        print(f"ERROR {str(e).strip(chr(34))}", file=sys.stderr)
        return 2
    print("STATUS " + json.dumps(status), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

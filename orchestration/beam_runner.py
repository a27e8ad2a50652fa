"""``BeamDagRunner``: a whole pipeline as one Beam pipeline whose steps are its components.

Each component is one ``ParDo`` over a small PCollection of component ids (one
element per component, reshuffled so a runner may hand them to different
workers); the step for a component acts only on its own id. Every upstream
component's status PCollection is a side input of the step, so Beam runs a
component only after the components it depends on, and components that do not
depend on each other may run at once: on the DirectRunner with
``--direct_running_mode=multi_processing --direct_num_workers=N``, the components
without upstream dependencies are spread over the N workers; on a distributed
runner (Flink, Spark, Dataflow) every step whose side inputs are ready may run.

A step runs its component with :func:`~conveyor.orchestration.launcher.run_component`
(inputs from ML Metadata, cache, atomic publishing), by default in a child
process (``python -m conveyor.orchestration.launcher``, as :class:`LocalDagRunner`
does), so each component's own Beam pipeline and TensorFlow start clean and a
crash stays in that process; ``in_process=True`` runs it in the Beam worker
itself. The pipeline travels pickled inside the steps; its root and metadata
store must be reachable from the workers (local disk for the DirectRunner).

A component that fails does not fail the Beam pipeline: its step records the
failure, the components downstream of it are skipped, the others finish, and
:meth:`BeamDagRunner.run` then raises :class:`PipelineRunError` naming it. A
component's child process that dies (``kill -9``) is recorded FAILED with the
signal and its temporary outputs are removed, as with :class:`LocalDagRunner`.
The run records its runner (this process) on its ML Metadata context, so if
the orchestrating process is killed its children stop by themselves (recorded
CANCELED) and ``conveyor run status`` shows the run FAILED, "runner gone".

Example::

    from conveyor.orchestration.beam_runner import BeamDagRunner

    BeamDagRunner(["--direct_running_mode=multi_processing", "--direct_num_workers=2"]).run(pipeline)
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time

import apache_beam as beam

from conveyor.dsl import Pipeline
from conveyor.orchestration.launcher import ComponentError, metadata_for, run_component
from conveyor.orchestration.loader import captured_by_loader, save_pipeline
from conveyor.orchestration.local_runner import (
    ComponentProcess,
    PipelineRunError,
    _error_from_log,
    _prefixed,
    _status_from_log,
    done_counts,
    finished_line,
    prepare_run,
)
from conveyor.orchestration.metadata import CACHED, COMPLETE, FAILED

#: The state a step records for a component it did not run because an upstream one failed.
SKIPPED = "SKIPPED"


class _RunComponent(beam.DoFn):
    """Runs one component when its id comes by; emits its status (a dict)."""

    def __init__(
        self,
        pipeline_pickle: bytes,
        pipeline_name: str,
        component_id: str,
        run_id: str,
        run_dir: str,
        enable_cache: bool | None,
        in_process: bool,
        quiet: bool,
    ):
        self._pickle = pipeline_pickle
        self._name = pipeline_name
        self._component_id = component_id
        self._run_id = run_id
        self._run_dir = run_dir
        self._enable_cache = enable_cache
        self._in_process = in_process
        self._quiet = quiet
        self._pipeline = None
        self._tmp = None

    def _print(self, msg: str) -> None:
        if not self._quiet:
            print(f"[{self._name}] {self._component_id}: {msg}", flush=True)

    def process(self, element, *upstream):
        if element != self._component_id:
            return
        failed_upstream = [s["component_id"] for s in upstream if not _succeeded(s)]
        began = time.time()
        if failed_upstream:
            status = {
                "component_id": self._component_id,
                "state": SKIPPED,
                "error": f"skipped: upstream {', '.join(failed_upstream)} did not succeed",
            }
            self._print("SKIPPED (upstream failed)")
        else:
            self._print("START")
            status = self._run_in_process() if self._in_process else self._run_in_child()
            took = time.time() - began
            if status["state"] == FAILED:
                self._print(f"FAILED after {took:.1f}s: {status['error']}")
            else:
                self._print(finished_line(status, took))
        _write_json(os.path.join(self._run_dir, f"{self._component_id}.status.json"), status)
        yield status

    def _run_in_process(self) -> dict:
        import cloudpickle

        if self._pipeline is None:
            self._pipeline = cloudpickle.loads(self._pickle)
        try:
            return run_component(
                self._pipeline, self._component_id, self._run_id, self._enable_cache
            )
        except ComponentError as e:
            return {"component_id": self._component_id, "state": FAILED, "error": str(e)}

    def _run_in_child(self) -> dict:
        if self._tmp is None:
            self._tmp = tempfile.mkdtemp(prefix="conveyor-beam-dag-")
            with open(os.path.join(self._tmp, "pipeline.pkl"), "wb") as f:
                f.write(self._pickle)
        log_path = os.path.join(self._run_dir, f"{self._component_id}.log")
        with open(log_path, "w") as log:
            child = ComponentProcess(
                os.path.join(self._tmp, "pipeline.pkl"),
                self._component_id,
                self._run_id,
                self._enable_cache,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            returncode = child.proc.wait()
        with open(log_path) as f:
            text = f.read()
        status = _status_from_log(text)
        if returncode == 0 and status:
            return status
        error = _prefixed(self._component_id, _error_from_log(text, returncode))
        if self._pipeline is None:
            import cloudpickle

            self._pipeline = cloudpickle.loads(self._pickle)
        child.settle(metadata_for(self._pipeline), self._name, FAILED, error)
        return {
            "component_id": self._component_id,
            "state": FAILED,
            "error": error,
            "log": log_path,
        }

    def teardown(self):
        if self._tmp is not None:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None


def _succeeded(status: dict) -> bool:
    """COMPLETE, CACHED, or SKIPPED by its condition (one not run because an upstream component
    failed is SKIPPED with an error)."""
    return status["state"] in (COMPLETE, CACHED) or (
        status["state"] == SKIPPED and "error" not in status
    )


def _write_json(path: str, obj) -> None:
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w") as f:
        json.dump(obj, f)
    os.replace(tmp, path)


class BeamDagRunner:
    """Runs a pipeline as one Beam pipeline (see the module docstring).

    Args:
      beam_orchestrator_args: Beam flags of the orchestrating pipeline (its runner,
        ``--direct_running_mode``, ``--direct_num_workers``...). Default: the
        pipeline's ``beam_pipeline_args``, which its components get as well.
      in_process: run each component in the Beam worker instead of a child process.
      quiet: no progress lines.
    """

    def __init__(
        self,
        beam_orchestrator_args: list[str] | None = None,
        in_process: bool = False,
        quiet: bool = False,
    ):
        self.beam_orchestrator_args = (
            None if beam_orchestrator_args is None else list(beam_orchestrator_args)
        )
        self.in_process = in_process
        self.quiet = quiet

    def _print(self, msg: str) -> None:
        if not self.quiet:
            print(msg, flush=True)

    def build(
        self,
        p: beam.Pipeline,
        pipeline: Pipeline,
        run_id: str,
        run_dir: str,
        enable_cache: bool | None = None,
    ) -> dict[str, beam.PCollection]:
        """Adds the pipeline's steps to ``p``; returns ``{component id: status PCollection}``."""
        pickle_path = save_pipeline(pipeline, os.path.join(run_dir, "pipeline.pkl"))
        with open(pickle_path, "rb") as f:
            pipeline_pickle = f.read()
        # Components without upstream first: the DirectRunner deals the elements to
        # its workers in turn, so those that can start at once go to different workers.
        ids = [c.id for c in pipeline.components if not c.upstream]
        ids += [c.id for c in pipeline.components if c.upstream]
        root = (
            p
            | "ComponentIds" >> beam.Create(ids, reshuffle=False)
            | "Distribute" >> beam.Reshuffle()
        )
        statuses: dict[str, beam.PCollection] = {}
        for c in pipeline.components:  # topological order: every upstream step exists already
            step = _RunComponent(
                pipeline_pickle,
                pipeline.name,
                c.id,
                run_id,
                run_dir,
                enable_cache,
                self.in_process,
                self.quiet,
            )
            side = [beam.pvalue.AsSingleton(statuses[u.id]) for u in c.upstream]
            statuses[c.id] = root | f"Run[{c.id}]" >> beam.ParDo(step, *side)
        return statuses

    def run(
        self,
        pipeline: Pipeline,
        run_id: str | None = None,
        enable_cache: bool | None = None,
        runtime_parameters: dict | None = None,
    ) -> dict:
        """Runs every component; returns ``{"run_id", "components": {id: status}, "failed": {}}``.

        While ``load_pipeline`` reads a pipeline file that calls this, it only hands the
        pipeline over and returns None (:func:`~conveyor.orchestration.loader.captured_by_loader`).

        ``runtime_parameters`` (``{name: value}``) gives the pipeline's
        RuntimeParameters their values; a component whose condition is false is
        SKIPPED, and so are those that need its outputs. Raises
        :class:`PipelineRunError` when a component fails (components that do not
        depend on it still finish), ``RuntimeParameterError`` before anything runs
        for an unknown runtime parameter, a bad value or a missing one.
        """
        from apache_beam.options.pipeline_options import PipelineOptions

        from conveyor.dsl.runtime import resolve_runtime_parameters

        if captured_by_loader(pipeline):
            return None
        values = resolve_runtime_parameters(pipeline, runtime_parameters)
        run_id, run_dir = prepare_run(pipeline, run_id)
        for name in os.listdir(run_dir):
            if name.endswith(".status.json"):
                os.remove(os.path.join(run_dir, name))
        args = self.beam_orchestrator_args
        if args is None:
            args = list(pipeline.beam_pipeline_args)
        self._print(
            f"[{pipeline.name}] run {run_id}: {len(pipeline.components)} components on Beam, "
            f"root {pipeline.root}"
        )
        start_all = time.time()
        md = metadata_for(pipeline)
        md.reap_lost(pipeline.name)
        md.start_run(pipeline.name, run_id, [c.id for c in pipeline.components], root=pipeline.root)
        if values:
            md.record_runtime_parameters(pipeline.name, run_id, values)
        p = beam.Pipeline(options=PipelineOptions(args))
        self.build(p, pipeline, run_id, run_dir, enable_cache)
        try:
            p.run().wait_until_finish()
        except BaseException as e:
            md.finish_run(
                pipeline.name, run_id, FAILED, f"the Beam pipeline failed: {type(e).__name__}: {e}"
            )
            raise
        done: dict[str, dict] = {}
        failed: dict[str, str] = {}
        for c in pipeline.components:
            path = os.path.join(run_dir, f"{c.id}.status.json")
            if not os.path.exists(path):
                failed[c.id] = f"{c.id} failed: its Beam step finished without a status"
                continue
            with open(path) as f:
                status = json.load(f)
            if _succeeded(status):
                done[c.id] = status
            else:
                failed[c.id] = status["error"]
        self._print(
            f"[{pipeline.name}] run {run_id}: {len(done)} done ({done_counts(done)}), "
            f"{len(failed)} failed or skipped, {time.time() - start_all:.1f}s"
        )
        result = {"run_id": run_id, "components": done, "failed": failed}
        if failed:
            first = next(
                (cid for cid in failed if not failed[cid].startswith("skipped")), next(iter(failed))
            )
            log = os.path.join(run_dir, first + ".log")
            where = f"\n(log: {log})" if os.path.exists(log) else ""
            md.finish_run(pipeline.name, run_id, FAILED, failed[first].splitlines()[0])
            raise PipelineRunError(failed[first] + where)
        md.finish_run(pipeline.name, run_id, COMPLETE)
        return result

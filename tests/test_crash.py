"""Killed components, killed and interrupted runners: what ML Metadata, `run status` and the disk keep.

The pipeline's components are small and fast; ``Slow`` and ``Side`` write part
of their output, a ``<id>.started`` marker holding their pid, then wait while a
``hold`` file exists, so a test kills them mid-execution without sleeping for
luck. Every process a test starts is stopped at its end.
"""

import os
import signal
import socket
import subprocess
import sys
import time

import pytest

from conveyor.orchestration import LocalDagRunner, Metadata, load_pipeline

CONVEYOR = os.path.join(os.path.dirname(sys.executable), "conveyor")

PIPELINE = '''
import json, os, time
from conveyor.orchestration import Pipeline
from conveyor.dsl import Component, InputSpec

MARKS = {marks!r}


def _mark(name, text):
    os.makedirs(MARKS, exist_ok=True)
    with open(os.path.join(MARKS, name + ".tmp"), "w") as f:
        f.write(text)
    os.replace(os.path.join(MARKS, name + ".tmp"), os.path.join(MARKS, name))


class Numbers(Component):
    OUTPUTS = {{"examples": "Examples"}}
    PARAMETERS = {{"n": 5}}

    def execute(self, ctx):
        with open(os.path.join(ctx.outputs["examples"].uri, "data.json"), "w") as f:
            json.dump(list(range(ctx.parameters["n"])), f)


class Slow(Component):
    """Sums its input into part of its output, says it started, waits while MARKS/hold exists
    (unless MARKS/<id>.go does)."""

    INPUTS = {{"examples": InputSpec("Examples")}}
    OUTPUTS = {{"statistics": "ExampleStatistics"}}

    def execute(self, ctx):
        out = ctx.outputs["statistics"].uri
        with open(os.path.join(ctx.inputs["examples"].uri, "data.json")) as f:
            total = sum(json.load(f))
        with open(os.path.join(out, "partial.json"), "w") as f:
            json.dump(total, f)
        _mark(self.id + ".started", str(os.getpid()))
        while (os.path.exists(os.path.join(MARKS, "hold"))
               and not os.path.exists(os.path.join(MARKS, self.id + ".go"))):
            time.sleep(0.05)
        os.rename(os.path.join(out, "partial.json"), os.path.join(out, "sum.json"))


class Last(Component):
    INPUTS = {{"statistics": InputSpec("ExampleStatistics")}}
    OUTPUTS = {{"model": "Model"}}

    def execute(self, ctx):
        with open(os.path.join(ctx.inputs["statistics"].uri, "sum.json")) as f:
            total = json.load(f)
        with open(os.path.join(ctx.outputs["model"].uri, "model.json"), "w") as f:
            json.dump({{"sum": total}}, f)


numbers = Numbers()
slow = Slow(examples=numbers.outputs["examples"])
side = Slow(id="Side", examples=numbers.outputs["examples"])
last = Last(statistics=slow.outputs["statistics"])
pipeline = Pipeline({name!r}, {root!r}, [numbers, slow, side, last])
'''

COMPONENTS = ["Numbers", "Slow", "Side", "Last"]


class Scene:
    """A crash pipeline under ``tmp_path``, registered under its own CONVEYOR_HOME, and the processes
    a test starts (all stopped at teardown)."""

    def __init__(self, tmp_path, name="crash"):
        self.tmp = tmp_path
        self.name = name
        self.root = tmp_path / "root"
        self.marks = tmp_path / "marks"
        self.marks.mkdir(parents=True)
        self.path = tmp_path / "crash_pipeline.py"
        self.path.write_text(PIPELINE.format(marks=str(self.marks), name=name, root=str(self.root)))
        self.env = dict(os.environ, CONVEYOR_HOME=str(tmp_path / "home"), CONVEYOR_STOP_GRACE="5")
        self.procs: list[subprocess.Popen] = []

    def hold(self):
        (self.marks / "hold").write_text("")

    def release(self):
        if (self.marks / "hold").exists():
            (self.marks / "hold").unlink()

    def cli(self, *args, check=True):
        proc = subprocess.run(
            [CONVEYOR, *args], capture_output=True, text=True, env=self.env, timeout=120
        )
        if check:
            assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        return proc

    def start(self, cmd, env=None):
        """Starts a process in its own session (stdout and stderr to a file): what a shell job is."""
        out = open(self.tmp / f"out{len(self.procs)}.txt", "w+")
        proc = subprocess.Popen(
            cmd, stdout=out, stderr=subprocess.STDOUT, env=env or self.env, start_new_session=True
        )
        proc.out = out
        self.procs.append(proc)
        return proc

    def start_run(self):
        self.cli("pipeline", "create", "--pipeline-path", str(self.path))
        return self.start(
            [CONVEYOR, "run", "create", "--pipeline-name", self.name, "--workers", "2"]
        )

    def started_pid(self, component_id, timeout=60.0):
        """The pid in ``<id>.started``, once the component wrote it (the last process started must
        not end before)."""
        marker = self.marks / f"{component_id}.started"
        deadline = time.time() + timeout
        while not marker.exists():
            p = self.procs[-1]
            assert p.poll() is None, (
                f"exited {p.returncode} before {component_id} started: {output(p)}"
            )
            assert time.time() < deadline, f"{component_id} did not start"
            time.sleep(0.05)
        return int(marker.read_text())

    def stop_everything(self):
        self.release()
        pids = [int(m.read_text()) for m in self.marks.glob("*.started")]
        for p in self.procs:
            if p.poll() is None:
                _killpg(p.pid)
            p.wait(timeout=30)
            p.out.close()
        for pid in pids:
            if alive(pid):
                _killpg(pid)
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
            assert wait_gone(pid, 10), f"process {pid} is still running"

    def status(self, run_id=None):
        """``(run state line, {component: (state, rest of the line)})`` from ``conveyor run status``."""
        args = ["run", "status", "--pipeline-name", self.name] + (
            ["--run-id", run_id] if run_id else []
        )
        lines = self.cli(*args).stdout.splitlines()
        rows = {}
        for line in lines[1:]:
            cid, state, *rest = line.split(None, 3)
            rows[cid] = (state, " ".join(rest))
        return lines[0], rows

    def md(self):
        return Metadata(str(self.root / "metadata.sqlite"))

    def executions(self, run_id):
        """``{component: (recorded state, MLMD last_known_state name, error)}`` of a run."""
        from ml_metadata.proto import metadata_store_pb2 as pb

        return {
            e.properties["component_id"].string_value: (
                e.properties["state"].string_value,
                pb.Execution.State.Name(e.last_known_state),
                e.custom_properties["error"].string_value if "error" in e.custom_properties else "",
            )
            for e in self.md().executions_of_run(self.name, run_id)
        }

    def only_run_id(self):
        [run] = self.md().runs(self.name)
        return run["run_id"]

    def leftovers(self):
        """Temporary output folders left under the root."""
        return sorted(str(p.relative_to(self.root)) for p in self.root.glob("*/*/.*.tmp"))


def output(proc) -> str:
    proc.out.flush()
    proc.out.seek(0)
    return proc.out.read()


def _killpg(pid):
    try:
        os.killpg(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def alive(pid) -> bool:
    """Whether a process runs (a zombie does not), whoever its parent is."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            state = f.read().rsplit(")", 1)[1].split()[0]
    except FileNotFoundError:
        return False
    return state not in ("Z", "X")


def wait_gone(pid, timeout) -> bool:
    deadline = time.time() + timeout
    while alive(pid):
        if time.time() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture()
def scene(tmp_path):
    s = Scene(tmp_path)
    s.hold()
    yield s
    s.stop_everything()


def tree(folder) -> dict:
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            full = os.path.join(dirpath, name)
            with open(full) as f:
                out[os.path.relpath(full, folder)] = f.read()
    return out


def outputs(md, name, run_id) -> dict:
    """Every component's published outputs in a run: ``{component.key: {file: contents}}``."""
    got = {}
    for cid in COMPONENTS:
        for key, art in (md.latest_outputs(name, run_id, cid) or {}).items():
            got[f"{cid}.{key}"] = tree(art.uri)
    return got


@pytest.fixture(scope="module")
def clean(tmp_path_factory) -> dict:
    """What a run that nobody interrupts produces."""
    scene = Scene(tmp_path_factory.mktemp("clean"))
    pipeline = load_pipeline(str(scene.path))
    run_id = LocalDagRunner(quiet=True).run(pipeline)["run_id"]
    return outputs(scene.md(), scene.name, run_id)


def assert_rerun_resumes(scene, clean, cached):
    """The next ``run create`` reuses what completed and runs the rest, to a clean run's outputs."""
    scene.release()
    before = {r["run_id"] for r in scene.md().runs(scene.name)}
    out = scene.cli("run", "create", "--pipeline-name", scene.name).stdout
    [run_id] = {r["run_id"] for r in scene.md().runs(scene.name)} - before
    states = {cid: s for cid, (s, _) in scene.status(run_id)[1].items()}
    assert states == {cid: "CACHED" if cid in cached else "COMPLETE" for cid in COMPONENTS}, out
    header, _ = scene.status(run_id)
    assert header.endswith(": COMPLETE")
    assert outputs(scene.md(), scene.name, run_id) == clean
    assert scene.leftovers() == []


def test_killed_component_is_recorded_failed_and_its_temporary_output_removed(scene, clean):
    runner = scene.start_run()
    slow = scene.started_pid("Slow")
    scene.started_pid("Side")
    assert [p.split("/.")[0] for p in scene.leftovers()] == ["Side/statistics", "Slow/statistics"]
    os.kill(slow, signal.SIGKILL)
    deadline = time.time() + 30
    while "Slow: FAILED" not in output(runner):
        assert time.time() < deadline and runner.poll() is None, output(runner)
        time.sleep(0.05)
    scene.release()  # Side finishes; Last never starts
    assert runner.wait(timeout=60) == 1
    text = output(runner)
    assert (
        "Slow: FAILED" in text
        and "killed by signal 9 (SIGKILL)" in text
        and "Last: SKIPPED" in text
    )

    run_id = scene.only_run_id()
    recorded = scene.executions(run_id)
    assert (
        recorded["Slow"][:2] == ("FAILED", "FAILED") and "killed by signal 9" in recorded["Slow"][2]
    )
    assert recorded["Side"][:2] == ("COMPLETE", "COMPLETE") and "Last" not in recorded
    header, rows = scene.status()
    assert header.startswith(f"run {run_id} of crash: FAILED")
    assert rows["Numbers"][0] == "COMPLETE" and rows["Side"][0] == "COMPLETE"
    assert rows["Slow"][0] == "FAILED" and "killed by signal 9 (SIGKILL)" in rows["Slow"][1]
    assert rows["Last"][0] == "NOT_STARTED"
    assert scene.leftovers() == []
    assert os.listdir(scene.root / "Slow" / "statistics") == []  # nothing published
    assert_rerun_resumes(scene, clean, cached={"Numbers", "Side"})


@pytest.mark.parametrize("watch", ["pdeathsig", "poll"])
def test_killed_runner_components_stop_without_publishing(scene, clean, watch):
    if watch == "poll":  # the fallback where the kernel does not tell a child its parent died
        scene.env["CONVEYOR_PARENT_WATCH"] = "poll"
    runner = scene.start_run()
    children = [scene.started_pid("Slow"), scene.started_pid("Side")]
    os.kill(runner.pid, signal.SIGKILL)
    assert runner.wait(timeout=10) == -signal.SIGKILL
    for pid in children:
        assert wait_gone(pid, 20), "a component kept running after its runner was killed"
    scene.release()  # were they still running, they would now publish
    time.sleep(0.3)

    run_id = scene.only_run_id()
    recorded = scene.executions(run_id)
    for cid in ("Slow", "Side"):
        assert recorded[cid][:2] == ("CANCELED", "CANCELED"), recorded
        assert "is gone" in recorded[cid][2]
        assert os.listdir(scene.root / cid / "statistics") == []
    header, rows = scene.status()
    assert header.startswith(f"run {run_id} of crash: FAILED (runner gone (pid {runner.pid} on ")
    assert {cid: s for cid, (s, _) in rows.items()} == {
        "Numbers": "COMPLETE",
        "Slow": "CANCELED",
        "Side": "CANCELED",
        "Last": "NOT_STARTED",
    }
    listing = scene.cli("run", "list", "--pipeline-name", scene.name).stdout
    assert f"{run_id} " in listing and " FAILED " in listing
    assert scene.leftovers() == []
    assert_rerun_resumes(scene, clean, cached={"Numbers"})


@pytest.mark.parametrize("how", ["SIGTERM", "Ctrl-C"])
def test_stopping_the_runner_cancels_its_components(scene, clean, how):
    runner = scene.start_run()
    children = [scene.started_pid("Slow"), scene.started_pid("Side")]
    if how == "SIGTERM":
        os.kill(runner.pid, signal.SIGTERM)
    else:  # what a terminal does: SIGINT to the foreground process group
        os.killpg(runner.pid, signal.SIGINT)
    signum = signal.SIGTERM if how == "SIGTERM" else signal.SIGINT
    assert runner.wait(timeout=30) == 128 + signum, output(runner)
    for pid in children:  # the runner waited for them
        assert not alive(pid)
    text = output(runner)
    assert "Slow: CANCELED" in text and "Side: CANCELED" in text and "Last: NOT STARTED" in text
    assert f"run canceled: run {scene.only_run_id()} canceled by {signum.name}" in text

    run_id = scene.only_run_id()
    recorded = scene.executions(run_id)
    assert recorded["Slow"][:2] == recorded["Side"][:2] == ("CANCELED", "CANCELED")
    header, rows = scene.status()
    assert header == f"run {run_id} of crash: CANCELED (canceled by {signum.name})"
    assert {cid: s for cid, (s, _) in rows.items()} == {
        "Numbers": "COMPLETE",
        "Slow": "CANCELED",
        "Side": "CANCELED",
        "Last": "NOT_STARTED",
    }
    assert scene.leftovers() == []
    assert_rerun_resumes(scene, clean, cached={"Numbers"})


@pytest.mark.parametrize("stop", ["SIGTERM to the runner", "kill -9 of the runner"])
def test_a_component_stuck_where_signals_cannot_reach_it_is_ended_and_recorded_canceled(
    scene, tmp_path, stop
):
    """Stuck in a C call with the stop signals blocked: the runner kills it after its stop timeout;
    with the runner gone, the launcher's own watchdog ends it after its grace period."""
    script = tmp_path / "stuck.py"
    script.write_text(
        "import os, signal\n"
        "from conveyor.orchestration import LocalDagRunner, load_pipeline\n"
        f"pipeline = load_pipeline({str(scene.path)!r})\n"
        "cls = type(pipeline.component('Slow'))\n"
        "run = cls.execute\n"
        "def execute(self, ctx):\n"
        "    if self.id != 'Slow':\n"
        "        return run(self, ctx)\n"
        "    signal.pthread_sigmask(signal.SIG_BLOCK, [signal.SIGTERM, signal.SIGINT, signal.SIGHUP])\n"
        f"    open({str(scene.marks / 'Slow.tmp')!r}, 'w').write(str(os.getpid()))\n"
        f"    os.replace({str(scene.marks / 'Slow.tmp')!r}, {str(scene.marks / 'Slow.started')!r})\n"
        "    os.read(os.pipe()[0], 1)  # stuck: a signal another thread takes does not interrupt this\n"
        "cls.execute = execute\n"
        "LocalDagRunner(max_workers=2, stop_timeout=1).run(pipeline, run_id='r1')\n"
    )
    # The launcher's watchdog waits longer than the runner in the first case, not in the second.
    env = dict(scene.env, CONVEYOR_STOP_GRACE="60" if stop.startswith("SIGTERM") else "1")
    runner = scene.start([sys.executable, str(script)], env=env)
    slow = scene.started_pid("Slow")
    scene.started_pid("Side")
    recorded = scene.executions("r1")
    if stop.startswith("SIGTERM"):
        os.kill(runner.pid, signal.SIGTERM)
        assert runner.wait(timeout=30) != 0
        assert "RunCanceled" in output(runner) and not alive(slow)
        recorded = scene.executions("r1")
        assert (
            recorded["Slow"][0] == "CANCELED"
            and "killed: it did not stop in time" in recorded["Slow"][2]
        )
    else:
        os.kill(runner.pid, signal.SIGKILL)
        assert wait_gone(slow, 20)
        recorded = scene.executions("r1")
        assert recorded["Slow"][0] == "CANCELED"
        assert "is gone (it did not stop within 1s: ended by its launcher)" in recorded["Slow"][2]
    assert recorded["Side"][0] == "CANCELED" and "did not stop" not in recorded["Side"][2]
    assert scene.leftovers() == []


def test_an_execution_whose_process_vanished_is_shown_failed_and_reaped_by_the_next_run(
    scene, clean
):
    """Runner and components killed at once (the OOM killer, a power cut): nobody could record anything."""
    runner = scene.start_run()
    children = [scene.started_pid("Slow"), scene.started_pid("Side")]
    for pid in [runner.pid, *children]:  # stopped first, so none sees another die
        os.kill(pid, signal.SIGSTOP)
    for pid in [*children, runner.pid]:
        os.kill(pid, signal.SIGKILL)
    runner.wait(timeout=10)
    for pid in children:
        assert wait_gone(pid, 10)
    run_id = scene.only_run_id()
    assert scene.executions(run_id)["Slow"][0] == "RUNNING"  # what ML Metadata was left with
    assert len(scene.leftovers()) == 2
    header, rows = scene.status()
    assert header.startswith(f"run {run_id} of crash: FAILED (runner gone")
    for cid in ("Slow", "Side"):
        assert rows[cid][0] == "FAILED" and "is gone (recorded RUNNING)" in rows[cid][1]
    assert_rerun_resumes(scene, clean, cached={"Numbers"})  # which removes the leftovers
    recorded = scene.executions(run_id)
    assert (
        recorded["Slow"][:2] == ("FAILED", "FAILED")
        and "found still RUNNING by a later run" in recorded["Slow"][2]
    )


def test_beam_dag_runner_records_a_killed_component_failed(scene, tmp_path):
    script = tmp_path / "beam_run.py"
    script.write_text(
        "from conveyor.orchestration import load_pipeline\n"
        "from conveyor.orchestration.beam_runner import BeamDagRunner\n"
        f"BeamDagRunner().run(load_pipeline({str(scene.path)!r}), run_id='b1')\n"
    )
    (scene.marks / "Side.go").write_text(
        ""
    )  # the DirectRunner may run Side first, and not beside Slow
    runner = scene.start([sys.executable, str(script)])
    slow = scene.started_pid("Slow")
    os.kill(slow, signal.SIGKILL)
    assert runner.wait(timeout=120) == 1, output(runner)
    assert "Slow failed: killed by signal 9 (SIGKILL)" in output(runner)
    recorded = scene.executions("b1")
    assert (
        recorded["Slow"][:2] == ("FAILED", "FAILED") and "killed by signal 9" in recorded["Slow"][2]
    )
    assert "Last" not in recorded
    assert scene.leftovers() == []
    scene.cli("pipeline", "create", "--pipeline-path", str(scene.path))
    header, rows = scene.status("b1")
    assert header.startswith("run b1 of crash: FAILED") and rows["Slow"][0] == "FAILED"


def _component_run(scene, component, run_id="a1"):
    return [
        CONVEYOR,
        "component",
        "run",
        "--pipeline-path",
        str(scene.path),
        "--component",
        component,
        "--run-id",
        run_id,
    ]


def test_component_run_records_a_killed_component_failed(scene):
    scene.cli(*_component_run(scene, "Numbers")[1:])
    task = scene.start(_component_run(scene, "Slow"))
    slow = scene.started_pid("Slow")
    assert slow != task.pid  # the component runs in a child the command watches
    os.kill(slow, signal.SIGKILL)
    assert task.wait(timeout=30) == 1
    assert "error: Slow failed: killed by signal 9 (SIGKILL)" in output(task)
    recorded = scene.executions("a1")
    assert (
        recorded["Slow"][:2] == ("FAILED", "FAILED") and "killed by signal 9" in recorded["Slow"][2]
    )
    assert scene.leftovers() == []


def test_component_run_stopped_by_sigterm_is_canceled_and_killed_stops_its_child(scene):
    scene.cli(*_component_run(scene, "Numbers")[1:])
    task = scene.start(_component_run(scene, "Slow"))  # Airflow stopping a task: SIGTERM
    slow = scene.started_pid("Slow")
    os.kill(task.pid, signal.SIGTERM)
    assert task.wait(timeout=30) == 128 + signal.SIGTERM
    assert not alive(slow)
    recorded = scene.executions("a1")
    assert recorded["Slow"][:2] == ("CANCELED", "CANCELED")

    (scene.marks / "Slow.started").unlink()
    task = scene.start(_component_run(scene, "Side"))  # ... and SIGKILL when that did not do
    side = scene.started_pid("Side")
    os.kill(task.pid, signal.SIGKILL)
    assert wait_gone(side, 20)
    recorded = scene.executions("a1")
    assert recorded["Side"][:2] == ("CANCELED", "CANCELED") and "is gone" in recorded["Side"][2]
    assert scene.leftovers() == []
    scene.cli("pipeline", "create", "--pipeline-path", str(scene.path))
    header, rows = scene.status("a1")
    # No runner: the run's state comes from its components.
    assert header == "run a1 of crash: CANCELED"
    assert {cid: s for cid, (s, _) in rows.items()} == {
        "Numbers": "COMPLETE",
        "Slow": "CANCELED",
        "Side": "CANCELED",
        "Last": "NOT_STARTED",
    }


def test_status_of_a_run_on_another_host_is_not_judged(tmp_path):
    """A runner recorded on another machine cannot be checked from here: the run stays RUNNING."""
    md = Metadata(str(tmp_path / "metadata.sqlite"))
    md.start_run(
        "p",
        "r1",
        ["A"],
        runner={"pid": os.getpid(), "host": socket.gethostname() + "-elsewhere", "token": ""},
    )
    assert md.run_summary("p", "r1")["state"] == "RUNNING"
    md.start_run(
        "p", "r2", ["A"], runner={"pid": 2**22 + 1, "host": socket.gethostname(), "token": ""}
    )
    assert md.run_summary("p", "r2")["state"] == "FAILED"  # no such pid here

"""The pipeline, run, component and template commands, through the console script."""

import os
import subprocess
import sys

import pytest

CONVEYOR = os.path.join(os.path.dirname(sys.executable), "conveyor")


@pytest.fixture()
def env(tmp_path):
    e = dict(os.environ)
    e["CONVEYOR_HOME"] = str(tmp_path / "home")
    return e


def _run(env, *args, check=True):
    proc = subprocess.run([CONVEYOR, *args], capture_output=True, text=True, env=env, timeout=300)
    if check:
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
    return proc


def _pipeline_file(tmp_path, n=4):
    path = tmp_path / "toy_pipeline.py"
    path.write_text(
        "from orchestration_components import Produce, Sum\n"
        "from conveyor.orchestration import Pipeline\n"
        f"p = Produce(n={n})\n"
        "s = Sum(examples=p.outputs['examples'])\n"
        f"pipeline = Pipeline('toy', {str(tmp_path / 'root')!r}, [p, s])\n"
    )
    return str(path)


def test_pipeline_and_run_commands(tmp_path, env):
    path = _pipeline_file(tmp_path)
    assert "created pipeline 'toy'" in _run(env, "pipeline", "create", "--pipeline-path", path).stdout
    again = _run(env, "pipeline", "create", "--pipeline-path", path, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert "updated pipeline 'toy'" in _run(env, "pipeline", "update", "--pipeline-path", path).stdout
    assert "toy" in _run(env, "pipeline", "list").stdout
    compiled = _run(env, "pipeline", "compile", "--pipeline-path", path).stdout
    assert "Sum" in compiled and "after: Produce" in compiled

    first = _run(env, "run", "create", "--pipeline-name", "toy").stdout
    assert "Produce: DONE" in first and "Sum: DONE" in first
    second = _run(env, "run", "create", "--pipeline-name", "toy").stdout
    assert "(cached)" in second
    listing = _run(env, "run", "list", "--pipeline-name", "toy").stdout.splitlines()
    assert len(listing) == 2
    run_id = listing[-1].split()[0]  # the older run: complete, not cached
    status = _run(env, "run", "status", "--pipeline-name", "toy", "--run-id", run_id).stdout
    assert "Produce" in status and "COMPLETE" in status
    latest = _run(env, "run", "status", "--pipeline-name", "toy").stdout
    assert "CACHED" in latest

    _run(env, "pipeline", "delete", "--pipeline-name", "toy")
    missing = _run(env, "run", "list", "--pipeline-name", "toy", check=False)
    assert missing.returncode == 2 and "no registered pipeline 'toy'" in missing.stderr


def test_component_run_is_the_unit_for_orchestrators(tmp_path, env):
    path = _pipeline_file(tmp_path, n=5)
    out = _run(env, "component", "run", "--pipeline-path", path, "--component", "Produce", "--run-id", "r1")
    assert '"state": "COMPLETE"' in out.stdout
    early = _run(env, "component", "run", "--pipeline-path", path, "--component", "Sum", "--run-id", "r2",
                 check=False)
    assert early.returncode == 1 and "has not produced" in early.stderr
    out = _run(env, "component", "run", "--pipeline-path", path, "--component", "Sum", "--run-id", "r1")
    assert '"state": "COMPLETE"' in out.stdout
    bad = _run(env, "component", "run", "--pipeline-path", path, "--component", "Nope", "--run-id", "r1",
               check=False)
    assert bad.returncode == 2 and "no component 'Nope'" in bad.stderr


def test_template_list(env):
    assert "flights" in _run(env, "template", "list").stdout

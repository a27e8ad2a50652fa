"""The pipeline, run, component and template commands, through the console script."""

import os
import subprocess

import pytest
from conftest import CONVEYOR


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


def component_command(conveyor, action, path, component, run_id, *more, check=True):
    """``conveyor component ACTION`` (run, check...) of one component of a pipeline file."""
    args = ["--pipeline-path", str(path), "--component", component, "--run-id", run_id]
    return conveyor("component", action, *args, *more, check=check)


def test_pipeline_and_run_commands(tmp_path, conveyor):
    path = _pipeline_file(tmp_path)
    assert (
        "created pipeline 'toy'" in conveyor("pipeline", "create", "--pipeline-path", path).stdout
    )
    again = conveyor("pipeline", "create", "--pipeline-path", path, check=False)
    assert again.returncode == 2 and "already exists" in again.stderr
    assert (
        "updated pipeline 'toy'" in conveyor("pipeline", "update", "--pipeline-path", path).stdout
    )
    assert "toy" in conveyor("pipeline", "list").stdout
    compiled = conveyor("pipeline", "compile", "--pipeline-path", path).stdout
    assert "Sum" in compiled and "after: Produce" in compiled

    first = conveyor("run", "create", "--pipeline-name", "toy").stdout
    assert "Produce: DONE" in first and "Sum: DONE" in first
    second = conveyor("run", "create", "--pipeline-name", "toy").stdout
    assert "(cached)" in second
    listing = conveyor("run", "list", "--pipeline-name", "toy").stdout.splitlines()
    assert len(listing) == 2
    run_id = listing[-1].split()[0]  # the older run: complete, not cached
    status = conveyor("run", "status", "--pipeline-name", "toy", "--run-id", run_id).stdout
    assert "Produce" in status and "COMPLETE" in status
    latest = conveyor("run", "status", "--pipeline-name", "toy").stdout
    assert "CACHED" in latest

    conveyor("pipeline", "delete", "--pipeline-name", "toy")
    missing = conveyor("run", "list", "--pipeline-name", "toy", check=False)
    assert missing.returncode == 2 and "no registered pipeline 'toy'" in missing.stderr


def test_component_run_is_the_unit_for_orchestrators(tmp_path, conveyor):
    path = _pipeline_file(tmp_path, n=5)
    out = component_command(conveyor, "run", path, "Produce", "r1")
    assert '"state": "COMPLETE"' in out.stdout
    early = component_command(conveyor, "run", path, "Sum", "r2", check=False)
    assert early.returncode == 1 and "has not produced" in early.stderr
    out = component_command(conveyor, "run", path, "Sum", "r1")
    assert '"state": "COMPLETE"' in out.stdout
    bad = component_command(conveyor, "run", path, "Nope", "r1", check=False)
    assert bad.returncode == 2 and "no component 'Nope'" in bad.stderr


def test_template_list(conveyor):
    assert "flights" in conveyor("template", "list").stdout


def _read_only(cmd, folder):
    """``cmd`` to run with ``folder`` read-only: chmod for a normal user; for root, who writes through
    permissions, a read-only bind mount of it in a private mount namespace (skipped where not allowed)."""
    if os.geteuid() != 0:
        os.chmod(folder, 0o555)
        return cmd
    probe = subprocess.run(
        ["unshare", "-m", "--propagation", "private", "true"], capture_output=True
    )
    if probe.returncode != 0:
        pytest.skip("running as root without mount namespaces: no way to make a folder read-only")
    script = 'mount --bind "$1" "$1" && mount -o remount,ro,bind "$1" && shift && exec "$@"'
    return [
        "unshare",
        "-m",
        "--propagation",
        "private",
        "sh",
        "-c",
        script,
        "sh",
        str(folder),
        *cmd,
    ]


@pytest.mark.parametrize("kind", ["file", "under a file", "read-only"])
def test_unusable_pipeline_root_is_a_usage_error_naming_it(tmp_path, conveyor, conveyor_env, kind):
    root = {
        "file": tmp_path / "root",
        "under a file": tmp_path / "root" / "inner",
        "read-only": tmp_path / "root",
    }[kind]
    path = tmp_path / "toy_pipeline.py"
    path.write_text(
        "from orchestration_components import Produce\n"
        "from conveyor.orchestration import Pipeline\n"
        f"pipeline = Pipeline('toy', {str(root)!r}, [Produce()])\n"
    )
    if kind == "read-only":
        root.mkdir()
    else:
        (tmp_path / "root").write_text("not a folder")
    conveyor("pipeline", "create", "--pipeline-path", str(path))
    why = {
        "file": "is a file, not a directory",
        "under a file": "cannot be created: Not a directory",
        "read-only": "is not writable: Read-only file system"
        if os.geteuid() == 0
        else "is not writable: Permission denied",
    }[kind]
    for args in (
        ["run", "create", "--pipeline-name", "toy"],
        [
            "component",
            "run",
            "--pipeline-path",
            str(path),
            "--component",
            "Produce",
            "--run-id",
            "r1",
        ],
    ):
        cmd = [CONVEYOR, *args]
        if kind == "read-only":
            cmd = _read_only(cmd, root)
        proc = subprocess.run(cmd, capture_output=True, text=True, env=conveyor_env, timeout=120)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert f"error: pipeline root {root} {why}" in proc.stderr, proc.stderr
        assert "Traceback" not in proc.stderr

"""Tests of components/pusher: versions, blessings, atomic pushes, kill -9 mid-copy, CLI, node.

The model is test_infra_validator's ``good`` SavedModel. The kill test pauses
a push after its first file through a hook of the test's own (a child process
that wraps the copy of one file), writes the child's pid to a marker, and
kills it there with SIGKILL.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_conveyor_in_process as run_cli

from conveyor.beam_utils.errors import InputError
from conveyor.dsl import REQUIRED, Component, PipelineDefinitionError, layout


class CopyExamples(Component):
    """An Examples artifact copied from a folder the test wrote."""

    OUTPUTS = {"examples": "Examples"}
    PARAMETERS = {"source": REQUIRED}

    def execute(self, ctx):
        shutil.copytree(ctx.parameters["source"], ctx.outputs["examples"].uri, dirs_exist_ok=True)


class InfraBless(Component):
    """An InfraBlessing artifact: an INFRA_BLESSED or INFRA_NOT_BLESSED file."""

    OUTPUTS = {"blessing": "InfraBlessing"}
    PARAMETERS = {"blessed": True}

    def execute(self, ctx):
        name = layout.INFRA_BLESSED if ctx.parameters["blessed"] else layout.INFRA_NOT_BLESSED
        Path(ctx.outputs["blessing"].uri, name).write_text("test\n")
        return {"blessing": {"blessed": int(bool(ctx.parameters["blessed"]))}}


@pytest.fixture(scope="module")
def model(tmp_path_factory) -> Path:
    """A Model artifact folder (TFX's layout) holding a small SavedModel."""
    from test_infra_validator import save_models

    return save_models(tmp_path_factory.mktemp("models"))["good"]


def blessing(folder: Path, marker: str) -> str:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / marker).write_text("")
    return str(folder)


def destination(base: Path) -> dict:
    return {"filesystem": {"base_directory": str(base)}}


def push(model, base, **kwargs):
    from conveyor.components.pusher import run_pusher

    return run_pusher(
        str(model), kwargs.pop("output_dir", None), push_destination=destination(base), **kwargs
    )


def visible(base: Path) -> list[str]:
    """What TensorFlow Serving would look at: the folder's entries not starting with '.'."""
    return sorted(n for n in os.listdir(base) if not n.startswith("."))


def assert_serves(folder: Path) -> None:
    import tensorflow as tf

    loaded = tf.saved_model.load(str(folder))
    out = loaded.signatures["predict_tensors"](x=tf.constant([[1.5]]))
    assert out["y"].numpy().tolist() == [[3.0]]


def snapshot(base: Path) -> dict:
    return {
        str(p.relative_to(base)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in [base, *base.rglob("*")]
    }


# --- pushes ----------------------------------------------------------------------


def test_a_blessed_model_is_pushed_to_a_version_folder_that_loads(model, tmp_path):
    base = tmp_path / "serving"
    out = tmp_path / "pushed"
    before = int(time.time())
    summary = push(
        model,
        base,
        output_dir=str(out),
        model_blessing=blessing(tmp_path / "b", layout.BLESSED),
        infra_blessing=blessing(tmp_path / "i", layout.INFRA_BLESSED),
    )
    version = summary["pushed_version"]
    assert summary["pushed"] == 1 and int(version) >= before
    assert summary["pushed_destination"] == str(base / version)
    assert summary["model"] == str(model / layout.SERVING_DIR)
    assert os.listdir(base) == [version]  # no temporary folder left
    assert_serves(base / version)
    assert json.loads((out / "push_summary.json").read_text()) == summary


def test_two_pushes_give_two_versions_the_second_newer(model, tmp_path):
    base = tmp_path / "serving"
    first = push(model, base)
    second = push(model, base)
    assert int(second["pushed_version"]) > int(first["pushed_version"])
    assert visible(base) == sorted([first["pushed_version"], second["pushed_version"]])

    from conveyor.components.pusher import next_version, versions

    (base / "9999999999").mkdir()  # a version from the future (a clock set back since)
    (base / "notes").mkdir()
    assert versions(base)[-1] == 9999999999
    assert next_version(base) == 10000000000
    assert push(model, base)["pushed_version"] == "10000000000"


def test_an_unblessed_model_is_not_pushed_and_nothing_is_written(model, tmp_path):
    base = tmp_path / "serving"
    summary = push(model, base, model_blessing=blessing(tmp_path / "b", layout.NOT_BLESSED))
    assert summary["pushed"] == 0 and summary["pushed_destination"] == ""
    assert summary["reason"].startswith("model not blessed (NOT_BLESSED in ")
    assert not base.exists()

    push(model, base)
    before = snapshot(base)
    summary = push(
        model,
        base,
        model_blessing=blessing(tmp_path / "b2", layout.BLESSED),
        infra_blessing=blessing(tmp_path / "i", layout.INFRA_NOT_BLESSED),
    )
    assert summary["pushed"] == 0
    assert summary["reason"].startswith("model not infra-blessed (INFRA_NOT_BLESSED in ")
    assert snapshot(base) == before


def test_a_model_on_an_object_store_is_pushed(model, tmp_path, object_store):
    """A Beam filesystem without folders (teststore://, as gs://): the model is known by its files."""
    for path in (model / layout.SERVING_DIR).rglob("*"):
        if path.is_file():
            key = path.relative_to(model).as_posix()
            object_store.objects[f"teststore://bucket/model/{key}"] = path.read_bytes()
    base = tmp_path / "serving"
    summary = push("teststore://bucket/model", base)
    assert summary["model"] == "teststore://bucket/model/" + layout.SERVING_DIR
    assert_serves(base / summary["pushed_version"])
    with pytest.raises(InputError, match="not a SavedModel"):
        push("teststore://bucket/elsewhere", base)


def test_bad_inputs_raise(model, tmp_path):
    with pytest.raises(InputError, match="no such model folder"):
        push(tmp_path / "nowhere", tmp_path / "s")
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="not a SavedModel"):
        push(tmp_path / "empty", tmp_path / "s")
    with pytest.raises(InputError, match="a ModelBlessing without a BLESSED or NOT_BLESSED"):
        push(model, tmp_path / "s", model_blessing=str(tmp_path / "empty"))
    with pytest.raises(InputError, match="an InfraBlessing without an INFRA_BLESSED"):
        push(model, tmp_path / "s", infra_blessing=str(tmp_path / "empty"))
    (tmp_path / "file").write_text("")
    with pytest.raises(InputError, match="exists and is not a folder"):
        push(model, tmp_path / "file")
    with pytest.raises(InputError, match="is inside the model folder"):
        push(model, model / layout.SERVING_DIR / "serving")
    assert not (tmp_path / "s").exists()


# --- push_destination ------------------------------------------------------------


def test_push_destination_forms(tmp_path, monkeypatch):
    from google.protobuf import struct_pb2

    from conveyor.components.pusher.destination import base_directory

    d = str(tmp_path / "s")
    assert base_directory({"filesystem": {"base_directory": d}}) == d
    assert base_directory(json.dumps({"filesystem": {"base_directory": d}})) == d
    assert base_directory({"filesystem": {"baseDirectory": d, "versioning": "UNIX_TIMESTAMP"}}) == d
    assert base_directory({"filesystem": {"base_directory": d, "versioning": 0}}) == d
    message = struct_pb2.Struct()
    message.update({"filesystem": {"base_directory": d}})
    assert base_directory(message) == d
    monkeypatch.chdir(tmp_path)
    assert base_directory({"filesystem": {"base_directory": "rel"}}) == str(tmp_path / "rel")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (None, "push_destination: required"),
        ({}, "push_destination: names no filesystem"),
        ({"gcs": {}}, r"push_destination\.gcs: unknown field"),
        ({"filesystem": {"base_dir": "x"}}, r"push_destination\.filesystem\.base_dir: unknown"),
        ({"filesystem": {}}, r"push_destination\.filesystem\.base_directory: a folder, not None"),
        (
            {"filesystem": {"base_directory": "gs://b/m"}},
            r"base_directory: gs://b/m: a local folder",
        ),
        (
            {"filesystem": {"base_directory": "x", "versioning": "SEMANTIC_VERSION"}},
            "SEMANTIC_VERSION",
        ),
        ({"filesystem": {"base_directory": "x", "versioning": "DAILY"}}, "AUTO or UNIX_TIMESTAMP"),
        ({"filesystem": "x"}, r"push_destination\.filesystem: a message"),
        ("filesystem { base_directory: 'x' }", "push_destination: not JSON"),
    ],
)
def test_bad_push_destinations_are_refused_naming_the_field(spec, message):
    from conveyor.components.pusher.destination import base_directory

    with pytest.raises(PipelineDefinitionError, match=message):
        base_directory(spec)


def test_the_node_checks_push_destination_when_defined(tmp_path, monkeypatch):
    from orchestration_components import CopyModel

    from conveyor.components import Pusher

    model = CopyModel(saved_model="m").outputs["model"]
    with pytest.raises(PipelineDefinitionError, match=r"Pusher: push_destination\.filesystem\.x"):
        Pusher(model=model, push_destination={"filesystem": {"x": 1}})
    with pytest.raises(
        PipelineDefinitionError, match="missing required parameter 'push_destination'"
    ):
        Pusher(model=model)
    monkeypatch.chdir(tmp_path)
    node = Pusher(model=model, push_destination='{"filesystem": {"baseDirectory": "serving"}}')
    assert node.parameters["push_destination"] == {
        "filesystem": {"base_directory": str(tmp_path / "serving")}
    }


# --- killed mid-copy -------------------------------------------------------------

#: A push that stops after copying its first file: writes its pid to MARKS/started, then waits.
PAUSED_PUSH = """
import os, sys, time
from conveyor.components.pusher import component

marks, model, base = sys.argv[1:4]
copy = component._copy_file

def copy_then_wait(source, target):
    copy(source, target)
    with open(os.path.join(marks, "started.tmp"), "w") as f:
        f.write(str(os.getpid()))
    os.replace(os.path.join(marks, "started.tmp"), os.path.join(marks, "started"))
    while True:
        time.sleep(0.05)

component._copy_file = copy_then_wait
from conveyor.orchestration.cli import main
sys.exit(main(["push", "--model", model, "--destination", base]))
"""


def start_paused_push(tmp_path: Path, model: Path, base: Path, name: str):
    marks = tmp_path / name
    marks.mkdir()
    script = tmp_path / "paused_push.py"
    script.write_text(PAUSED_PUSH)
    proc = subprocess.Popen(
        [sys.executable, str(script), str(marks), str(model), str(base)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    deadline = time.time() + 120
    while not (marks / "started").exists():
        if proc.poll() is not None:
            raise AssertionError(f"the push ended ({proc.returncode}): {proc.stdout.read()!r}")
        assert time.time() < deadline, "the push did not start copying"
        time.sleep(0.05)
    assert int((marks / "started").read_text()) == proc.pid
    return proc


def kill(proc) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=30)
    proc.stdout.close()


def test_a_push_killed_mid_copy_leaves_no_visible_version_and_a_rerun_pushes_once(model, tmp_path):
    base = tmp_path / "serving"
    procs = []
    try:
        procs.append(start_paused_push(tmp_path, model, base, "first"))
        first = procs[0]
        [temp] = os.listdir(base)
        assert temp.startswith(".") and temp.endswith(f".tmp-{first.pid}")
        assert any(p.is_file() for p in (base / temp).rglob("*"))  # part of the model is there
        assert visible(base) == []

        # A push while it is alive leaves its folder alone.
        summary = push(model, base)
        assert visible(base) == [summary["pushed_version"]]
        assert temp in os.listdir(base)

        kill(first)
        assert sorted(os.listdir(base)) == sorted([temp, summary["pushed_version"]])
        assert visible(base) == [summary["pushed_version"]]  # still nothing partial to serve

        rerun = push(model, base)
        assert sorted(os.listdir(base)) == sorted(
            [summary["pushed_version"], rerun["pushed_version"]]
        )
        assert_serves(base / rerun["pushed_version"])
    finally:
        for p in procs:
            kill(p)


def test_a_killed_push_before_any_version_then_a_rerun_gives_exactly_one(model, tmp_path):
    base = tmp_path / "serving"
    kill(start_paused_push(tmp_path, model, base, "marks"))
    assert visible(base) == [] and len(os.listdir(base)) == 1
    assert run_cli("push", "--model", model, "--destination", base) == 0
    [version] = os.listdir(base)
    assert version.isdigit()
    assert_serves(base / version)


def test_a_push_stopped_by_sigterm_mid_copy_removes_its_copy(model, tmp_path):
    base = tmp_path / "serving"
    proc = start_paused_push(tmp_path, model, base, "marks")
    try:
        assert len(os.listdir(base)) == 1
        os.kill(proc.pid, signal.SIGTERM)
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        kill(proc)
    assert os.listdir(base) == []


# --- the command line ------------------------------------------------------------


def test_cli_exit_status(model, tmp_path, capsys):
    base = tmp_path / "serving"
    assert run_cli("push", "--model", model, "--destination", base) == 0
    [version] = visible(base)
    assert capsys.readouterr().out.strip().endswith(f": {base / version}")

    args = ["--model", model, "--destination", base]
    no = blessing(tmp_path / "no", layout.NOT_BLESSED)
    yes = blessing(tmp_path / "yes", layout.BLESSED)
    infra_no = blessing(tmp_path / "infra_no", layout.INFRA_NOT_BLESSED)
    assert run_cli("push", *args, "--blessing", no) == 1
    assert capsys.readouterr().out.startswith("not pushed: model not blessed")
    assert run_cli("push", *args, "--blessing", yes, "--infra-blessing", infra_no) == 1
    assert visible(base) == [version]

    assert run_cli("push", "--model", tmp_path / "nope", "--destination", base) == 2
    assert "no such model folder" in capsys.readouterr().err
    assert run_cli("push", *args, "--blessing", tmp_path / "nope") == 2
    assert run_cli("push", "--model", model, "--destination", "gs://bucket/m") == 2
    assert "a local folder" in capsys.readouterr().err
    assert visible(base) == [version]


# --- in a pipeline ---------------------------------------------------------------


def test_pusher_in_a_pipeline(model, tmp_path):
    """A Model and blessings -> a pushed version; a NOT_BLESSED or INFRA_NOT_BLESSED model is not."""
    from orchestration_components import Bless, CopyModel

    from conveyor.components import Pusher
    from conveyor.orchestration import LocalDagRunner, Metadata, Pipeline

    serving = tmp_path / "serving"
    saved = CopyModel(saved_model=str(model / layout.SERVING_DIR)).outputs["model"]
    blessed, not_blessed = Bless(id="Blessed"), Bless(id="NotBlessed", blessed=False)
    infra_ok, infra_no = InfraBless(id="InfraOk"), InfraBless(id="InfraNo", blessed=False)
    pushes = [
        Pusher(
            model=saved,
            model_blessing=blessed.outputs["blessing"],
            infra_blessing=infra_ok.outputs["blessing"],
            push_destination=json.dumps(destination(serving / "a")),
        ),
        Pusher(
            id="PushNotBlessed",
            model=saved,
            model_blessing=not_blessed.outputs["blessing"],
            push_destination=destination(serving / "b"),
        ),
        Pusher(
            id="PushInfraNo",
            model=saved,
            model_blessing=blessed.outputs["blessing"],
            infra_blessing=infra_no.outputs["blessing"],
            push_destination=destination(serving / "c"),
        ),
    ]
    pipeline = Pipeline(
        "push",
        root=str(tmp_path / "root"),
        components=[saved.producer, blessed, not_blessed, infra_ok, infra_no, *pushes],
    )
    result = LocalDagRunner(quiet=True).run(pipeline)
    md = Metadata(pipeline.metadata_path)
    got = {p.id: md.latest_outputs("push", result["run_id"], p.id)["pushed_model"] for p in pushes}
    pushed = got["Pusher"]
    assert pushed.type_name == "PushedModel"
    assert int(pushed.properties["pushed"]) == 1
    assert os.listdir(serving / "a") == [pushed.properties["pushed_version"]]
    assert pushed.properties["pushed_destination"] == str(
        serving / "a" / pushed.properties["pushed_version"]
    )
    summary = json.loads((Path(pushed.uri) / "push_summary.json").read_text())
    assert summary["pushed_destination"] == pushed.properties["pushed_destination"]
    assert_serves(Path(pushed.properties["pushed_destination"]))
    for cid in ("PushNotBlessed", "PushInfraNo"):
        assert int(got[cid].properties["pushed"]) == 0
        assert "pushed_destination" not in got[cid].properties
    assert not (serving / "b").exists() and not (serving / "c").exists()

"""How commands write their outputs (beam_utils/outputs.py) and report user errors (beam_utils/errors.py).

Every command that writes an output writes beside it and replaces it at the end:
a rerun leaves exactly the new files, a failed run leaves the previous output as
it was and nothing beside it. Bad output paths exit 2 naming the path before
any work; bare names work. An InputError raised in a pipeline step reaches the
user as its message, once, with exit status 2, whatever the runner wraps it in.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conveyor.beam_utils import outputs
from conveyor.beam_utils.errors import InputError, UsageError, user_error
from conveyor.orchestration.cli import main

PYTHON = sys.executable
TESTS_DIR = os.path.dirname(os.path.abspath(__file__))


# -- helpers ------------------------------------------------------------------------


def tree(root) -> dict[str, bytes]:
    """``{relative path: bytes}`` of every file under ``root`` (hidden ones too)."""
    root = Path(root)
    if root.is_file():
        return {"": root.read_bytes()}
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def hidden(folder) -> list[str]:
    """Names in ``folder`` that start with a dot: what a staging would leave."""
    return sorted(n for n in os.listdir(folder) if n.startswith("."))


def plant_stale(out: Path) -> None:
    """Files an older run could have left: an extra shard of each sharded file, an extra file and folder."""
    for p in list(out.rglob("*")):
        if p.is_file() and "-00000-of-00001" in p.name:
            shutil.copy(p, p.with_name(p.name.replace("-00000-of-00001", "-00001-of-00002")))
    (out / "stale.txt").write_text("from an earlier run")
    (out / "stale_dir").mkdir()
    (out / "stale_dir" / "x").write_text("old")


# -- the helper on its own -----------------------------------------------------------


def test_rerun_leaves_exactly_the_new_files(tmp_path):
    out = tmp_path / "out"
    with outputs.staged_output(str(out)) as staging:
        for i in range(3):
            Path(staging, f"part-0000{i}-of-00003").write_text(f"old {i}")
    assert sorted(tree(out)) == [
        "part-00000-of-00003",
        "part-00001-of-00003",
        "part-00002-of-00003",
    ]
    with outputs.staged_output(str(out)) as staging:
        assert Path(staging).parent == tmp_path and Path(staging).name.startswith(".out.tmp-")
        assert os.listdir(staging) == []  # a fresh folder, not the old output
        assert tree(out)["part-00001-of-00003"] == b"old 1"  # the old output stays until the end
        Path(staging, "part-00000-of-00001").write_text("new")
    assert tree(out) == {"part-00000-of-00001": b"new"}
    assert hidden(tmp_path) == []


@pytest.mark.parametrize("error", [RuntimeError("boom"), KeyboardInterrupt(), SystemExit(143)])
def test_failure_or_interrupt_leaves_the_previous_output(tmp_path, error):
    out = tmp_path / "out"
    out.mkdir()
    (out / "keep.txt").write_text("previous")
    with pytest.raises(type(error)):
        with outputs.staged_output(str(out)) as staging:
            Path(staging, "half-written").write_text("x")
            raise error
    assert tree(out) == {"keep.txt": b"previous"}
    assert hidden(tmp_path) == []


def test_failure_removes_the_folders_it_created(tmp_path):
    with pytest.raises(RuntimeError):
        with outputs.staged_output(str(tmp_path / "a" / "b" / "out")) as staging:
            Path(staging, "f").write_text("x")
            raise RuntimeError("boom")
    assert os.listdir(tmp_path) == []


def test_file_output_is_replaced_and_keeps_its_extension(tmp_path):
    target = tmp_path / "schema.pbtxt"
    target.write_text("old")
    with outputs.staged_output(str(target), is_file=True) as staging:
        # Writers choose text or binary by the file's extension.
        assert staging.endswith(".pbtxt") and Path(staging).parent == tmp_path
        Path(staging).write_text("new")
        assert target.read_text() == "old"
    assert target.read_text() == "new"
    assert os.listdir(tmp_path) == ["schema.pbtxt"]
    with pytest.raises(ValueError):
        with outputs.staged_output(str(target), is_file=True) as staging:
            Path(staging).write_text("half")
            raise ValueError("boom")
    assert target.read_text() == "new" and os.listdir(tmp_path) == ["schema.pbtxt"]


def test_bare_names_are_relative_to_the_working_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with outputs.staged_output("out") as staging:
        assert os.path.isabs(staging)
        Path(staging, "f").write_text("x")
    with outputs.staged_output("schema.pbtxt", is_file=True) as staging:
        Path(staging).write_text("s")
    assert tree(tmp_path) == {"out/f": b"x", "schema.pbtxt": b"s"}


def test_write_text_and_create_file_take_a_bare_name(tmp_path, monkeypatch):
    from conveyor.beam_utils.files import create_file, write_text

    monkeypatch.chdir(tmp_path)
    write_text("summary.json", "{}\n")
    with create_file("blob.pb") as f:
        f.write(b"\x00")
    assert (tmp_path / "summary.json").read_text() == "{}\n"
    assert (tmp_path / "blob.pb").read_bytes() == b"\x00"


def test_bad_outputs_are_usage_errors_naming_the_path(tmp_path, monkeypatch):
    a_file = tmp_path / "a_file"
    a_file.write_text("x")
    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    cases = [
        (str(a_file), False, "exists and is not a directory"),
        (str(a_dir), True, "is a directory"),
        (str(tmp_path) + "/new/", True, "is a directory"),
        (str(a_file / "out"), False, "is a file"),
        (str(a_file / "sub" / "schema.pbtxt"), True, "is a file"),
        ("", False, "empty"),
    ]
    for path, is_file, words in cases:
        with pytest.raises(UsageError, match=words) as e:
            with outputs.staged_output(path, is_file=is_file):
                raise AssertionError("the body must not run")
        assert path in str(e.value)
    monkeypatch.chdir(a_dir)
    for path in (".", str(tmp_path)):  # replacing them would delete the working directory
        with pytest.raises(UsageError, match="working directory"):
            outputs.check_output(path)
    assert sorted(os.listdir(tmp_path)) == ["a_dir", "a_file"]


def test_an_output_that_is_or_holds_an_input_is_refused(tmp_path):
    (tmp_path / "data").mkdir()
    for output, given in [
        (tmp_path / "data", str(tmp_path / "data" / "*.csv")),
        (tmp_path, str(tmp_path / "data")),
        (tmp_path / "data", str(tmp_path / "data")),
        (tmp_path / "s.pb", str(tmp_path / "s.pb")),
    ]:
        with pytest.raises(UsageError, match="which this command reads"):
            outputs.check_output(str(output), is_file=output.suffix == ".pb", inputs=[None, given])
    # Beside or inside an input is fine.
    outputs.check_output(str(tmp_path / "data" / "stats"), inputs=[str(tmp_path / "data")])
    outputs.check_output(str(tmp_path / "other"), inputs=[str(tmp_path / "data" / "*.csv")])


def test_live_output_for_a_command_that_runs_until_stopped(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "window-old").mkdir()
    # Stopped with Ctrl-C after writing: the old output is gone, the new one stays.
    with pytest.raises(KeyboardInterrupt):
        with outputs.live_output(str(out)) as live:
            assert live == str(out) and os.listdir(out) == []  # written in place, as it comes
            (out / "window-new").mkdir()
            raise KeyboardInterrupt
    assert os.listdir(out) == ["window-new"] and hidden(tmp_path) == []
    # Failing before writing anything: the previous output comes back.
    with pytest.raises(RuntimeError):
        with outputs.live_output(str(out)):
            raise RuntimeError("bad schema")
    assert os.listdir(out) == ["window-new"] and hidden(tmp_path) == []
    # Failing after writing: what the run wrote is its output.
    with pytest.raises(RuntimeError):
        with outputs.live_output(str(out)):
            (out / "window-later").mkdir()
            raise RuntimeError("lost the subscription")
    assert os.listdir(out) == ["window-later"] and hidden(tmp_path) == []
    # No previous output, nothing written: nothing left, not even the folders made for it.
    with pytest.raises(RuntimeError):
        with outputs.live_output(str(tmp_path / "a" / "mon")):
            raise RuntimeError("bad schema")
    assert sorted(os.listdir(tmp_path)) == ["out"]


# -- outputs on a Beam filesystem other than the local one -----------------------------


def test_remote_output_goes_through_beam_filesystems(object_store):
    store = object_store.objects
    from apache_beam.io.filesystems import FileSystems

    def write(path, data):
        with FileSystems.create(path) as f:
            f.write(data)

    out = "teststore://bucket/runs/out"
    with outputs.staged_output(out) as staging:
        assert staging.startswith("teststore://bucket/runs/.out.tmp-")
        write(staging + "/a-00000-of-00002", b"1")
        write(staging + "/a-00001-of-00002", b"2")
    assert sorted(store) == [out + "/a-00000-of-00002", out + "/a-00001-of-00002"]
    with outputs.staged_output(out) as staging:
        write(staging + "/a-00000-of-00001", b"3")
    assert store == {out + "/a-00000-of-00001": b"3"}
    with pytest.raises(RuntimeError):
        with outputs.staged_output(out) as staging:
            write(staging + "/half", b"x")
            raise RuntimeError("boom")
    assert store == {out + "/a-00000-of-00001": b"3"}
    # A file output, and the kinds mixed up.
    with outputs.staged_output("teststore://bucket/schema.pbtxt", is_file=True) as staging:
        assert staging.endswith(".pbtxt")
        write(staging, b"s")
    assert store["teststore://bucket/schema.pbtxt"] == b"s" and len(store) == 2
    with pytest.raises(UsageError, match="is a directory"):
        outputs.check_output(out, is_file=True)
    with pytest.raises(UsageError, match="not a directory"):
        outputs.check_output("teststore://bucket/schema.pbtxt")
    with pytest.raises(UsageError, match="bucket"):
        outputs.check_output("teststore://bucket")


# -- user_error ------------------------------------------------------------------------


class RaiseOnThree:
    """A DoFn (importable by worker processes: tests/ is on their PYTHONPATH) raising InputError."""

    def __new__(cls):
        import apache_beam as beam

        class _Raise(beam.DoFn):
            def process(self, x):
                if x == 3:
                    raise InputError("rows.csv: row 3: 'abc' is not a number")
                yield x

        return _Raise()


def raise_in_pipeline(beam_args):
    import apache_beam as beam

    from conveyor.beam_utils.options import pipeline_options

    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        _ = p | beam.Create([1, 2, 3, 4]) | beam.ParDo(RaiseOnThree())


@pytest.mark.parametrize(
    "beam_args",
    [[], ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]],
    ids=["in_memory", "multi_processing"],
)
def test_user_error_finds_an_input_error_raised_in_a_step(beam_args):
    with pytest.raises(Exception) as e:
        raise_in_pipeline(beam_args)
    found = user_error(e.value)
    assert isinstance(found, InputError)
    assert str(found) == "rows.csv: row 3: 'abc' is not a number"  # without Beam's step note


def test_user_error_in_text_and_chains():
    text = (
        'Traceback (most recent call last):\n  File "x.py", line 1, in f\n'
        "conveyor.beam_utils.errors.UsageError: --splits: bad weight\n  more detail\n\n"
        "During handling of the above exception, another exception occurred:\n\n"
        "conveyor.beam_utils.errors.UsageError: --splits: bad weight\n  more detail [while running 'S']\n"
    )
    found = user_error(RuntimeError(text))
    assert isinstance(found, UsageError) and str(found) == "--splits: bad weight\n  more detail"
    # Another error raised while handling an InputError is not a user error ...
    handled = text.replace("UsageError", "InputError") + "\nDuring handling:\nKeyError: 'y'\n"
    assert user_error(RuntimeError(handled)) is None
    try:
        try:
            raise InputError("a.csv: bad")
        except InputError:
            raise KeyError("bug")  # noqa: B904 (the implicit context is the point)
    except KeyError as e:
        assert user_error(e) is None
    # ... but one raised from it is, and so is a subclass found in text.
    try:
        try:
            raise InputError("a.csv: bad")
        except InputError as e:
            raise RuntimeError("wrapped") from e
    except RuntimeError as e:
        assert str(user_error(e)) == "a.csv: bad"
    from conveyor.components.transform.user_fn import MissingFeatureError

    name = f"{MissingFeatureError.__module__}.MissingFeatureError"
    assert isinstance(
        user_error(RuntimeError(f"Traceback ...\n{name}: no feature 'x'\n")), InputError
    )
    assert user_error(RuntimeError("ValueError: something else")) is None


FAKE_COMMAND = textwrap.dedent(
    """
    import sys
    sys.path.insert(0, {tests!r})
    from conveyor.orchestration import cli
    cli.COMMANDS["raise-in-step"] = "test_outputs:fake"
    cli.COMMANDS["write-and-wait"] = "test_outputs:wait"
    sys.exit(cli.main(sys.argv[1:]))
    """
)
#: The help of the two commands above (this module is their command module).
HELP = {"fake": "raises InputError in a pipeline step", "wait": "writes its output, then waits"}


def add_wait_arguments(parser):
    parser.add_argument("--output", required=True)


def run_wait(args, beam_args):
    import time

    with outputs.staged_output(args.output) as out:
        Path(out, "half-written").write_text("x")
        print("ready", flush=True)
        time.sleep(120)
    return 0


def test_sigterm_leaves_the_previous_output(tmp_path):
    import signal

    out = tmp_path / "out"
    out.mkdir()
    (out / "keep").write_text("previous")
    proc = subprocess.Popen(
        [
            PYTHON,
            "-c",
            FAKE_COMMAND.format(tests=TESTS_DIR),
            "write-and-wait",
            "--output",
            str(out),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert proc.stdout.readline() == "ready\n"
        assert len(hidden(tmp_path)) == 1  # the staging folder, beside the output
        proc.send_signal(signal.SIGTERM)  # how Airflow or Kubernetes stop a task
        assert proc.wait(timeout=60) == 128 + signal.SIGTERM
    finally:
        proc.kill()
        proc.communicate()
    assert tree(out) == {"keep": b"previous"} and hidden(tmp_path) == []


def add_fake_arguments(parser):
    pass


def run_fake(args, beam_args):
    raise_in_pipeline(beam_args)
    return 0


@pytest.mark.parametrize(
    "beam_args",
    [[], ["--direct_running_mode=multi_processing", "--direct_num_workers=2"]],
    ids=["in_memory", "multi_processing"],
)
def test_cli_prints_an_error_raised_in_a_step_once_and_exits_2(beam_args):
    proc = subprocess.run(
        [PYTHON, "-c", FAKE_COMMAND.format(tests=TESTS_DIR), "raise-in-step", "--", *beam_args],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    message = "conveyor raise-in-step: error: rows.csv: row 3: 'abc' is not a number\n"
    assert proc.stderr.count("rows.csv: row 3") == 1, proc.stderr[-3000:]
    assert message in proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr[-3000:]


# -- every command ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    """Inputs for every command: a CSV, an Examples directory, statistics, a schema,
    a module file, a SavedModel."""
    work = tmp_path_factory.mktemp("outputs")
    rng = np.random.default_rng(0)
    n = 90
    x = rng.normal(0, 1, n)
    late = (x + rng.normal(0, 1, n) > 0).astype(int)
    p = 1 / (1 + np.exp(-x))
    color = np.array(["red", "green", "blue"])[rng.integers(0, 3, n)]
    lines = ["x,color,late,p"] + [
        f"{a:.4f},{c},{b},{q:.4f}" for a, c, b, q in zip(x, color, late, p)
    ]
    (work / "data.csv").write_text("\n".join(lines) + "\n")
    assert (
        main(["examples", "--input", str(work / "data.csv"), "--output", str(work / "examples")])
        == 0
    )
    assert (
        main(["statistics", "--examples", str(work / "examples"), "--output", str(work / "stats")])
        == 0
    )
    assert (
        main(
            [
                "schema",
                "--statistics",
                str(work / "stats" / "Split-train" / "FeatureStats.pb"),
                "--output",
                str(work / "schema.pbtxt"),
            ]
        )
        == 0
    )
    (work / "prep.py").write_text(
        textwrap.dedent(
            """
        import tensorflow as tf
        import tensorflow_transform as tft


        def preprocessing_fn(inputs):
            x = tf.squeeze(tft.sparse_tensor_to_dense_with_shape(inputs["x"], [None, 1], 0.0), 1)
            return {"x_z": tft.scale_to_z_score(x)}
        """
        )
    )
    (work / "garbage.pb").write_bytes(b"\x00\xffnot a proto at all\xff" * 10)
    return work


@pytest.fixture(scope="module")
def model(work):
    """A SavedModel: ``p = sigmoid(x)`` from a ``[None, 1]`` float input ``x``."""
    import tensorflow as tf

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
        def serve(self, x):
            return {"p": tf.sigmoid(x)}

    m = Model()
    path = work / "model"
    tf.saved_model.save(m, str(path), signatures={"serving_default": m.serve})
    return path


# command -> (argv without --output, argv of a run that fails, the output is a file)
def _commands(work, model=None):
    w = str(work)
    return {
        "examples": (
            ["examples", "--input", f"{w}/data.csv"],
            ["examples", "--input", f"{w}/missing.csv"],
            False,
        ),
        "statistics": (
            ["statistics", "--examples", f"{w}/examples"],
            ["statistics", "--examples", f"{w}/missing"],
            False,
        ),
        "schema": (
            ["schema", "--statistics", f"{w}/stats/Split-train/FeatureStats.pb"],
            ["schema", "--statistics", f"{w}/garbage.pb"],
            True,
        ),
        "validate": (
            [
                "validate",
                "--statistics",
                f"{w}/stats/Split-eval/FeatureStats.pb",
                "--schema",
                f"{w}/schema.pbtxt",
            ],
            [
                "validate",
                "--statistics",
                f"{w}/stats/Split-eval/FeatureStats.pb",
                "--schema",
                f"{w}/garbage.pb",
            ],
            False,
        ),
        "transform": (
            ["transform", "--examples", f"{w}/examples", "--module-file", f"{w}/prep.py"],
            ["transform", "--examples", f"{w}/examples", "--module-file", f"{w}/missing.py"],
            False,
        ),
        "evaluate": (
            [
                "evaluate",
                "--input",
                f"{w}/data.csv",
                "--prediction-key",
                "p",
                "--label-key",
                "late",
            ],
            [
                "evaluate",
                "--input",
                f"{w}/data.csv",
                "--prediction-key",
                "p",
                "--label-key",
                "no_such_column",
            ],
            False,
        ),
        "infer": (
            [
                "infer",
                "--input",
                f"{w}/data.csv",
                "--model",
                str(model or f"{w}/model"),
                "--prediction-prefix",
                "pred_",
            ],
            ["infer", "--input", f"{w}/data.csv", "--model", f"{w}/missing_model"],
            False,
        ),
    }


COMMANDS = ["examples", "statistics", "schema", "validate", "transform", "evaluate", "infer"]


@pytest.mark.parametrize("command", COMMANDS)
def test_command_rerun_replaces_and_failure_keeps(command, work, tmp_path, monkeypatch, request):
    model = request.getfixturevalue("model") if command == "infer" else None
    argv, failing, is_file = _commands(work, model)[command]
    monkeypatch.chdir(tmp_path)
    name = "schema.pbtxt" if is_file else "out"  # bare names, as the README writes them
    assert main([*argv, "--output", name]) in (0, 1)
    first = tree(tmp_path / name)
    assert first and hidden(tmp_path) == []
    if is_file:
        (tmp_path / name).write_text("an older schema")
    else:
        plant_stale(tmp_path / name)
    assert main([*argv, "--output", name]) in (0, 1)
    again = tree(tmp_path / name)
    assert sorted(again) == sorted(first)  # exactly the new files
    staging_mark = f".{name.split('.')[0]}.tmp-".encode()
    assert not [p for p, data in again.items() if staging_mark in data]  # no file names the staging
    if command in ("schema", "validate"):  # outputs that are the same byte for byte
        assert again == first
    assert hidden(tmp_path) == [] and sorted(os.listdir(tmp_path)) == [name]
    # A failing run leaves the previous output as it was, and nothing beside it.
    assert main([*failing, "--output", name]) == 2
    assert tree(tmp_path / name) == again
    assert hidden(tmp_path) == [] and sorted(os.listdir(tmp_path)) == [name]


def test_examples_rerun_with_fewer_shards_is_not_counted_twice(work, tmp_path):
    """Issue 16: an older run's extra shard was read by `statistics` along with the new ones."""
    from tensorflow_metadata.proto.v0 import statistics_pb2

    out = tmp_path / "examples"
    argv = ["examples", "--input", str(work / "data.csv"), "--output", str(out)]
    assert main(argv) == 0
    shard = out / "Split-train" / "data_tfrecord-00000-of-00001.gz"
    # What two workers left: two shards (here the same rows twice, as a stand-in).
    shutil.copy(shard, out / "Split-train" / "data_tfrecord-00001-of-00002.gz")
    assert main(argv) == 0
    assert main(["statistics", "--examples", str(out), "--output", str(tmp_path / "stats")]) == 0
    import json

    summary = json.loads((out / "summary.json").read_text())
    stats = statistics_pb2.DatasetFeatureStatisticsList.FromString(
        (tmp_path / "stats" / "Split-train" / "FeatureStats.pb").read_bytes()
    )
    assert stats.datasets[0].num_examples == summary["splits"]["train"]


def test_ctrl_c_during_a_command_keeps_the_previous_output(work, tmp_path, monkeypatch, capsys):
    from conveyor.components.example_gen import component

    out = tmp_path / "out"
    argv = ["examples", "--input", str(work / "data.csv"), "--output", str(out)]
    assert main(argv) == 0
    before = tree(out)

    def interrupted(input_pattern, output_dir, **kwargs):
        Path(output_dir, "Split-train").mkdir()
        Path(output_dir, "Split-train", "part").write_text("half")
        raise KeyboardInterrupt

    monkeypatch.setattr(component, "run_example_gen", interrupted)
    assert main(argv) == 130
    assert "interrupted" in capsys.readouterr().err
    assert tree(out) == before and hidden(tmp_path) == []


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", ["wrong_kind", "link_to_wrong_kind", "under_a_file"])
def test_bad_output_exits_2_naming_it_before_any_work(command, case, tmp_path, capsys):
    argv, _, is_file = _commands(tmp_path / "nothing_here")[
        command
    ]  # inputs missing: output checked first
    a_file = tmp_path / "a_file"
    a_file.write_text("not a folder")
    a_dir = tmp_path / "a_dir"
    a_dir.mkdir()
    (a_dir / "keep").write_text("k")
    if case == "wrong_kind":
        output = str(a_dir) if is_file else str(a_file)
    elif case == "link_to_wrong_kind":
        output = str(tmp_path / "link")
        os.symlink(a_dir if is_file else a_file, output)
    else:
        output = str(a_file / "sub" / ("schema.pbtxt" if is_file else "out"))
    assert main([*argv, "--output", output]) == 2
    err = capsys.readouterr().err
    assert f"error: {output}: " in err and "nothing_here" not in err and "Traceback" not in err
    assert a_file.read_text() == "not a folder" and os.listdir(a_dir) == ["keep"]
    assert hidden(tmp_path) == [] and hidden(a_dir) == []


def test_file_output_with_a_trailing_slash_exits_2(tmp_path, capsys):
    output = str(tmp_path / "new") + "/"
    assert main(["schema", "--statistics", str(tmp_path / "s.pb"), "--output", output]) == 2
    assert f"error: {output}: is a directory" in capsys.readouterr().err
    assert os.listdir(tmp_path) == []


def _lock(path: Path) -> None:
    """Makes a folder unwritable: no write bit, or for root (whom the bits do not stop) immutable."""
    if os.geteuid() != 0:
        os.chmod(path, 0o555)
        return
    proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.skip(f"running as root and chattr +i does not work here: {proc.stderr.strip()}")


def _unlock(path: Path) -> None:
    if os.geteuid() == 0:
        subprocess.run(["chattr", "-i", str(path)], capture_output=True)
    else:
        os.chmod(path, 0o755)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("case", ["parent", "existing_output"])
def test_unwritable_output_exits_2_naming_it(command, case, tmp_path, capsys):
    argv, _, is_file = _commands(tmp_path / "nothing_here")[command]  # output checked first
    name = "schema.pbtxt" if is_file else "out"
    if case == "parent":
        locked = tmp_path / "ro"
        locked.mkdir()
        output = locked / name
    else:
        if is_file:
            pytest.skip("a file output is replaced by a rename in its folder: the parent case")
        output = locked = tmp_path / name
        output.mkdir()
        (output / "keep").write_text("k")
    _lock(locked)
    try:
        assert main([*argv, "--output", str(output)]) == 2
        err = capsys.readouterr().err
        assert f"error: {output}: " in err and "permission denied" in err and "Traceback" not in err
        assert hidden(tmp_path) == [] and hidden(locked) == []
        assert os.listdir(locked) == ([] if case == "parent" else ["keep"])
    finally:
        _unlock(locked)


def test_a_failed_gate_is_a_complete_output_and_replaces_the_old_one(work, tmp_path, capsys):
    schema = tmp_path / "strict.pbtxt"
    schema.write_text(
        (work / "schema.pbtxt").read_text()
        + 'feature { name: "not_in_the_data" type: INT presence { min_fraction: 1 } }\n'
    )
    out = tmp_path / "anomalies"
    out.mkdir()
    (out / "SchemaDiff.pb").write_bytes(b"from an earlier run")
    (out / "stale.txt").write_text("old")
    rc = main(
        [
            "validate",
            "--statistics",
            str(work / "stats" / "Split-eval" / "FeatureStats.pb"),
            "--schema",
            str(schema),
            "--output",
            str(out),
        ]
    )
    assert rc == 1 and "not_in_the_data" in capsys.readouterr().out
    assert (
        sorted(tree(out)) == ["SchemaDiff.pb"]
        and tree(out)["SchemaDiff.pb"] != b"from an earlier run"
    )
    assert hidden(tmp_path) == []


def test_library_writers_take_bare_file_names(tmp_path, monkeypatch):
    """Every writer of a single file takes a bare name, relative to the working directory."""
    from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

    from conveyor.beam_utils.proto_io import write_anomalies, write_schema
    from conveyor.components.monitor.transform import _write
    from conveyor.components.statistics.component import _write_proto

    monkeypatch.chdir(tmp_path)
    write_schema(schema_pb2.Schema(), "schema.pbtxt")
    write_anomalies(anomalies_pb2.Anomalies(), "anomalies.pb")
    _write_proto(statistics_pb2.DatasetFeatureStatisticsList(), "FeatureStats.pb")
    _write("report.txt", b"ok\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "FeatureStats.pb",
        "anomalies.pb",
        "report.txt",
        "schema.pbtxt",
    ]


@pytest.fixture
def pipeline_file(tmp_path):
    from conveyor.orchestration.cli import main

    assert (
        main(["template", "copy", "--model", "flights", "--destination", str(tmp_path / "tpl")])
        == 0
    )
    return str(tmp_path / "tpl" / "pipeline.py")


@pytest.mark.parametrize("engine, name", [("airflow", "dag.py"), ("kubeflow", "spec.yaml")])
@pytest.mark.parametrize("where", ["a directory", "under a file"])
def test_pipeline_compile_output_problems_exit_2(
    tmp_path, capsys, pipeline_file, engine, name, where
):
    from conveyor.orchestration.cli import main

    if where == "a directory":
        output = tmp_path / name
        output.mkdir()
    else:
        (tmp_path / "plain").write_text("x")
        output = tmp_path / "plain" / name
    capsys.readouterr()
    status = main(
        [
            "pipeline",
            "compile",
            "--pipeline-path",
            pipeline_file,
            "--engine",
            engine,
            "--output",
            str(output),
        ]
    )
    err = capsys.readouterr().err
    assert status == 2, err
    assert str(output) in err and "Traceback" not in err
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        ["tpl", name if where == "a directory" else "plain"]
    )


@pytest.mark.parametrize("engine, name", [("airflow", "dag.py"), ("kubeflow", "spec.yaml")])
def test_pipeline_compile_bare_name_and_rerun(
    tmp_path, monkeypatch, capsys, pipeline_file, engine, name
):
    from conveyor.orchestration.cli import main

    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        assert (
            main(
                [
                    "pipeline",
                    "compile",
                    "--pipeline-path",
                    pipeline_file,
                    "--engine",
                    engine,
                    "--output",
                    name,
                ]
            )
            == 0
        ), capsys.readouterr().err
    assert (tmp_path / name).stat().st_size > 0
    assert not [p for p in tmp_path.iterdir() if ".tmp" in p.name]


def test_template_copy_destination_problems_exit_2(tmp_path, capsys):
    from conveyor.orchestration.cli import main

    (tmp_path / "file").write_text("x")
    for dest in (tmp_path / "file", tmp_path / "file" / "under"):
        assert main(["template", "copy", "--model", "flights", "--destination", str(dest)]) == 2
        err = capsys.readouterr().err
        assert str(dest) in err and "Traceback" not in err
    assert (tmp_path / "file").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["file"]


def test_user_error_keeps_the_users_code_error_and_respects_from_none():
    from conveyor.beam_utils.user_modules import UserCodeError

    try:
        try:
            raise InputError("deep: not the point")
        except InputError as inner:
            raise UserCodeError(
                "run_fn (trainer.py)", "ValueError", "bad", path="trainer.py"
            ) from inner
    except UserCodeError as e:
        assert user_error(e) is e
    try:
        try:
            raise InputError("context: not the point")
        except InputError:
            raise InputError("the report") from None
    except InputError as e:
        assert str(user_error(e)) == "the report"
    try:
        try:
            raise InputError("the original")
        except InputError as inner:
            raise RuntimeError("wrapped by a runner") from inner
    except RuntimeError as e:
        assert str(user_error(e)) == "the original"

"""Tests of components/infra_validator: the serving process, the verdicts, the specs, CLI, node.

The SavedModels are tiny ``tf.Module``s saved here: ``good`` doubles feature
``x`` (``serving_default`` takes serialized examples, ``predict_tensors`` a
float tensor), ``failing`` needs a feature the examples lack, ``sleeping``
sleeps an hour in its signature (a tf.data sleep, so it costs no CPU), and
``broken`` is a folder whose saved_model.pb is not one. Every serving process
a test starts ends within the test (a timeout kills it).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_conveyor_in_process as run_cli

from conveyor.beam_utils.errors import InputError
from conveyor.dsl import PipelineDefinitionError, layout


def example(**features) -> bytes:
    """A serialized tf.Example of float features."""
    import tensorflow as tf

    return tf.train.Example(
        features=tf.train.Features(
            feature={
                k: tf.train.Feature(float_list=tf.train.FloatList(value=[v]))
                for k, v in features.items()
            }
        )
    ).SerializeToString()


def write_examples(root: Path, rows: int = 5) -> Path:
    """An Examples folder: Split-train and Split-eval, gzip TFRecords of examples with feature x."""
    from conveyor.beam_utils import tfrecord_io

    for split in ("train", "eval"):
        folder = root / f"Split-{split}"
        folder.mkdir(parents=True)
        tfrecord_io.write_records(
            str(folder / "data_tfrecord-00000-of-00001.gz"),
            [example(x=float(i)) for i in range(rows)],
        )
    return root


def save_models(root: Path) -> dict[str, Path]:
    """The test models: ``{name: Model artifact folder}`` (SavedModels in Format-Serving)."""
    import tensorflow as tf
    from tensorflow.python.data.experimental.ops import testing as tf_data_testing

    x_spec = {"x": tf.io.FixedLenFeature([1], tf.float32)}
    examples_in = [tf.TensorSpec([None], tf.string, name="examples")]

    class Good(tf.Module):
        @tf.function(input_signature=examples_in)
        def serve(self, examples):
            return {"y": tf.io.parse_example(examples, x_spec)["x"] * 2.0}

        @tf.function(input_signature=[tf.TensorSpec([None, 1], tf.float32, name="x")])
        def tensors(self, x):
            return {"y": x * 2.0}

    class Failing(tf.Module):
        @tf.function(input_signature=examples_in)
        def serve(self, examples):
            spec = {"z": tf.io.FixedLenFeature([1], tf.float32)}  # not in the examples
            return {"y": tf.io.parse_example(examples, spec)["z"]}

    class Sleeping(tf.Module):
        @tf.function(input_signature=examples_in)
        def serve(self, examples):
            nap = tf.data.Dataset.range(1).apply(tf_data_testing.sleep(3600 * 10**6))
            n = nap.reduce(tf.constant(0, tf.int64), lambda a, b: a + b)
            return {"n": tf.fill(tf.shape(examples), n)}

    paths = {}
    for name, module in (("good", Good()), ("failing", Failing()), ("sleeping", Sleeping())):
        signatures = {"serving_default": module.serve}
        if name == "good":
            signatures["predict_tensors"] = module.tensors
        paths[name] = root / name
        tf.saved_model.save(module, str(paths[name] / layout.SERVING_DIR), signatures=signatures)
    broken = root / "broken" / layout.SERVING_DIR
    broken.mkdir(parents=True)
    (broken / "saved_model.pb").write_bytes(b"this is not a SavedModel")
    paths["broken"] = root / "broken"
    return paths


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    return save_models(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="module")
def examples_dir(tmp_path_factory):
    return write_examples(tmp_path_factory.mktemp("examples"))


def run(model, out, **kwargs):
    from conveyor.components.infra_validator import run_infra_validator

    kwargs.setdefault("validation_spec", {"max_loading_time_seconds": 120, "num_tries": 1})
    return run_infra_validator(str(model), str(out), **kwargs)


def marker_text(out: Path) -> tuple[str, str]:
    """The marker the blessing folder holds and its text; asserts there is exactly one."""
    found = [m for m in (layout.INFRA_BLESSED, layout.INFRA_NOT_BLESSED) if (out / m).exists()]
    assert len(found) == 1, os.listdir(out)
    return found[0], (out / found[0]).read_text()


def gone(pid: int, wait: float = 10.0) -> bool:
    deadline = time.time() + wait
    while time.time() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            with open(f"/proc/{pid}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


# --- verdicts --------------------------------------------------------------------


def test_load_only_blesses_a_model_that_loads(models, tmp_path):
    out = tmp_path / "blessing"
    summary = run(models["good"], out)
    assert summary["blessed"] == 1 and summary["mode"] == "LOAD_ONLY"
    assert summary["model"] == str(models["good"] / layout.SERVING_DIR)
    assert summary["num_examples"] == 0 and summary["outputs"] == {}
    assert marker_text(out) == (layout.INFRA_BLESSED, summary["reason"] + "\n")
    assert "LOAD_ONLY" in summary["reason"]
    assert json.loads((out / "infra_validation.json").read_text()) == summary
    assert [t["outcome"] for t in summary["tries"]] == ["passed"]
    assert summary["serving"] == {
        "requested": "local_tensorflow",
        "runtime": "local_tensorflow",
        "model_name": None,
        "note": None,
    }


def test_load_and_query_blesses_a_model_that_answers(models, examples_dir, tmp_path):
    out = tmp_path / "blessing"
    summary = run(
        models["good"],
        out,
        examples=str(examples_dir),
        request_spec={
            "tensorflow_serving": {"signature_names": ["serving_default", "predict_tensors"]},
            "split_name": "train",
            "num_examples": 3,
        },
    )
    assert summary["blessed"] == 1, summary["reason"]
    assert summary["mode"] == "LOAD_AND_QUERY"
    assert (summary["split"], summary["num_examples"]) == ("train", 3)
    assert summary["outputs"] == {
        "serving_default": {"y": {"dtype": "float32", "shape": [1, 1]}},
        "predict_tensors": {"y": {"dtype": "float32", "shape": [1, 1]}},
    }
    assert "answered 3 request(s) of split 'train'" in marker_text(out)[1]


def test_more_examples_asked_than_the_split_has_sends_those_there(models, examples_dir, tmp_path):
    summary = run(
        models["good"],
        tmp_path / "b",
        examples=str(examples_dir),
        request_spec={"num_examples": 50},
    )
    assert summary["blessed"] == 1 and summary["num_examples"] == 5 and summary["split"] == "eval"


def test_a_broken_model_folder_is_not_blessed_and_not_tried_again(models, tmp_path):
    out = tmp_path / "blessing"
    summary = run(
        models["broken"], out, validation_spec={"max_loading_time_seconds": 120, "num_tries": 3}
    )
    assert summary["blessed"] == 0
    assert summary["reason"].startswith("the model failed to load: ")
    assert marker_text(out) == (layout.INFRA_NOT_BLESSED, summary["reason"] + "\n")
    assert [t["outcome"] for t in summary["tries"]] == ["failed"]  # the same again: one try

    empty = tmp_path / "empty"
    empty.mkdir()
    summary = run(empty, tmp_path / "b2")
    assert summary["blessed"] == 0 and "no SavedModel in" in summary["reason"]


def test_a_signature_that_fails_on_the_examples_is_not_blessed(models, examples_dir, tmp_path):
    out = tmp_path / "blessing"
    summary = run(models["failing"], out, examples=str(examples_dir))
    assert summary["blessed"] == 0
    reason = marker_text(out)[1]
    assert reason.startswith("signature 'serving_default' failed on example 1: ")
    assert "InvalidArgumentError: " in reason and "Feature: z " in reason
    assert "\n" not in reason.rstrip("\n")  # one line: TensorFlow's graph locations left out


def test_a_signature_the_model_lacks_is_not_blessed(models, examples_dir, tmp_path):
    summary = run(
        models["good"],
        tmp_path / "b",
        examples=str(examples_dir),
        request_spec={"tensorflow_serving": {"signature_names": ["classify"]}},
    )
    assert summary["blessed"] == 0
    assert summary["reason"] == (
        "the model has no signature 'classify' (it has: predict_tensors, serving_default)"
    )


def test_named_tensor_inputs_need_the_feature_in_the_examples(models, tmp_path):
    from conveyor.beam_utils import tfrecord_io

    other = tmp_path / "other"
    (other / "Split-eval").mkdir(parents=True)
    tfrecord_io.write_records(str(other / "Split-eval" / "data.gz"), [example(w=1.0)])
    summary = run(
        models["good"],
        tmp_path / "b",
        examples=str(other),
        request_spec={"tensorflow_serving": {"signature_names": ["predict_tensors"]}},
    )
    assert summary["blessed"] == 0
    assert "example 1 has no feature 'x', which the signature takes" in summary["reason"]


def test_a_tiny_timeout_is_not_blessed_after_every_try(models, tmp_path):
    began = time.monotonic()
    summary = run(
        models["good"],
        tmp_path / "b",
        validation_spec={"max_loading_time_seconds": 0.2, "num_tries": 2},
    )
    assert time.monotonic() - began < 30
    assert summary["blessed"] == 0
    assert summary["reason"] == (
        "timed out: the model did not load within 0.2 s "
        "(validation_spec.max_loading_time_seconds) (after 2 tries)"
    )
    assert [t["outcome"] for t in summary["tries"]] == ["timeout", "timeout"]


def test_a_model_that_sleeps_times_out_and_its_process_is_killed(models, examples_dir, tmp_path):
    out = tmp_path / "blessing"
    began = time.monotonic()
    summary = run(
        models["sleeping"],
        out,
        examples=str(examples_dir),
        validation_spec={"max_loading_time_seconds": 10, "num_tries": 1},
    )
    assert time.monotonic() - began < 60
    assert summary["blessed"] == 0
    assert summary["reason"].startswith("timed out: ")
    if summary["tries"][0]["loading_seconds"] is not None:  # loaded within 10 s: the usual case
        assert "but the queries did not finish within 10 s" in summary["reason"]
    assert marker_text(out)[0] == layout.INFRA_NOT_BLESSED
    pid = summary["server"]["pid"]
    if pid is not None:
        assert gone(pid), f"serving process {pid} still runs"


#: run_infra_validator of a sleeping model with a long deadline, in a process of its own.
VALIDATE = """
import sys
from conveyor.components.infra_validator import run_infra_validator
run_infra_validator(sys.argv[1], sys.argv[2], examples=sys.argv[3],
                    validation_spec={"max_loading_time_seconds": 600, "num_tries": 1})
"""


def serving_children(parent: int) -> list[int]:
    """The pids of the serving processes (probe.py) ``parent`` started."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{entry}/cmdline", "rb") as f:
                cmdline = f.read()
        except (OSError, IndexError, ValueError):
            continue
        if ppid == parent and b"probe.py" in cmdline:
            found.append(int(entry))
    return found


def test_a_validator_killed_by_sigkill_leaves_no_serving_process(models, examples_dir, tmp_path):
    import signal

    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            VALIDATE,
            str(models["sleeping"]),
            str(tmp_path / "b"),
            str(examples_dir),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    children: list[int] = []
    try:
        deadline = time.time() + 120
        while not children:
            assert proc.poll() is None, f"the validator exited ({proc.returncode})"
            assert time.time() < deadline, "no serving process started"
            time.sleep(0.1)
            children = serving_children(proc.pid)
        time.sleep(1)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        assert gone(children[0], 15), "the serving process outlived its validator"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        for pid in children:
            if not gone(pid, 0.1):
                os.kill(pid, signal.SIGKILL)
    assert not (tmp_path / "b").exists() or not os.listdir(tmp_path / "b")


def test_a_rerun_into_the_same_folder_leaves_one_verdict(models, tmp_path):
    out = tmp_path / "blessing"
    run(models["broken"], out)
    run(models["good"], out)
    assert marker_text(out)[0] == layout.INFRA_BLESSED


def test_bad_inputs_raise(models, examples_dir, tmp_path):
    with pytest.raises(InputError, match="no such model folder"):
        run(tmp_path / "nowhere", tmp_path / "b")
    with pytest.raises(InputError, match="no split 'test'"):
        run(
            models["good"],
            tmp_path / "b",
            examples=str(examples_dir),
            request_spec={"split_name": "test"},
        )
    with pytest.raises(PipelineDefinitionError, match="request_spec: needs examples"):
        run(models["good"], tmp_path / "b", request_spec={"num_examples": 2})
    assert not (tmp_path / "b").exists()


# --- the clean serving process ---------------------------------------------------


def test_the_serving_process_sees_none_of_the_pipelines_path(models, tmp_path, monkeypatch):
    """A module only the pipeline's path has (PYTHONPATH, sys.path, the working directory) is not
    importable there, nor Conveyor (an editable install's .pth); TensorFlow is."""
    from conveyor.components.infra_validator import server

    code = tmp_path / "training_code"
    code.mkdir()
    (code / "pipeline_only_mod.py").write_text("VALUE = 1\n")
    monkeypatch.setenv("PYTHONPATH", str(code))
    monkeypatch.setenv("CONVEYOR_SECRET_SETTING", "x")
    monkeypatch.syspath_prepend(str(code))
    monkeypatch.chdir(code)
    import pipeline_only_mod  # noqa: F401  (the pipeline's process has it)

    work = tmp_path / "work"
    work.mkdir()
    script = work / "check.py"
    script.write_text(
        "import importlib, json, os, sys\n"
        "sys.path.extend(json.loads(sys.argv[1]))\n"
        "found = {}\n"
        "for name in ('pipeline_only_mod', 'conveyor', 'tensorflow'):\n"
        "    try:\n"
        "        importlib.import_module(name)\n"
        "        found[name] = True\n"
        "    except ImportError:\n"
        "        found[name] = False\n"
        "print(json.dumps({'found': found, 'cwd': os.getcwd(), 'env': sorted(os.environ),\n"
        "                  'flags': [sys.flags.isolated, sys.flags.no_site]}))\n"
    )
    argv, env, cwd = server.sandbox(str(work), str(script), json.dumps(server.site_dirs()))
    proc = subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seen = json.loads(proc.stdout.strip().splitlines()[-1])
    assert seen["found"] == {"pipeline_only_mod": False, "conveyor": False, "tensorflow": True}
    assert seen["cwd"] == str(work) and seen["flags"] == [1, 1]
    assert "PYTHONPATH" not in seen["env"] and "CONVEYOR_SECRET_SETTING" not in seen["env"]

    summary = run(models["good"], tmp_path / "b")
    assert summary["blessed"] == 1
    assert str(code) not in summary["server"]["sys_path"]
    assert not any(
        os.path.exists(os.path.join(p, "pipeline_only_mod.py"))
        for p in summary["server"]["sys_path"]
    )
    assert summary["server"]["cwd"] != str(code)
    assert not os.path.exists(summary["server"]["cwd"])  # its temporary folder is removed


# --- the specs -------------------------------------------------------------------


def test_serving_spec_forms_and_the_tensorflow_serving_mapping():
    from google.protobuf import struct_pb2

    from conveyor.components.infra_validator import config

    local = config.Serving("local_tensorflow", "local_tensorflow")
    assert config.serving_spec({"local_tensorflow": {}}) == local
    assert config.serving_spec('{"local_tensorflow": {}}') == local
    message = struct_pb2.Struct()
    message.update({"local_tensorflow": {}, "model_name": "m"})
    assert config.serving_spec(message) == config.Serving(
        "local_tensorflow", "local_tensorflow", "m"
    )

    tfs = config.serving_spec(
        {
            "tensorflow_serving": {"tags": ["latest", "2.16.1"]},
            "local_docker": {},
            "model_name": "m",
        }
    )
    assert (tfs.runtime, tfs.requested, tfs.model_name) == (
        "local_tensorflow",
        "tensorflow_serving",
        "m",
    )
    assert "tensorflow/serving:latest, tensorflow/serving:2.16.1 in Docker" in tfs.note
    assert "local TensorFlow runtime" in tfs.note
    assert config.serving_spec({"tensorflowServing": {"imageName": "my/tfs"}}).note.endswith(
        "of my/tfs"
    )


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ({"kubernetes": {}, "tensorflow_serving": {}}, r"serving_spec\.kubernetes: not supported"),
        ({"local_tensorflow": {}, "tensorflow_serving": {}}, "two binaries; give one"),
        ({}, "names no serving binary"),
        (None, "serving_spec: required"),
        ({"triton": {}}, r"serving_spec\.triton: unknown field"),
        ({"local_tensorflow": {"tags": ["x"]}}, r"serving_spec\.local_tensorflow\.tags: unknown"),
        ({"local_tensorflow": {}, "local_docker": {}}, r"serving_spec\.local_docker: goes with"),
        ({"tensorflow_serving": {"tag": "x"}}, r"serving_spec\.tensorflow_serving\.tag: unknown"),
        ({"tensorflow_serving": {}, "local_docker": {"x": 1}}, r"serving_spec\.local_docker\.x"),
        ("{local_tensorflow", "serving_spec: not JSON"),
        (["local_tensorflow"], "serving_spec: a dict, JSON text or protobuf message, not list"),
    ],
)
def test_unsupported_serving_specs_are_refused_naming_the_field(spec, message):
    from conveyor.components.infra_validator import config

    with pytest.raises(PipelineDefinitionError, match=message):
        config.serving_spec(spec)


def test_validation_and_request_specs():
    from conveyor.components.infra_validator import config

    assert config.validation_spec(None) == config.Validation(300, 5)
    assert config.validation_spec(
        {"maxLoadingTimeSeconds": 10, "num_tries": 0}
    ) == config.Validation(10, 5)
    assert config.request_spec(None) == config.Request(("serve",), ("serving_default",), "eval", 1)
    assert config.request_spec(
        {
            "tensorflow_serving": {"tags": ["serve", "gpu"], "signature_names": ["a"]},
            "split_name": "train",
            "num_examples": "3",
        }
    ) == config.Request(("serve", "gpu"), ("a",), "train", 3)
    for spec, message in (
        ({"max_loading_time_seconds": -1}, r"validation_spec\.max_loading_time_seconds: a number"),
        ({"num_tries": 1.5}, r"validation_spec\.num_tries: an integer"),
        ({"timeout": 3}, r"validation_spec\.timeout: unknown field"),
    ):
        with pytest.raises(PipelineDefinitionError, match=message):
            config.validation_spec(spec)
    for spec, message in (
        ({"make_warmup": True}, r"request_spec\.make_warmup: not supported"),
        (
            {"tensorflow_serving": {"signature": "a"}},
            r"request_spec\.tensorflow_serving\.signature",
        ),
        ({"num_examples": -2}, r"request_spec\.num_examples"),
        ({"kind": 1}, r"request_spec\.kind: unknown field"),
    ):
        with pytest.raises(PipelineDefinitionError, match=message):
            config.request_spec(spec)


def test_the_node_checks_its_specs_when_defined():
    from orchestration_components import CopyModel

    from conveyor.components import InfraValidator

    model = CopyModel(saved_model="m").outputs["model"]
    with pytest.raises(PipelineDefinitionError, match=r"InfraValidator: serving_spec\.kubernetes"):
        InfraValidator(model=model, serving_spec={"tensorflow_serving": {}, "kubernetes": {}})
    with pytest.raises(PipelineDefinitionError, match="missing required parameter 'serving_spec'"):
        InfraValidator(model=model)
    with pytest.raises(PipelineDefinitionError, match="request_spec: needs the examples input"):
        InfraValidator(model=model, serving_spec={"local_tensorflow": {}}, request_spec={})
    node = InfraValidator(model=model, serving_spec='{"local_tensorflow": {}}')
    assert node.parameters["serving_spec"] == {"local_tensorflow": {}}  # plain dicts from JSON


# --- the command line ------------------------------------------------------------


def test_cli_exit_status(models, examples_dir, tmp_path, capsys):
    out = tmp_path / "blessing"
    assert (
        run_cli("infra-validate", "--model", models["good"], "--output", out, "--num-tries", 1) == 0
    )
    assert capsys.readouterr().out.startswith("INFRA_BLESSED: loaded in ")
    assert marker_text(out)[0] == layout.INFRA_BLESSED

    args = ["--examples", examples_dir, "--split", "train", "--num-examples", 2]
    assert run_cli("infra-validate", "--model", models["good"], *args, "--output", out) == 0
    assert json.loads((out / "infra_validation.json").read_text())["num_examples"] == 2
    capsys.readouterr()

    assert run_cli("infra-validate", "--model", models["failing"], *args, "--output", out) == 1
    assert capsys.readouterr().out.startswith("INFRA_NOT_BLESSED: signature 'serving_default'")
    assert marker_text(out)[0] == layout.INFRA_NOT_BLESSED  # the output is complete

    assert run_cli("infra-validate", "--model", tmp_path / "nope", "--output", tmp_path / "o") == 2
    assert "no such model folder" in capsys.readouterr().err
    assert (
        run_cli(
            "infra-validate",
            "--model",
            models["good"],
            "--examples",
            examples_dir,
            "--split",
            "test",
            "--output",
            tmp_path / "o",
        )
        == 2
    )
    assert "no split 'test'" in capsys.readouterr().err
    assert (
        run_cli(
            "infra-validate", "--model", models["good"], "--output", tmp_path / "o", "--timeout", 0
        )
        == 2
    )
    assert (
        run_cli(
            "infra-validate",
            "--model",
            models["good"],
            "--signature",
            "x",
            "--output",
            tmp_path / "o",
        )
        == 2
    )
    assert not (tmp_path / "o").exists()


# --- in a pipeline ---------------------------------------------------------------


def test_infra_validator_and_pusher_in_a_pipeline(models, examples_dir, tmp_path):
    """CopyModel -> InfraValidator (load and query) -> Pusher; a model that fails is not pushed."""
    from orchestration_components import CopyModel
    from test_pusher import CopyExamples

    from conveyor.components import InfraValidator, Pusher
    from conveyor.orchestration import LocalDagRunner, Metadata, Pipeline

    serving = tmp_path / "serving"
    good = CopyModel(saved_model=str(models["good"] / layout.SERVING_DIR))
    bad = CopyModel(id="BadModel", saved_model=str(models["failing"] / layout.SERVING_DIR))
    gen = CopyExamples(source=str(examples_dir))
    request = {"tensorflow_serving": {"signature_names": ["serving_default"]}, "num_examples": 2}
    spec = {"max_loading_time_seconds": 120, "num_tries": 1}
    infra = InfraValidator(
        model=good.outputs["model"],
        examples=gen.outputs["examples"],
        serving_spec={"tensorflow_serving": {"tags": ["latest"]}, "local_docker": {}},
        validation_spec=spec,
        request_spec=request,
    )
    infra_bad = InfraValidator(
        id="InfraBad",
        model=bad.outputs["model"],
        examples=gen.outputs["examples"],
        serving_spec={"local_tensorflow": {}},
        validation_spec=spec,
        request_spec=request,
    )
    destination = {"filesystem": {"base_directory": str(serving / "good")}}
    push = Pusher(
        model=good.outputs["model"],
        infra_blessing=infra.outputs["blessing"],
        push_destination=destination,
    )
    push_bad = Pusher(
        id="PushBad",
        model=bad.outputs["model"],
        infra_blessing=infra_bad.outputs["blessing"],
        push_destination={"filesystem": {"base_directory": str(serving / "bad")}},
    )
    pipeline = Pipeline(
        "infra",
        root=str(tmp_path / "root"),
        components=[good, bad, gen, infra, infra_bad, push, push_bad],
    )
    result = LocalDagRunner(quiet=True).run(pipeline)
    md = Metadata(pipeline.metadata_path)

    def outputs(cid):
        return md.latest_outputs("infra", result["run_id"], cid)

    blessing = outputs("InfraValidator")["blessing"]
    assert blessing.type_name == "InfraBlessing"
    assert int(blessing.properties["blessed"]) == 1
    assert marker_text(Path(blessing.uri))[0] == layout.INFRA_BLESSED
    summary = json.loads((Path(blessing.uri) / "infra_validation.json").read_text())
    assert summary["serving"]["requested"] == "tensorflow_serving"
    assert "tensorflow/serving:latest in Docker" in summary["serving"]["note"]
    bad_blessing = outputs("InfraBad")["blessing"]
    assert int(bad_blessing.properties["blessed"]) == 0
    assert bad_blessing.properties["reason"].startswith("signature 'serving_default' failed")

    pushed = outputs("Pusher")["pushed_model"]
    assert pushed.type_name == "PushedModel"
    assert int(pushed.properties["pushed"]) == 1
    version = pushed.properties["pushed_version"]
    assert pushed.properties["pushed_destination"] == str(serving / "good" / version)
    assert os.listdir(serving / "good") == [version]
    not_pushed = outputs("PushBad")["pushed_model"]
    assert int(not_pushed.properties["pushed"]) == 0
    assert not (serving / "bad").exists()


def test_cli_module_loads_without_tensorflow():
    code = (
        "import sys; import conveyor.components.infra_validator.cli, conveyor.components.pusher.cli; "
        "import conveyor.components.infra_validator as p; p.InfraValidator; "
        "print(sorted(m for m in ('tensorflow', 'apache_beam') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"

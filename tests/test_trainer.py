"""Trainer: the user's run_fn, its FnArgs, and the checks on the model it saves."""

import pytest

from conveyor.beam_utils import arrow, datasets
from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.io import ReadExamples, read_examples_dir
from conveyor.components.example_gen.component import run_example_gen
from conveyor.components.trainer.component import load_run_fn, run_trainer

RUN_FN = """
import tensorflow as tf

FEATURES = ["bill_length_mm", "flipper_length_mm"]


def run_fn(fn_args):
    spec = fn_args.feature_spec()
    ds = fn_args.dataset(fn_args.train_files, 64, num_epochs=1)
    total = 0
    for batch in ds:
        total += int(tf.shape(batch["year"].values)[0])

    class Model(tf.Module):
        @tf.function(input_signature=[tf.TensorSpec([None], tf.string, name="examples")])
        def serve(self, serialized):
            parsed = tf.io.parse_example(serialized, {k: spec[k] for k in FEATURES})
            x = tf.sparse.to_dense(parsed["bill_length_mm"])
            return {"score": tf.reduce_sum(x, axis=1)}

    model = Model()
    tf.saved_model.save(model, fn_args.serving_model_dir, signatures={"serving_default": model.serve})
    return {"rows_seen": total, "epochs": fn_args.custom_config.get("epochs")}
"""


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    out = tmp_path_factory.mktemp("ex") / "examples"
    run_example_gen({None: ReadExamples(datasets.penguins_csv())}, str(out))
    return str(out)


def _reads(examples_dir):
    return {s: read_examples_dir(examples_dir, s) for s in ("train", "eval")}


@pytest.fixture(scope="module")
def schema_path(examples, tmp_path_factory):
    from google.protobuf import text_format

    from conveyor.beam_utils.files import read_summary

    schema = arrow.to_metadata_schema(arrow.make_schema(read_summary(examples)["features"]))
    path = tmp_path_factory.mktemp("schema") / "schema.pbtxt"
    path.write_text(text_format.MessageToString(schema))
    return str(path)


def test_run_fn_trains_and_model_is_checked(tmp_path, examples, schema_path):
    module = tmp_path / "trainer_module.py"
    module.write_text(RUN_FN)
    summary = run_trainer(
        _reads(examples),
        str(tmp_path / "model"),
        str(module),
        model_run_dir=str(tmp_path / "run"),
        schema_path=schema_path,
        custom_config={"epochs": 3},
    )
    assert summary["serving_model_dir"].endswith("model/Format-Serving")
    assert summary["signature"] == "serving_default(examples) -> score"
    assert summary["run_fn_result"]["epochs"] == 3
    assert 150 < summary["run_fn_result"]["rows_seen"] < 344  # the train split only


def test_run_fn_that_saves_nothing_is_an_error(tmp_path, examples, schema_path):
    module = tmp_path / "lazy.py"
    module.write_text("def run_fn(fn_args):\n    return None\n")
    with pytest.raises(InputError, match="run_fn saved no SavedModel in .*Format-Serving"):
        run_trainer(
            _reads(examples),
            str(tmp_path / "model"),
            str(module),
            model_run_dir=str(tmp_path / "run"),
            schema_path=schema_path,
        )


def test_module_file_errors_name_the_file(tmp_path, examples):
    with pytest.raises(InputError, match="nope.py: no such module file"):
        load_run_fn(str(tmp_path / "nope.py"))
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(InputError, match="empty.py: defines no function 'run_fn'"):
        load_run_fn(str(empty))
    ok = tmp_path / "ok.py"
    ok.write_text("def run_fn(fn_args):\n    pass\n")
    with pytest.raises(InputError, match="no split 'test'"):
        run_trainer(
            _reads(examples),
            str(tmp_path / "m"),
            str(ok),
            model_run_dir=str(tmp_path / "r"),
            eval_split="test",
        )


def test_summary_is_written_in_the_run_folder(tmp_path, examples, schema_path):
    import json

    module = tmp_path / "trainer_module.py"
    module.write_text(RUN_FN)
    summary = run_trainer(
        _reads(examples), str(tmp_path / "model"), str(module), schema_path=schema_path
    )
    # Without model_run_dir, the run folder is inside the model folder.
    assert (
        json.loads((tmp_path / "model" / "model_run" / "trainer_summary.json").read_text())
        == summary
    )
    assert summary["run_fn_result"] == {
        "rows_seen": summary["run_fn_result"]["rows_seen"]
    }  # epochs None


# ------------------------------------------------------------------ conveyor train


def _train(*args):
    from conveyor.orchestration.cli import main

    return main(["train", *args])


def test_cli_trains_into_output(tmp_path, examples, schema_path, capsys):
    import json

    module = tmp_path / "trainer_module.py"
    module.write_text(RUN_FN)
    out = tmp_path / "out"
    (out / "old").mkdir(parents=True)  # a previous output is replaced as a whole
    status = _train(
        "--examples",
        examples,
        "--module-file",
        str(module),
        "--output",
        str(out),
        "--schema",
        schema_path,
        "--custom-config",
        '{"epochs": 2}',
    )
    assert status == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["model", "model_run"]
    assert (out / "model" / "Format-Serving" / "saved_model.pb").is_file()
    summary = json.loads((out / "model_run" / "trainer_summary.json").read_text())
    assert summary["signature"] == "serving_default(examples) -> score"
    assert summary["run_fn_result"]["epochs"] == 2
    stdout = capsys.readouterr().out
    assert f"model: {out}/model/Format-Serving  serving_default(examples) -> score" in stdout
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no staging left


@pytest.mark.parametrize("case", ["missing_split", "run_fn_raises", "no_module_file", "bad_config"])
def test_cli_bad_inputs_exit_2_naming_the_file(tmp_path, examples, capsys, case):
    raising = tmp_path / "raising.py"
    raising.write_text("def run_fn(fn_args):\n    raise ValueError('no ' + 'labels')\n")
    args = {
        "missing_split": ["--module-file", str(raising), "--eval-split", "test"],
        "run_fn_raises": ["--module-file", str(raising)],
        "no_module_file": ["--module-file", str(tmp_path / "nope.py")],
        "bad_config": ["--module-file", str(raising), "--custom-config", "[1]"],
    }[case]
    out = tmp_path / "out"
    assert _train("--examples", examples, "--output", str(out), *args) == 2
    err = capsys.readouterr().err
    expected = {
        "missing_split": f"{examples}: no split 'test' (splits: ['eval', 'train'])",
        "run_fn_raises": f"run_fn ({raising}) raised ValueError: no labels [at {raising}:2 in run_fn]",
        "no_module_file": f"{tmp_path / 'nope.py'}: no such module file",
        "bad_config": "--custom-config must be a JSON object",
    }[case]
    assert expected in err and "Traceback" not in err
    assert not out.exists() and [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_cli_refuses_an_output_that_is_a_file_before_training(tmp_path, examples, capsys):
    module = tmp_path / "trainer_module.py"
    module.write_text(
        "raise SystemExit('imported')\n"
    )  # never imported: the output is checked first
    out = tmp_path / "out"
    out.write_text("a file")
    assert _train("--examples", examples, "--module-file", str(module), "--output", str(out)) == 2
    assert f"{out}: exists and is not a directory" in capsys.readouterr().err
    assert out.read_text() == "a file"

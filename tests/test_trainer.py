"""Trainer: the user's run_fn, its FnArgs, and the checks on the model it saves."""

import pytest

from conveyor.beam_utils import arrow, datasets
from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.io import ReadExamples
from conveyor.components.example_gen.component import run_example_gen
from conveyor.components.trainer.component import load_run_fn, run_trainer

RUN_FN = '''
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
'''


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    out = tmp_path_factory.mktemp("ex") / "examples"
    run_example_gen({None: ReadExamples(datasets.penguins_csv())}, str(out))
    return str(out)


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
    summary = run_trainer(str(module), examples, str(tmp_path / "model"), str(tmp_path / "run"),
                          schema_path=schema_path, custom_config={"epochs": 3})
    assert summary["serving_model_dir"].endswith("model/Format-Serving")
    assert summary["signature"] == "serving_default(examples) -> score"
    assert summary["run_fn_result"]["epochs"] == 3
    assert 150 < summary["run_fn_result"]["rows_seen"] < 344  # the train split only


def test_run_fn_that_saves_nothing_is_an_error(tmp_path, examples, schema_path):
    module = tmp_path / "lazy.py"
    module.write_text("def run_fn(fn_args):\n    return None\n")
    with pytest.raises(InputError, match="run_fn saved no SavedModel in .*Format-Serving"):
        run_trainer(str(module), examples, str(tmp_path / "model"), str(tmp_path / "run"),
                    schema_path=schema_path)


def test_module_file_errors_name_the_file(tmp_path, examples):
    with pytest.raises(InputError, match="nope.py: no such module file"):
        load_run_fn(str(tmp_path / "nope.py"))
    empty = tmp_path / "empty.py"
    empty.write_text("X = 1\n")
    with pytest.raises(InputError, match="empty.py: defines no function 'run_fn'"):
        load_run_fn(str(empty))
    ok = tmp_path / "ok.py"
    ok.write_text("def run_fn(fn_args):\n    pass\n")
    with pytest.raises(FileNotFoundError, match="no split 'test'"):
        run_trainer(str(ok), examples, str(tmp_path / "m"), str(tmp_path / "r"), eval_split="test")

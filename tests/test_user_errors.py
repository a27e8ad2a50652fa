"""Errors in the user's code: one clear message that leads with the user's error and line.

A preprocessing_fn, a trainer's run_fn or a pipeline file that does not import,
lacks its function, or raises (while traced, or in a TensorFlow op on the data
while the pipeline runs) is reported as one :class:`UserCodeError` (an
InputError: exit status 2) whose first line says what failed, the error and
``[at FILE:LINE in FUNCTION]``, followed by the user's frames only; a failed
Transform leaves no temporary folder behind.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from conveyor.beam_utils import datasets
from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.user_modules import UserCodeError, import_file

CONVEYOR = [sys.executable, "-m", "conveyor.orchestration.cli"]


def _write(path, text: str) -> str:
    path.write_text(textwrap.dedent(text).lstrip("\n"))
    return str(path)


def _line_of(path: str, text: str) -> int:
    """The 1-based line of ``path`` that contains ``text``."""
    with open(path) as f:
        return next(i for i, line in enumerate(f, 1) if text in line)


@pytest.fixture(scope="module")
def examples(tmp_path_factory):
    from conveyor.beam_utils.io import ReadExamples
    from conveyor.components.example_gen import run_example_gen

    out = str(tmp_path_factory.mktemp("examples") / "examples")
    run_example_gen(
        {None: ReadExamples(datasets.penguins_csv())}, out, splits={"train": 2, "eval": 1}
    )
    return out


def _reads(examples_dir):
    from conveyor.beam_utils.io import read_examples_dir

    return {s: read_examples_dir(examples_dir, s) for s in ("train", "eval")}


def _transform_args(examples_dir, module: str, out) -> list[str]:
    """``conveyor transform``'s arguments: ``module``'s preprocessing_fn over the examples to ``out``."""
    return [
        "transform",
        "--examples",
        str(examples_dir),
        "--module-file",
        module,
        "--output",
        str(out),
    ]


def _run_module(module: str, examples_dir, out, **kwargs):
    """Runs Transform with ``module``'s preprocessing_fn on the examples' train and eval splits."""
    from conveyor.components.transform import load_preprocessing_fn, run_transform

    return run_transform(_reads(examples_dir), str(out), load_preprocessing_fn(module), **kwargs)


# ------------------------------------------------------------------ preprocessing_fn: the command line


def test_cli_op_that_fails_on_the_data_is_one_error_at_the_users_line(tmp_path, examples):
    """A TF op of the preprocessing_fn failing while the pipeline runs: exit 2, the user's line, no tmp."""
    work = tmp_path / "work"
    work.mkdir()
    module = _write(
        work / "prep.py",
        """
        import tensorflow as tf


        def preprocessing_fn(inputs):
            mass = tf.sparse.to_dense(inputs["body_mass_g"])
            return {"mass": tf.reshape(mass, [-1, 7, 3])}
        """,
    )
    out = tmp_path / "out"
    proc = subprocess.run(
        [*CONVEYOR, *_transform_args(examples, module, out)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 2, proc.stderr[-3000:]
    err = proc.stderr
    line = _line_of(module, "tf.reshape")
    [first] = [x for x in err.splitlines() if x.startswith("conveyor transform: error:")]
    assert "InvalidArgumentError: Input to reshape is a tensor with" in first
    assert first.endswith(f"[at {module}:{line} in preprocessing_fn]"), first
    assert (
        f'  File "{module}", line {line}, in preprocessing_fn\n'
        '    return {"mass": tf.reshape(mass, [-1, 7, 3])}' in err
    )
    assert "Traceback" not in err and "apache_beam" not in err and "site-packages" not in err
    assert "Exception ignored" not in err  # tf.Transform's loaded graph freed before exit
    assert err.count("Input to reshape") == 1, err[-3000:]
    # Nothing left behind: no output folder, no .transform_tmp, no staging folder.
    assert not out.exists()
    assert sorted(os.listdir(tmp_path)) == ["work"]
    assert sorted(os.listdir(work)) == ["prep.py"]


def test_cli_module_that_does_not_load_exits_2_naming_file_and_line(tmp_path, examples, capsys):
    from conveyor.orchestration.cli import main

    broken = _write(
        tmp_path / "broken.py",
        """
        import tensorflow as tf

        def preprocessing_fn(inputs)
            return inputs
        """,
    )
    missing = _write(
        tmp_path / "needs.py",
        """
        import no_such_module_for_conveyor_tests

        def preprocessing_fn(inputs):
            return inputs
        """,
    )
    lacking = _write(tmp_path / "lacking.py", "def prep(inputs):\n    return inputs\n")
    for module in (broken, missing, lacking):
        rc = main(_transform_args(examples, module, tmp_path / "out"))
        assert rc == 2
    err = capsys.readouterr().err
    assert (
        f"conveyor transform: error: {broken} does not compile: SyntaxError: expected ':' "
        f"[at {broken}:3 in <module>]\n"
        f'  File "{broken}", line 3, in <module>\n    def preprocessing_fn(inputs)\n'
    ) in err
    assert (
        f"conveyor transform: error: {missing} raised on import: ModuleNotFoundError: "
        f"No module named 'no_such_module_for_conveyor_tests' [at {missing}:1 in <module>]"
    ) in err
    assert (
        f"conveyor transform: error: {lacking}: defines no function 'preprocessing_fn' (it defines: prep)"
        in err
    )
    assert "Traceback" not in err
    assert not (tmp_path / "out").exists()


# ------------------------------------------------------------------ preprocessing_fn: in the library


def test_missing_feature_names_the_users_line(tmp_path, examples):
    from conveyor.components.transform import MissingFeatureError

    module = _write(
        tmp_path / "m.py",
        """
        def preprocessing_fn(inputs):
            outputs = {}
            outputs["x"] = inputs["no_such_feature"]
            return outputs
        """,
    )
    with pytest.raises(MissingFeatureError) as info:
        _run_module(module, examples, tmp_path / "o")
    message = str(info.value)
    assert message.splitlines()[0].startswith(
        "preprocessing_fn needs feature 'no_such_feature', which is not in"
    )
    assert message.splitlines()[0].endswith(f"[at {module}:3 in preprocessing_fn]")
    assert (
        f'File "{module}", line 3, in preprocessing_fn\n    outputs["x"] = inputs["no_such_feature"]'
        in message
    )
    assert "site-packages" not in message


def test_import_errors_are_user_code_errors_with_the_line(tmp_path):
    from conveyor.components.transform import load_preprocessing_fn

    raising = _write(
        tmp_path / "raising.py",
        """
        SETTINGS = {"a": 1}
        B = SETTINGS["b"]

        def preprocessing_fn(inputs):
            return inputs
        """,
    )
    with pytest.raises(UserCodeError) as info:
        load_preprocessing_fn(raising)
    assert isinstance(info.value, InputError)
    assert str(info.value).splitlines() == [
        f"{raising} raised on import: KeyError: 'b' [at {raising}:2 in <module>]",
        f'  File "{raising}", line 2, in <module>',
        '    B = SETTINGS["b"]',
    ]


def test_op_error_in_an_analyzer_input_and_py_function_error(tmp_path, examples):
    """An op feeding an analyzer fails on the data (analysis), and a tf.py_function raises."""
    from conveyor.components.transform import PreprocessingFnError

    analyzer = _write(
        tmp_path / "analyzer.py",
        """
        import tensorflow as tf
        import tensorflow_transform as tft


        def _scaled(x):
            return tft.scale_to_z_score(tf.reshape(x, [-1, 7]))


        def preprocessing_fn(inputs):
            mass = tf.cast(tf.sparse.to_dense(inputs["body_mass_g"]), tf.float32)
            return {"x": _scaled(mass)}
        """,
    )
    with pytest.raises(PreprocessingFnError) as info:
        _run_module(analyzer, examples, tmp_path / "o1")
    lines = str(info.value).splitlines()
    assert lines[0].startswith(
        f"preprocessing_fn ({analyzer}) failed on the examples of Split-train: "
        "InvalidArgumentError: Input to reshape is a tensor with "
    )
    assert lines[0].endswith(f"[at {analyzer}:6 in _scaled]")
    assert lines[1:] == [
        f'  File "{analyzer}", line 11, in preprocessing_fn',
        '    return {"x": _scaled(mass)}',
        f'  File "{analyzer}", line 6, in _scaled',
        "    return tft.scale_to_z_score(tf.reshape(x, [-1, 7]))",
    ]
    assert not (tmp_path / "o1").exists()

    py = _write(
        tmp_path / "py.py",
        """
        import tensorflow as tf


        def _check(x):
            if x.shape[0] > 10:
                raise ValueError(f"too many rows: {x.shape[0]}")
            return x


        def preprocessing_fn(inputs):
            mass = tf.sparse.to_dense(inputs["body_mass_g"])[:, 0]
            checked = tf.py_function(_check, [mass], tf.int64)
            checked.set_shape([None])
            return {"x": checked}
        """,
    )
    with pytest.raises(PreprocessingFnError) as info:
        _run_module(py, examples, tmp_path / "o2")
    lines = str(info.value).splitlines()
    assert lines[0].startswith(f"preprocessing_fn ({py}) failed on the examples of Split-")
    assert ": ValueError: too many rows: " in lines[0] and lines[0].endswith(
        f"[at {py}:6 in _check]"
    )
    assert f'  File "{py}", line 12, in preprocessing_fn' in lines
    assert '    raise ValueError(f"too many rows: {x.shape[0]}")' in lines
    assert "script_ops" not in str(info.value)
    assert not (tmp_path / "o2").exists()


def test_op_error_in_a_worker_process_names_the_users_line(tmp_path, examples):
    """Workers in other processes hand back only the text of the error; it still leads to the line."""
    from conveyor.components.transform import PreprocessingFnError

    module = _write(
        tmp_path / "prep.py",
        """
        import tensorflow as tf


        def preprocessing_fn(inputs):
            mass = tf.sparse.to_dense(inputs["body_mass_g"])
            return {"mass": tf.reshape(mass, [-1, 7, 3])}
        """,
    )
    with pytest.raises(PreprocessingFnError) as info:
        _run_module(
            module,
            examples,
            tmp_path / "o",
            beam_args=["--direct_running_mode=multi_processing", "--direct_num_workers=2"],
        )
    lines = str(info.value).splitlines()
    assert lines[0].startswith(f"preprocessing_fn ({module}) failed on the examples of Split-")
    assert ": InvalidArgumentError: Input to reshape is a tensor with " in lines[0]
    assert lines[0].endswith(f"[at {module}:6 in preprocessing_fn]")
    assert lines[1:] == [
        f'  File "{module}", line 6, in preprocessing_fn',
        '    return {"mass": tf.reshape(mass, [-1, 7, 3])}',
    ]
    assert not (tmp_path / "o").exists()


def test_output_without_a_known_shape_is_refused_at_its_line(tmp_path, examples):
    from conveyor.components.transform import PreprocessingFnError

    module = _write(
        tmp_path / "shape.py",
        """
        import tensorflow as tf


        def preprocessing_fn(inputs):
            return {"mass": tf.sparse.to_dense(inputs["body_mass_g"])}
        """,
    )
    with pytest.raises(PreprocessingFnError) as info:
        _run_module(module, examples, tmp_path / "o")
    assert str(info.value).splitlines()[0] == (
        f"preprocessing_fn ({module}) returns 'mass' of shape (None, None): every dimension but the "
        "first (the batch) must be known (tf.reshape it, or return a tf.SparseTensor) "
        f"[at {module}:5 in preprocessing_fn]"
    )


# ------------------------------------------------------------------ run_fn and pipeline files


def test_run_fn_errors_show_the_users_lines(tmp_path):
    from conveyor.beam_utils.io import ReadExamples, read_examples_dir
    from conveyor.components.example_gen import run_example_gen
    from conveyor.components.trainer.component import load_run_fn, run_trainer

    examples_dir = str(tmp_path / "examples")
    run_example_gen({None: ReadExamples(datasets.penguins_csv())}, examples_dir)
    examples = {s: read_examples_dir(examples_dir, s) for s in ("train", "eval")}
    _write(
        tmp_path / "helpers.py",
        """
        def rate(steps):
            return 100 / steps
        """,
    )
    module = _write(
        tmp_path / "trainer.py",
        """
        import helpers


        def run_fn(fn_args):
            steps = fn_args.custom_config.get("steps", 0)
            return helpers.rate(steps)
        """,
    )
    with pytest.raises(UserCodeError) as info:
        run_trainer(examples, str(tmp_path / "model"), module, model_run_dir=str(tmp_path / "run"))
    helpers = str(tmp_path / "helpers.py")
    assert str(info.value).splitlines() == [
        f"run_fn ({module}) raised ZeroDivisionError: division by zero [at {helpers}:2 in rate]",
        f'  File "{module}", line 6, in run_fn',
        "    return helpers.rate(steps)",
        f'  File "{helpers}", line 2, in rate',
        "    return 100 / steps",
    ]
    assert isinstance(info.value.__cause__, ZeroDivisionError)  # the whole story stays chained

    tf_error = _write(
        tmp_path / "tf_trainer.py",
        """
        import tensorflow as tf


        def run_fn(fn_args):
            return tf.reshape(tf.constant([1, 2, 3]), [2])
        """,
    )
    with pytest.raises(UserCodeError) as info:
        run_trainer(
            examples, str(tmp_path / "model2"), tf_error, model_run_dir=str(tmp_path / "run2")
        )
    first = str(info.value).splitlines()[0]
    assert first.startswith(f"run_fn ({tf_error}) raised InvalidArgumentError: ")
    assert first.endswith(f"[at {tf_error}:5 in run_fn]")

    broken = _write(tmp_path / "broken_trainer.py", "def run_fn(fn_args)\n    pass\n")
    with pytest.raises(
        UserCodeError, match=r"broken_trainer\.py does not compile: SyntaxError: expected ':'"
    ):
        load_run_fn(broken)
    not_fn = _write(tmp_path / "not_fn.py", "run_fn = 3\n")
    with pytest.raises(InputError, match=r"not_fn\.py: 'run_fn' is a int, not a function"):
        load_run_fn(not_fn)


def test_trainer_node_failure_leads_with_the_users_error(tmp_path):
    from orchestration_components import CsvExamples

    from conveyor.components import Trainer
    from conveyor.orchestration import LocalDagRunner, Pipeline
    from conveyor.orchestration.local_runner import PipelineRunError

    module = _write(
        tmp_path / "trainer.py",
        """
        def run_fn(fn_args):
            return fn_args.custom_config["learning_rate"] * 2
        """,
    )
    gen = CsvExamples(csv=datasets.penguins_csv())
    trainer = Trainer(module_file=module, examples=gen.outputs["examples"])
    pipeline = Pipeline("bad_trainer", root=str(tmp_path / "root"), components=[gen, trainer])
    with pytest.raises(PipelineRunError) as info:
        LocalDagRunner(quiet=True, in_process=True).run(pipeline)
    message = str(info.value)
    assert message.startswith("Trainer failed: ")
    assert (
        f"run_fn ({module}) raised KeyError: 'learning_rate' [at {module}:2 in run_fn]"
        in message.splitlines()[0]
    )
    assert f'  File "{module}", line 2, in run_fn' in message


def test_pipeline_file_that_does_not_import_names_file_and_line(tmp_path):
    from conveyor.orchestration.loader import load_pipeline

    path = _write(
        tmp_path / "pipeline.py",
        """
        from conveyor.components import ExampleGen

        gen = ExampleGen(input_base=INPUT)
        """,
    )
    with pytest.raises(UserCodeError) as info:
        load_pipeline(path)
    assert str(info.value).splitlines()[0] == (
        f"{path} raised on import: NameError: name 'INPUT' is not defined [at {path}:3 in <module>]"
    )
    assert (
        "conveyor_pipeline_pipeline" not in sys.modules
    )  # a module that failed is not left behind
    with pytest.raises(UserCodeError):
        import_file(path, "conveyor_test_")

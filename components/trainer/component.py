"""Running a user's ``run_fn`` and checking the SavedModel it leaves."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.user_modules import import_file, user_code_error
from conveyor.components.trainer.fn_args import make_fn_args, split_files
from conveyor.components.trainer.keras_backend import install_keras_tuner_hook
from conveyor.dsl.layout import EVAL_MODEL_DIR, SERVING_DIR

if TYPE_CHECKING:
    from conveyor.beam_utils.io import ReadExamples

#: The summary :func:`run_trainer` writes in the model run folder.
SUMMARY_FILE = "trainer_summary.json"
#: The run folder inside the model folder when none is given.
MODEL_RUN_DIR = "model_run"


def load_run_fn(module_file: str, name: str = "run_fn"):
    """The ``run_fn`` of a module file.

    Raises:
      InputError: naming the file, when it does not exist or defines no ``name``.
      UserCodeError: (an InputError) when it does not compile or raises on import,
        with the line.
    """
    if not os.path.isfile(module_file):
        raise InputError(f"{module_file}: no such module file")
    install_keras_tuner_hook()  # KerasTuner on the Keras the module file uses
    module = import_file(module_file, "conveyor_user_trainer_")
    fn = getattr(module, name, None)
    if fn is None:
        raise InputError(f"{module_file}: defines no function {name!r}")
    if not callable(fn):
        raise InputError(f"{module_file}: {name!r} is a {type(fn).__name__}, not a function")
    return fn


def check_serving_model(path: str) -> str:
    """Checks ``path`` holds a SavedModel with a serving_default that takes serialized examples."""
    if not os.path.isfile(os.path.join(path, "saved_model.pb")):
        raise InputError(f"run_fn saved no SavedModel in {path} (expected saved_model.pb there)")
    from conveyor.components.inference import read_signature

    sig = read_signature(path, "serving_default")
    return f"serving_default({', '.join(sig.inputs)}) -> {', '.join(sig.outputs)}"


def check_base_model(path: str) -> None:
    """Checks the base model folder ``path`` holds a SavedModel (local or on a Beam filesystem).

    Raises:
      InputError: naming ``base_model`` and the folder, when it has no
        ``saved_model.pb`` (or ``saved_model.pbtxt``).
    """
    from apache_beam.io.filesystems import FileSystems

    if not any(
        FileSystems.exists(FileSystems.join(path, name))
        for name in ("saved_model.pb", "saved_model.pbtxt")
    ):
        raise InputError(
            f"base_model {path}: no SavedModel there (expected saved_model.pb in the folder)"
        )


def run_trainer(
    examples: Mapping[str, ReadExamples],
    model_dir: str,
    module_file: str,
    *,
    model_run_dir: str | None = None,
    transform_graph_dir: str | None = None,
    schema_path: str | None = None,
    train_split: str | Sequence[str] = "train",
    eval_split: str | Sequence[str] = "eval",
    train_steps: int | None = None,
    eval_steps: int | None = None,
    custom_config: dict | None = None,
    run_fn_name: str = "run_fn",
    base_model: str | None = None,
    hyperparameters: dict | None = None,
) -> dict:
    """Runs ``run_fn(FnArgs)`` from ``module_file`` and checks the model; returns a summary.

    ``run_fn`` gets TFX's :class:`~conveyor.components.trainer.FnArgs`: the file
    patterns of the ``train_split`` split(s) and ``eval_split`` split(s) of
    ``examples`` (a name or a list of names, TFX's ``train_args.splits``; gzip
    TFRecords of ``tf.Example``, as
    :func:`~conveyor.beam_utils.io.read_examples_dir` reads an Examples
    directory), a ``data_accessor`` over them, ``hyperparameters`` (a
    ``keras_tuner.HyperParameters`` config), a scratch ``working_dir`` (removed
    after) and ``eval_model_dir`` (``<model_dir>/Format-TFMA``). It saves a
    SavedModel in ``<model_dir>/Format-Serving`` (TFX's layout); logs and
    checkpoints go to ``model_run_dir`` (default ``<model_dir>/model_run``), and
    so does the summary (``trainer_summary.json``): ``{"serving_model_dir",
    "signature", "run_fn_result"}`` (the last when ``run_fn`` returns a dict: its
    numbers and strings), plus ``"base_model"`` and ``"hyperparameters"`` when
    given. ``base_model`` is a SavedModel folder to start from
    (``fn_args.base_model``, TFX's warm start); the Trainer node passes its
    ``base_model`` input's ``Format-Serving`` folder.

    Training is the user's TensorFlow code, not a Beam pipeline, so there are no
    ``beam_args``.

    Raises:
      InputError: a split is not in ``examples``; the module file does not exist
        or lacks ``run_fn_name``; ``base_model`` holds no SavedModel; ``run_fn``
        saved no usable SavedModel.
      UserCodeError: (an InputError) the module does not import, or ``run_fn``
        raised: the message is the user's error, with the lines of the module it
        came from.

    Example::

        reads = {s: read_examples_dir("out/examples", s) for s in ("train", "eval")}
        summary = run_trainer(reads, "out/model", "trainer_module.py", schema_path="schema.pbtxt")
    """
    train_splits = [train_split] if isinstance(train_split, str) else list(train_split)
    eval_splits = [eval_split] if isinstance(eval_split, str) else list(eval_split)
    split_files(examples, [*train_splits, *eval_splits])  # a missing split before anything else
    if base_model is not None:
        check_base_model(base_model)
    run_fn = load_run_fn(module_file, run_fn_name)
    serving = os.path.join(model_dir, SERVING_DIR)
    model_run_dir = model_run_dir or os.path.join(model_dir, MODEL_RUN_DIR)
    os.makedirs(model_run_dir, exist_ok=True)
    working_dir = tempfile.mkdtemp(prefix="conveyor-trainer-")
    try:
        args = make_fn_args(
            examples,
            train_splits,
            eval_splits,
            serving_model_dir=serving,
            eval_model_dir=os.path.join(model_dir, EVAL_MODEL_DIR),
            model_run_dir=model_run_dir,
            working_dir=working_dir,
            transform_graph_path=transform_graph_dir,
            schema_path=schema_path,
            train_steps=train_steps,
            eval_steps=eval_steps,
            custom_config=dict(custom_config or {}),
            base_model=base_model,
            hyperparameters=hyperparameters,
        )
        try:
            result = run_fn(args)
        except Exception as e:
            # The user's error and their lines first; the whole traceback stays chained for logs.
            raise user_code_error(e, f"{run_fn_name} ({module_file})", module_file) from e
    finally:
        shutil.rmtree(working_dir, ignore_errors=True)
    signature = check_serving_model(serving)
    summary = {"serving_model_dir": serving, "signature": signature}
    if base_model is not None:
        summary["base_model"] = base_model
    if hyperparameters is not None:
        summary["hyperparameters"] = hyperparameters
    if isinstance(result, dict):
        summary["run_fn_result"] = {
            k: v for k, v in result.items() if isinstance(v, (int, float, str))
        }
    with open(os.path.join(model_run_dir, SUMMARY_FILE), "w") as f:
        json.dump(summary, f, indent=2)
    return summary

"""Running a user's ``run_fn`` and checking the SavedModel it leaves."""

from __future__ import annotations

import os

from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.user_modules import import_file, user_code_error
from conveyor.components.trainer.fn_args import FnArgs, split_files
from conveyor.dsl.layout import SERVING_DIR


def load_run_fn(module_file: str, name: str = "run_fn"):
    """The ``run_fn`` of a module file.

    Raises:
      InputError: naming the file, when it does not exist or defines no ``name``.
      UserCodeError: (an InputError) when it does not compile or raises on import,
        with the line.
    """
    if not os.path.isfile(module_file):
        raise InputError(f"{module_file}: no such module file")
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
    from conveyor.components.inference.model import read_signature

    sig = read_signature(path, "serving_default")
    return f"serving_default({', '.join(sig.inputs)}) -> {', '.join(sig.outputs)}"


def run_trainer(module_file: str, examples_dir: str, model_dir: str, model_run_dir: str,
                transform_graph_dir: str | None = None, schema_path: str | None = None,
                train_split: str = "train", eval_split: str = "eval", train_steps: int | None = None,
                eval_steps: int | None = None, custom_config: dict | None = None,
                run_fn_name: str = "run_fn") -> dict:
    """Runs ``run_fn(FnArgs)`` and checks the model; returns a summary.

    Raises:
      UserCodeError: the module does not import, or ``run_fn`` raised: the
        message is the user's error, with the lines of the module it came from.
      InputError: ``run_fn`` saved no usable SavedModel.
    """
    run_fn = load_run_fn(module_file, run_fn_name)
    serving = os.path.join(model_dir, SERVING_DIR)
    os.makedirs(model_run_dir, exist_ok=True)
    args = FnArgs(
        train_files=split_files(examples_dir, train_split),
        eval_files=split_files(examples_dir, eval_split),
        serving_model_dir=serving,
        model_run_dir=model_run_dir,
        transform_graph_path=transform_graph_dir,
        schema_path=schema_path,
        train_steps=train_steps,
        eval_steps=eval_steps,
        custom_config=dict(custom_config or {}),
    )
    try:
        result = run_fn(args)
    except Exception as e:
        # The user's error and their lines first; the whole traceback stays chained for logs.
        raise user_code_error(e, f"{run_fn_name} ({module_file})", module_file) from e
    signature = check_serving_model(serving)
    summary = {"serving_model_dir": serving, "signature": signature}
    if isinstance(result, dict):
        summary["run_fn_result"] = {k: v for k, v in result.items() if isinstance(v, (int, float, str))}
    return summary

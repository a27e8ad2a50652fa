"""Running a user's ``run_fn`` and checking the SavedModel it leaves."""

from __future__ import annotations

import os

from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.user_modules import import_file
from conveyor.components.trainer.fn_args import FnArgs, split_files

SERVING_DIR = "Format-Serving"


def load_run_fn(module_file: str, name: str = "run_fn"):
    """The ``run_fn`` of a module file; raises :class:`InputError` naming the file."""
    if not os.path.isfile(module_file):
        raise InputError(f"{module_file}: no such module file")
    module = import_file(module_file, "conveyor_user_trainer_")
    fn = getattr(module, name, None)
    if not callable(fn):
        raise InputError(f"{module_file}: defines no function {name!r}")
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
    """Runs ``run_fn(FnArgs)`` and checks the model; returns a summary."""
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
    result = run_fn(args)
    signature = check_serving_model(serving)
    summary = {"serving_model_dir": serving, "signature": signature}
    if isinstance(result, dict):
        summary["run_fn_result"] = {k: v for k, v in result.items() if isinstance(v, (int, float, str))}
    return summary

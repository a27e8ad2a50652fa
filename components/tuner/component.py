"""Running a module file's ``tuner_fn`` and writing the best hyperparameters (TFX's Tuner)."""

from __future__ import annotations

import json
import math
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING

from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.user_modules import user_code_error
from conveyor.components.trainer import load_run_fn, make_fn_args, split_files
from conveyor.dsl.layout import HYPERPARAMETERS_FILE

if TYPE_CHECKING:
    from conveyor.beam_utils.io import ReadExamples

#: The summary :func:`run_tuner` writes in its working folder, when it is given one.
SUMMARY_FILE = "tuner_summary.json"


def _check_result(result, what: str):
    """``(tuner, fit_kwargs)`` of what ``tuner_fn`` returned, or an InputError saying what is wrong."""
    tuner = getattr(result, "tuner", None)
    fit_kwargs = getattr(result, "fit_kwargs", None)
    if tuner is None or fit_kwargs is None:
        raise InputError(
            f"{what} must return a TunerFnResult(tuner=..., fit_kwargs=...), "
            f"not {type(result).__name__}"
        )
    for method in ("search", "get_best_hyperparameters"):
        if not callable(getattr(tuner, method, None)):
            raise InputError(
                f"{what} returned a tuner without {method}(): {type(tuner).__name__} is not a "
                "KerasTuner tuner (keras_tuner.RandomSearch, ...)"
            )
    if not isinstance(fit_kwargs, Mapping):
        raise InputError(
            f"{what} returned fit_kwargs of type {type(fit_kwargs).__name__}: a dict of "
            "tuner.search's arguments (x, validation_data, steps_per_epoch...)"
        )
    return tuner, dict(fit_kwargs)


def _number(value) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _trials(tuner) -> list[dict]:
    """Each trial of a KerasTuner tuner's oracle: id, status, score and hyperparameter values."""
    oracle = getattr(tuner, "oracle", None)
    trials = getattr(oracle, "trials", None) or {}
    out = []
    for trial_id, trial in sorted(trials.items()):
        hp = getattr(trial, "hyperparameters", None)
        out.append(
            {
                "trial_id": str(trial_id),
                "status": str(getattr(trial, "status", "")),
                "score": _number(getattr(trial, "score", None)),
                "hyperparameters": dict(getattr(hp, "values", {}) or {}),
            }
        )
    return out


def _best_score(tuner) -> float | None:
    """The best trial's score, from a KerasTuner tuner's oracle (None for another tuner)."""
    get_best_trials = getattr(getattr(tuner, "oracle", None), "get_best_trials", None)
    if not callable(get_best_trials):
        return None
    trials = get_best_trials(1)
    return _number(getattr(trials[0], "score", None)) if trials else None


def _objective(tuner) -> str | None:
    objective = getattr(getattr(tuner, "oracle", None), "objective", None)
    name = getattr(objective, "name", objective)
    return str(name) if name is not None else None


def run_tuner(
    examples: Mapping[str, ReadExamples],
    output_dir: str,
    module_file: str,
    *,
    tuner_fn_name: str = "tuner_fn",
    working_dir: str | None = None,
    transform_graph_dir: str | None = None,
    schema_path: str | None = None,
    train_split: str | Sequence[str] = "train",
    eval_split: str | Sequence[str] = "eval",
    train_steps: int | None = None,
    eval_steps: int | None = None,
    custom_config: dict | None = None,
    base_model: str | None = None,
) -> dict:
    """Runs ``tuner_fn(FnArgs)`` from ``module_file``, then ``tuner.search(**fit_kwargs)``, and
    writes the best hyperparameters to ``output_dir``; returns a summary.

    ``tuner_fn`` gets TFX's :class:`~conveyor.components.trainer.FnArgs`
    (``train_files`` / ``eval_files`` of the ``train_split`` / ``eval_split``
    split(s), a ``data_accessor``, ``train_steps`` / ``eval_steps``,
    ``transform_graph_path``, ``schema_path``, ``custom_config``,
    ``base_model``, and ``working_dir``, where the tuner keeps its trials) and
    returns a :class:`~conveyor.components.tuner.TunerFnResult`. The best
    trial's ``HyperParameters.get_config()`` is written as JSON to
    ``<output_dir>/best_hyperparameters.txt``, TFX's HyperParameters layout,
    which a Trainer's ``hyperparameters`` input reads into
    ``fn_args.hyperparameters``.

    The summary: ``{"best_hyperparameters": {name: value}, "best_score",
    "objective", "trials": [{"trial_id", "status", "score",
    "hyperparameters"}]}``. With ``working_dir`` given, the tuner's folder is
    kept there and so is the summary (``tuner_summary.json``); without, a
    temporary folder is used and removed, as TFX's Tuner does. Tuning is the
    user's KerasTuner code, not a Beam pipeline: there are no ``beam_args``.

    Raises:
      InputError: a split is not in ``examples``; the module file does not exist or
        lacks ``tuner_fn_name``; it returns no ``TunerFnResult`` of a tuner; no
        trial finished.
      UserCodeError: (an InputError) the module does not import, or ``tuner_fn`` or
        the search raised: the user's error, with the lines of the module.

    Example::

        reads = {s: read_examples_dir("out/transform/transformed_examples", s)
                 for s in ("train", "eval")}
        summary = run_tuner(reads, "out/best_hyperparameters", "penguin_utils.py",
                            transform_graph_dir="out/transform/transform_graph",
                            train_steps=20, eval_steps=5)
        summary["best_hyperparameters"]   # {'units': 16, 'learning_rate': 0.01}
    """
    train_splits = [train_split] if isinstance(train_split, str) else list(train_split)
    eval_splits = [eval_split] if isinstance(eval_split, str) else list(eval_split)
    split_files(examples, [*train_splits, *eval_splits])  # a missing split before anything else
    tuner_fn = load_run_fn(module_file, tuner_fn_name)
    what = f"{tuner_fn_name} ({module_file})"
    keep = working_dir is not None
    if keep:
        os.makedirs(working_dir, exist_ok=True)
    else:
        working_dir = tempfile.mkdtemp(prefix="conveyor-tuner-")
    try:
        fn_args = make_fn_args(
            examples,
            train_splits,
            eval_splits,
            telemetry_descriptors=["Tuner"],
            working_dir=working_dir,
            transform_graph_path=transform_graph_dir,
            schema_path=schema_path,
            train_steps=train_steps,
            eval_steps=eval_steps,
            custom_config=dict(custom_config or {}),
            base_model=base_model,
        )
        try:
            result = tuner_fn(fn_args)
        except Exception as e:
            raise user_code_error(e, what, module_file) from e
        tuner, fit_kwargs = _check_result(result, what)
        try:
            tuner.search(**fit_kwargs)
        except Exception as e:
            raise user_code_error(e, f"tuner.search of {what}", module_file) from e
        best = tuner.get_best_hyperparameters()
        if not best:
            raise InputError(f"{what}: no trial of the search finished, so no best hyperparameters")
        summary = {
            "best_hyperparameters": dict(best[0].values),
            "best_score": _best_score(tuner),
            "objective": _objective(tuner),
            "trials": _trials(tuner),
        }
        os.makedirs(output_dir, exist_ok=True)
        with open(os.path.join(output_dir, HYPERPARAMETERS_FILE), "w") as f:
            json.dump(best[0].get_config(), f)
        if keep:
            with open(os.path.join(working_dir, SUMMARY_FILE), "w") as f:
                json.dump(summary, f, indent=2)
    finally:
        if not keep:
            shutil.rmtree(working_dir, ignore_errors=True)
    return summary

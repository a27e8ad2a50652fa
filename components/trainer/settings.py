"""The settings Trainer and Tuner share: TFX's ``train_args`` / ``eval_args``, the user's function.

TFX gives a Trainer (and a Tuner) ``train_args=TrainArgs(splits=[...], num_steps=N)``
and ``eval_args=EvalArgs(...)``: which splits ``fn_args.train_files`` /
``eval_files`` hold and ``fn_args.train_steps`` / ``eval_steps``. Conveyor's
nodes also take the older ``train_split`` / ``train_steps`` spelling;
:func:`resolve_splits_and_steps` puts the two together. The user's function
is a module file's function, or TFX's Python path (``"my_pkg.model.run_fn"``):
:func:`resolve_user_function`.

Nothing here imports TensorFlow or Beam.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, NamedTuple

from conveyor.beam_utils.user_modules import function_file
from conveyor.dsl import PipelineDefinitionError

__all__ = [
    "SplitArgs",
    "check_user_settings",
    "hyperparameters_config",
    "is_deferred",
    "parse_custom_config",
    "resolve_splits_and_steps",
    "resolve_user_function",
    "split_args",
]


class SplitArgs(NamedTuple):
    """TFX's ``TrainArgs`` / ``EvalArgs`` as Conveyor reads them: the splits and the step count
    (``num_steps``; None when not set or 0, as TFX reads 0)."""

    splits: list[str]
    num_steps: int | None


def _as_mapping(value, argument: str) -> Mapping:
    """``value`` (a dict, a message that is a Mapping, JSON text or a protobuf message) as a Mapping."""
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise PipelineDefinitionError(f"{argument}: not JSON ({e})") from None
    elif hasattr(value, "DESCRIPTOR") and hasattr(value, "ListFields"):  # a protobuf message
        from google.protobuf import json_format

        value = json_format.MessageToDict(value, preserving_proto_field_name=True)
    elif hasattr(value, "to_dict") and not isinstance(value, Mapping):
        value = value.to_dict()
    if not isinstance(value, Mapping):
        raise PipelineDefinitionError(
            f"{argument}: expects {{'splits': [...], 'num_steps': N}} (a dict, JSON text or "
            f"TFX's {argument.title().replace('_', '')} message), not {type(value).__name__}"
        )
    return value


def split_args(value, argument: str = "train_args") -> SplitArgs:
    """TFX's ``TrainArgs`` / ``EvalArgs`` (a dict, JSON text, ``conveyor.tfx.proto`` or protobuf
    message, or None) as :class:`SplitArgs`.

    Raises:
      PipelineDefinitionError: naming ``argument``, for an unknown field, splits that are
        not a list of names, or ``num_steps`` that is not a non-negative whole number.

    Example::

        split_args({"splits": ["train"], "num_steps": 100})   # SplitArgs(['train'], 100)
        split_args('{"num_steps": 0}', "eval_args")             # SplitArgs([], None)
    """
    if value is None:
        return SplitArgs([], None)
    fields = dict(_as_mapping(value, argument))
    unknown = sorted(set(fields) - {"splits", "num_steps"})
    if unknown:
        raise PipelineDefinitionError(
            f"{argument}: unknown field(s) {unknown} (TFX's fields: splits, num_steps)"
        )
    splits = fields.get("splits") or []
    if isinstance(splits, str) or not all(isinstance(s, str) and s for s in splits):
        raise PipelineDefinitionError(
            f"{argument}.splits: a list of split names (['train']), not {splits!r}"
        )
    steps = fields.get("num_steps")
    if isinstance(steps, str) and steps.isdigit():  # protobuf's JSON writes int64 as text
        steps = int(steps)
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 0):
        raise PipelineDefinitionError(
            f"{argument}.num_steps: a whole number of steps >= 0, not {steps!r}"
        )
    return SplitArgs(list(splits), steps or None)


def resolve_splits_and_steps(
    parameters: Mapping[str, Any], kind: str, default_split: str
) -> SplitArgs:
    """The splits and steps of ``kind`` (``"train"`` or ``"eval"``) from a node's parameters:
    ``<kind>_args`` (TFX's) with ``<kind>_split`` / ``<kind>_steps`` (Conveyor's).

    A field set in ``<kind>_args`` wins over the default of the other spelling; set in
    both to different values, it is an error. Without splits, ``default_split``.

    Raises:
      PipelineDefinitionError: the two spellings disagree, or ``<kind>_args`` is malformed.
    """
    args = split_args(parameters.get(f"{kind}_args"), f"{kind}_args")
    split = parameters.get(f"{kind}_split") or default_split
    steps = parameters.get(f"{kind}_steps")
    if args.splits and split != default_split and args.splits != [split]:
        raise PipelineDefinitionError(
            f"{kind}_args.splits {args.splits} and {kind}_split {split!r} disagree: give one"
        )
    if args.num_steps is not None and steps is not None and args.num_steps != steps:
        raise PipelineDefinitionError(
            f"{kind}_args.num_steps {args.num_steps} and {kind}_steps {steps} disagree: give one"
        )
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise PipelineDefinitionError(f"{kind}_steps: a positive whole number, not {steps!r}")
    return SplitArgs(args.splits or [split], args.num_steps or steps)


def resolve_user_function(
    component: str, module_file: str | None, function: str, argument: str
) -> tuple[str, str]:
    """``(module file, function name)`` from a node's ``module_file`` and ``function`` setting.

    With a module file, ``function`` is the name of its function (``"run_fn"``).
    Without one, ``function`` is TFX's Python path to the function
    (``"my_pkg.model.run_fn"``), found where the pipeline is defined.

    Raises:
      PipelineDefinitionError: naming the component and ``argument``, when neither is given
        or the path's module cannot be found as a Python source file.
    """
    if module_file:
        if not isinstance(module_file, str):
            raise PipelineDefinitionError(
                f"{component}: module_file is a path, not {type(module_file).__name__}"
            )
        return module_file, function
    if not isinstance(function, str) or "." not in function.strip("."):
        raise PipelineDefinitionError(
            f"{component}: give module_file, or {argument} as a Python path to the function "
            f"('my_module.{argument}'), not {function!r}"
        )
    try:
        return function_file(function)
    except (ImportError, ValueError) as e:
        raise PipelineDefinitionError(f"{component}: {argument}: {e}") from None


def is_deferred(value) -> bool:
    """Whether ``value`` is known only when the pipeline runs: a RuntimeParameter or another
    component's output (``.future()[0].value``), or a dict or list holding one."""
    from conveyor.dsl import RuntimeParameter
    from conveyor.dsl.placeholders import Placeholder

    if isinstance(value, (RuntimeParameter, Placeholder)):
        return True
    if isinstance(value, Mapping) and not isinstance(value, (str, bytes)):
        return any(is_deferred(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return any(is_deferred(v) for v in value)
    return False


def _is_config(value: Mapping) -> bool:
    """Whether a dict is a ``keras_tuner.HyperParameters`` config (``{"space": [...], "values": {...}}``)."""
    return set(value) >= {"space", "values"} and isinstance(value.get("values"), Mapping)


def hyperparameters_config(value, argument: str = "hyperparameters") -> dict:
    """``value`` as a ``keras_tuner.HyperParameters`` config (what ``fn_args.hyperparameters``
    holds): a config dict (``HyperParameters.get_config()``, as a Tuner writes it) as it is; a
    ``keras_tuner.HyperParameters``; JSON text of either; or plain values (``{"units": 8}``),
    each made a ``Fixed`` hyperparameter.

    Raises:
      PipelineDefinitionError: naming ``argument``, for anything else, or a plain value that
        is not an int, float, str or bool.

    Example::

        config = hyperparameters_config({"learning_rate": 0.01})
        keras_tuner.HyperParameters.from_config(config).get("learning_rate")   # 0.01
    """
    if hasattr(value, "get_config") and hasattr(value, "values"):
        return value.get_config()
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value)
        except ValueError as e:
            raise PipelineDefinitionError(f"{argument}: not JSON ({e})") from None
    if not isinstance(value, Mapping):
        raise PipelineDefinitionError(
            f"{argument}: a Tuner's best_hyperparameters channel, a keras_tuner.HyperParameters, "
            f"its config or a dict of values, not {type(value).__name__}"
        )
    if _is_config(value):
        return json.loads(json.dumps(value))
    for name, v in value.items():
        if not isinstance(v, (int, float, str, bool)):
            raise PipelineDefinitionError(
                f"{argument}[{name!r}]: a fixed hyperparameter is an int, float, str or bool, "
                f"not {type(v).__name__}"
            )
    import keras_tuner

    hp = keras_tuner.HyperParameters()
    for name, v in value.items():
        hp.Fixed(str(name), v)
    return hp.get_config()


def parse_custom_config(value, argument: str = "custom_config") -> dict:
    """``custom_config`` (a dict, JSON text of an object, or None) as a dict.

    Raises:
      PipelineDefinitionError: naming ``argument``, when it is not a JSON object.
    """
    if value is None:
        return {}
    if isinstance(value, (str, bytes)):
        try:
            value = json.loads(value) if value.strip() else {}
        except ValueError as e:
            raise PipelineDefinitionError(f"{argument} is not JSON: {e}") from None
    if not isinstance(value, Mapping):
        raise PipelineDefinitionError(
            f"{argument} must be a dict (a JSON object), not {type(value).__name__}"
        )
    return dict(value)


def check_user_settings(node, function_argument: str) -> None:
    """Checks (and puts in their plain form) the settings Trainer and Tuner share, when the
    pipeline is defined: the user's function (a module file's, or TFX's Python path, which
    becomes the module file so its contents count for the cache), ``train_args`` /
    ``eval_args`` (a plain dict) against ``train_split`` / ``train_steps``..., and
    ``custom_config``. A setting read when the pipeline runs is checked then.

    Raises:
      PipelineDefinitionError: naming the node and the setting.
    """
    p = node.parameters
    function = p[function_argument]
    if not is_deferred(p["module_file"]) and not is_deferred(function):
        p["module_file"], p[function_argument] = resolve_user_function(
            node.id, p["module_file"], function, function_argument
        )
    for kind in ("train", "eval"):
        key = f"{kind}_args"
        if p[key] is not None and not is_deferred(p[key]):
            args = split_args(p[key], f"{node.id}: {key}")
            p[key] = {
                **({"splits": args.splits} if args.splits else {}),
                **({"num_steps": args.num_steps} if args.num_steps else {}),
            }
        if not any(is_deferred(p[k]) for k in (key, f"{kind}_split", f"{kind}_steps")):
            try:
                resolve_splits_and_steps(p, kind, kind)
            except PipelineDefinitionError as e:
                raise PipelineDefinitionError(f"{node.id}: {e}") from None
    if p["custom_config"] is not None and not is_deferred(p["custom_config"]):
        parse_custom_config(p["custom_config"], f"{node.id}: custom_config")

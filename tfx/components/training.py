"""TFX's Transform, Trainer and Tuner on Conveyor's nodes.

TFX names the user's function either by a module file (``module_file``, whose
``preprocessing_fn`` / ``run_fn`` / ``tuner_fn`` is used) or by a Python path
(``preprocessing_fn="my_package.features.preprocessing_fn"``); both are taken,
the path being found where the pipeline is defined.

Example::

    from conveyor import tfx

    transform = tfx.components.Transform(examples=example_gen.outputs["examples"],
                                         schema=schema_gen.outputs["schema"],
                                         module_file="penguin_utils.py")
    trainer = tfx.components.Trainer(module_file="penguin_utils.py",
                                     examples=transform.outputs["transformed_examples"],
                                     transform_graph=transform.outputs["transform_graph"],
                                     train_args=tfx.proto.TrainArgs(num_steps=100),
                                     eval_args=tfx.proto.EvalArgs(num_steps=5))
"""

from __future__ import annotations

from conveyor.components import Trainer as _Trainer
from conveyor.components import Transform as _Transform
from conveyor.dsl import Component
from conveyor.tfx.components._base import (
    TfxComponent,
    drop_none,
    field_of,
    local_path,
    module_and_function,
    refuse,
    single_split,
)
from conveyor.tfx.proto import EvalArgs, SplitsConfig, TrainArgs, TuneArgs

__all__ = ["Trainer", "Transform", "Tuner"]

#: Transform's TFX outputs that Conveyor's Transform does not make.
_NO_TRANSFORM_STATISTICS = "Conveyor's Transform computes no pre- or post-transform statistics"


def user_function(
    component: str, module_file, function, function_argument: str, default_name: str
) -> dict:
    """``{"module_file": ..., <function_argument>: name}``: exactly one of TFX's two ways given."""
    if bool(module_file) == bool(function):
        raise refuse(
            component,
            "module_file",
            f"exactly one of 'module_file' or '{function_argument}' must be supplied",
        )
    if module_file:
        return {"module_file": local_path(module_file), function_argument: default_name}
    path, name = module_and_function(component, function_argument, function)
    return {"module_file": path, function_argument: name}


def _accepts(node: type[Component], component: str, argument: str, value, feature: str) -> dict:
    """``{argument: value}`` if Conveyor's node has that input or parameter; else a refusal."""
    if value is None:
        return {}
    if argument in node.INPUTS or argument in node.PARAMETERS:
        return {argument: value}
    raise refuse(component, argument, f"Conveyor's {component} does not support {feature} yet")


def _steps_and_split(component: str, argument: str, value, kind, conveyor_split: str) -> dict:
    """``train_args`` / ``eval_args`` as Conveyor's split and step count."""
    if value is None:
        return {}
    args = field_of(value, component, argument, kind)
    out = {}
    split = single_split(component, f"{argument}.splits", args.splits, conveyor_split)
    if split is not None:
        out[conveyor_split] = split
    if args.num_steps:
        out[conveyor_split.replace("_split", "_steps")] = int(args.num_steps)
    return out


class Transform(TfxComponent, _Transform):
    """TFX's Transform: tf.Transform analyzes the train split and transforms every split.

    Outputs (TFX's keys): ``transform_graph``, ``transformed_examples``,
    ``updated_analyzer_cache``. Conveyor makes no pre-/post-transform
    statistics (``pre_transform_stats``... are not outputs), whatever
    ``disable_statistics`` says.

    Args, TFX's: ``examples``, ``schema``; exactly one of ``module_file`` (its
    ``preprocessing_fn``) or ``preprocessing_fn`` (a Python path to the
    function); ``splits_config`` (``proto.SplitsConfig``: one ``analyze_splits``
    entry; ``transform_splits``, the splits whose transformed examples are
    written, default every split);
    ``analyzer_cache`` and ``custom_config`` when Conveyor's Transform has them.
    Refused: ``materialize=False``, ``disable_analyzer_cache=True`` (Conveyor
    always reuses its previous analyzer cache), ``force_tf_compat_v1=True``,
    ``stats_options_updater_fn``.

    Example::

        transform = Transform(examples=example_gen.outputs["examples"],
                              schema=schema_gen.outputs["schema"],
                              module_file="penguin_utils.py")
    """

    TFX_OUTPUTS_NOT_MADE = {
        key: _NO_TRANSFORM_STATISTICS
        for key in (
            "pre_transform_schema",
            "pre_transform_stats",
            "post_transform_schema",
            "post_transform_stats",
            "post_transform_anomalies",
        )
    }

    def __init__(
        self,
        examples=None,
        schema=None,
        module_file=None,
        preprocessing_fn=None,
        splits_config=None,
        analyzer_cache=None,
        materialize: bool = True,
        disable_analyzer_cache: bool = False,
        force_tf_compat_v1: bool = False,
        custom_config=None,
        disable_statistics: bool = False,
        stats_options_updater_fn=None,
    ):
        name = "Transform"
        kwargs = user_function(
            name, module_file, preprocessing_fn, "preprocessing_fn", "preprocessing_fn"
        )
        if splits_config is not None:
            config = field_of(splits_config, name, "splits_config", SplitsConfig)
            if config.transform_splits:
                kwargs["transform_splits"] = list(config.transform_splits)
            split = single_split(
                name, "splits_config.analyze_splits", config.analyze_splits, "train_split"
            )
            if split is not None:
                kwargs["train_split"] = split
        if not materialize:
            raise refuse(
                name,
                "materialize",
                "Conveyor's Transform always writes transformed_examples; False is not supported",
            )
        if disable_analyzer_cache:
            raise refuse(
                name,
                "disable_analyzer_cache",
                "Conveyor's Transform always reuses its analyzer cache; True is not supported",
            )
        if force_tf_compat_v1:
            raise refuse(name, "force_tf_compat_v1", "Conveyor runs tf.Transform in TF2 mode only")
        if stats_options_updater_fn is not None:
            raise refuse(name, "stats_options_updater_fn", _NO_TRANSFORM_STATISTICS)
        kwargs.update(
            _accepts(_Transform, name, "analyzer_cache", analyzer_cache, "an analyzer_cache input")
        )
        kwargs.update(_accepts(_Transform, name, "custom_config", custom_config, "custom_config"))
        super().__init__(**drop_none(examples=examples, schema=schema), **kwargs)
        self._tfx_outputs()


class Trainer(TfxComponent, _Trainer):
    """TFX's Trainer: the user's ``run_fn(fn_args)`` trains and saves the model.

    Outputs: ``model`` (the SavedModel in ``Format-Serving``) and ``model_run``.

    Args, TFX's: ``examples`` (or its old name ``transformed_examples``),
    ``transform_graph``, ``schema``, ``base_model``, ``hyperparameters`` (the
    last two when Conveyor's Trainer has them); exactly one of ``module_file``
    (its ``run_fn``) or ``run_fn`` (a Python path to the function);
    ``train_args`` / ``eval_args`` (``proto.TrainArgs`` / ``EvalArgs``: one split
    each, ``num_steps`` as ``fn_args.train_steps`` / ``eval_steps``);
    ``custom_config``. Refused: ``trainer_fn`` (TFX's Estimator trainer) and
    ``custom_executor_spec``.

    Example::

        trainer = Trainer(module_file="penguin_utils.py",
                          examples=transform.outputs["transformed_examples"],
                          transform_graph=transform.outputs["transform_graph"],
                          train_args=proto.TrainArgs(num_steps=100),
                          eval_args=proto.EvalArgs(num_steps=5))
    """

    def __init__(
        self,
        examples=None,
        transformed_examples=None,
        transform_graph=None,
        schema=None,
        base_model=None,
        hyperparameters=None,
        module_file=None,
        run_fn=None,
        trainer_fn=None,
        train_args=None,
        eval_args=None,
        custom_config=None,
        custom_executor_spec=None,
    ):
        name = "Trainer"
        if trainer_fn is not None:
            raise refuse(
                name,
                "trainer_fn",
                "TFX's Estimator-based trainer is not supported: write a run_fn (TFX's generic "
                "trainer) and pass module_file or run_fn",
            )
        if custom_executor_spec is not None:
            raise refuse(name, "custom_executor_spec", "Conveyor runs its own Trainer executor")
        if examples is not None and transformed_examples is not None:
            raise refuse(
                name, "transformed_examples", "give examples or transformed_examples, not both"
            )
        kwargs = user_function(name, module_file, run_fn, "run_fn", "run_fn")
        kwargs.update(_steps_and_split(name, "train_args", train_args, TrainArgs, "train_split"))
        kwargs.update(_steps_and_split(name, "eval_args", eval_args, EvalArgs, "eval_split"))
        kwargs.update(_accepts(_Trainer, name, "base_model", base_model, "a base_model input"))
        kwargs.update(
            _accepts(_Trainer, name, "hyperparameters", hyperparameters, "a hyperparameters input")
        )
        super().__init__(
            **drop_none(
                examples=examples if examples is not None else transformed_examples,
                transform_graph=transform_graph,
                schema=schema,
                custom_config=custom_config,
            ),
            **kwargs,
        )
        self._tfx_outputs()


def _conveyor_tuner() -> type[Component] | None:
    """Conveyor's Tuner node, once there is one."""
    import conveyor.components as components

    try:
        return components.Tuner
    except AttributeError:
        return None


class Tuner(TfxComponent, Component):
    """TFX's Tuner: ``tuner_fn(fn_args) -> TunerFnResult`` searches hyperparameters and writes
    ``best_hyperparameters``, which a Trainer's ``hyperparameters`` input reads.

    TFX's arguments are taken (``examples``, ``schema``, ``transform_graph``,
    ``base_model``, ``module_file`` or ``tuner_fn``, ``train_args``,
    ``eval_args``, ``tune_args``, ``custom_config``); until Conveyor has a Tuner
    node, making one is a definition error that says so.

    Example::

        tuner = Tuner(module_file="penguin_utils.py", examples=transform.outputs["transformed_examples"],
                      transform_graph=transform.outputs["transform_graph"],
                      train_args=proto.TrainArgs(num_steps=20), eval_args=proto.EvalArgs(num_steps=5))
    """

    def __new__(cls, *args, **kwargs):
        node = _conveyor_tuner()
        if node is None:
            raise refuse(
                "Tuner",
                "Tuner",
                "Conveyor has no Tuner component yet (conveyor.components.Tuner); "
                "tune outside the pipeline and give Trainer its hyperparameters",
            )
        return _TunerOnNode.build(node, *args, **kwargs)


class _TunerOnNode:
    """Maps TFX's Tuner arguments onto Conveyor's Tuner node (only what the node declares)."""

    @staticmethod
    def build(
        node: type[Component],
        examples=None,
        schema=None,
        transform_graph=None,
        base_model=None,
        module_file=None,
        tuner_fn=None,
        train_args=None,
        eval_args=None,
        tune_args=None,
        custom_config=None,
    ):
        """Conveyor's Tuner ``node`` made of TFX's Tuner arguments."""
        name = "Tuner"
        kwargs = user_function(name, module_file, tuner_fn, "tuner_fn", "tuner_fn")
        kwargs.update(_steps_and_split(name, "train_args", train_args, TrainArgs, "train_split"))
        kwargs.update(_steps_and_split(name, "eval_args", eval_args, EvalArgs, "eval_split"))
        if tune_args is not None:
            tune = field_of(tune_args, name, "tune_args", TuneArgs)
            if tune.num_parallel_trials > 1:
                raise refuse(
                    name, "tune_args.num_parallel_trials", "trials run one at a time in Conveyor"
                )
        for key, value in (
            ("examples", examples),
            ("schema", schema),
            ("transform_graph", transform_graph),
            ("base_model", base_model),
            ("custom_config", custom_config),
        ):
            kwargs.update(_accepts(node, name, key, value, key))
        for key in list(kwargs):
            if key not in node.INPUTS and key not in node.PARAMETERS:
                raise refuse(name, key, f"Conveyor's Tuner does not support {key} yet")
        return node(**kwargs)

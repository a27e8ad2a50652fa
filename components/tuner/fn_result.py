"""What a module file's ``tuner_fn`` returns: TFX's ``TunerFnResult``."""

from __future__ import annotations

from typing import Any, NamedTuple

__all__ = ["TunerFnResult"]


class TunerFnResult(NamedTuple):
    """The return value of ``tuner_fn(fn_args)`` (TFX's ``TunerFnResult``).

    Attributes:
      tuner: a KerasTuner tuner (``keras_tuner.RandomSearch(...)``, any
        ``keras_tuner.Tuner``): the Tuner component calls its ``search``.
      fit_kwargs: the keyword arguments of ``tuner.search`` (passed on to
        ``model.fit``): ``x``, ``validation_data``, ``steps_per_epoch``,
        ``validation_steps``, ``epochs``...

    Example::

        def tuner_fn(fn_args):
            tuner = keras_tuner.RandomSearch(build_model, objective="val_accuracy",
                                             max_trials=4, directory=fn_args.working_dir,
                                             project_name="penguin")
            return TunerFnResult(tuner=tuner, fit_kwargs={
                "x": train_dataset, "validation_data": eval_dataset,
                "steps_per_epoch": fn_args.train_steps, "validation_steps": fn_args.eval_steps})
    """

    tuner: Any
    fit_kwargs: dict[str, Any]

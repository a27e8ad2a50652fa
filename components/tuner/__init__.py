"""Tuner: runs a module file's ``tuner_fn(fn_args)`` and writes the best hyperparameters.

TFX's Tuner: ``tuner_fn`` gets the same ``FnArgs`` a Trainer's ``run_fn`` gets
(``train_files``, ``data_accessor``, ``transform_graph_path``, ``train_steps``,
``working_dir``...) and returns a ``TunerFnResult(tuner, fit_kwargs)``; the
search runs ``tuner.search(**fit_kwargs)`` and the best trial's
``HyperParameters.get_config()`` becomes ``best_hyperparameters.txt`` in a
HyperParameters artifact, which the Trainer's ``hyperparameters`` input reads
into ``fn_args.hyperparameters``. Tuning is the user's KerasTuner code, not a
Beam pipeline: this folder has no PTransform.

Example::

    from conveyor.beam_utils.io import read_examples_dir
    from conveyor.components.tuner import run_tuner

    reads = {s: read_examples_dir("out/transformed_examples", s) for s in ("train", "eval")}
    summary = run_tuner(reads, "out/best_hyperparameters", "penguin_utils.py",
                        transform_graph_dir="out/transform_graph", train_steps=20)
    print(summary["best_hyperparameters"])   # {'units': 16, 'learning_rate': 0.01}

Names are imported on first use.
"""

from conveyor.beam_utils.lazy import lazy_exports

_EXPORTS = {
    "TUNER_RESULTS_FILE": "node",
    "Tuner": "node",
    "TunerResults": "node",
    "TunerFnResult": "fn_result",
    "run_tuner": "component",
}

__all__ = sorted(_EXPORTS)

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS)

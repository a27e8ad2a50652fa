"""BulkInferrer as a pipeline component: Examples + Model -> an InferenceResult artifact."""

from __future__ import annotations

import json

from conveyor.dsl import Component, InputSpec, PipelineDefinitionError
from conveyor.dsl.layout import NOT_BLESSED, SKIPPED_NOT_BLESSED, is_blessed, serving_model_dir


class BulkInferrer(Component):
    """Runs a trained model's signature over an Examples artifact (TFX's BulkInferrer).

    Writes ``<inference_result>/inference_result/prediction_logs-*.gz``
    (PredictionLogs), ``dead_letters/``, ``inference_summary.json`` and, with
    ``output_examples=True``, ``output_examples/Split-<name>/`` (see
    :func:`~conveyor.components.inference.component.run_bulk_inference`).

    The SavedModel is ``<model>/Format-Serving`` (TFX Trainer's layout) when
    that exists, else the Model artifact's directory itself. Given a
    ``model_blessing`` whose directory holds ``NOT_BLESSED``, it runs nothing and
    writes only ``SKIPPED_NOT_BLESSED``; a blessing with neither ``BLESSED`` nor
    ``NOT_BLESSED`` is an error.

    Parameters: ``signature``; ``splits`` (split names, default all of the
    Examples artifact's); ``batch_size`` (``"MIN:MAX"``, ``"N"``, an int or a
    ``(min, max)`` pair); ``output_examples``; ``input_mode`` (``examples`` or
    ``tensors``, default from the signature); ``prediction_prefix``.

    Example::

        infer = BulkInferrer(
            examples=gen.outputs["examples"],
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
        )
    """

    INPUTS = {
        "examples": InputSpec("Examples"),
        "model": InputSpec("Model"),
        "model_blessing": InputSpec("ModelBlessing", optional=True),
    }
    OUTPUTS = {"inference_result": "InferenceResult"}
    PARAMETERS = {
        "signature": "serving_default",
        "splits": None,
        "batch_size": "256:4096",
        "output_examples": False,
        "input_mode": None,
        "prediction_prefix": "",
    }

    def __init__(self, id: str | None = None, beam_args: list[str] | None = None, **kwargs):
        super().__init__(id=id, beam_args=beam_args, **kwargs)
        try:
            batch_bounds(self.parameters["batch_size"])
            split_names(self.parameters["splits"])
        except ValueError as e:
            raise PipelineDefinitionError(f"{self.id}: {e}") from None
        if self.parameters["input_mode"] not in (None, "examples", "tensors"):
            raise PipelineDefinitionError(
                f"{self.id}: input_mode must be 'examples', 'tensors' or None, "
                f"not {self.parameters['input_mode']!r}"
            )

    def execute(self, ctx):
        from apache_beam.io.filesystems import FileSystems

        from conveyor.beam_utils import files

        p = ctx.parameters
        out = ctx.outputs["inference_result"].uri
        blessing = ctx.inputs.get("model_blessing")
        if blessing is not None and not is_blessed(blessing.uri):
            files.write_text(
                FileSystems.join(out, SKIPPED_NOT_BLESSED),
                f"model not blessed ({FileSystems.join(blessing.uri, NOT_BLESSED)}): "
                "inference skipped\n",
            )
            return {
                "inference_result": {
                    "skipped": NOT_BLESSED,
                    "model_blessing": blessing.uri,
                    "examples_predicted": 0,
                }
            }

        from conveyor.beam_utils.errors import InputError
        from conveyor.beam_utils.io import read_examples_dir
        from conveyor.components.inference.component import run_bulk_inference
        from conveyor.dsl import layout

        examples_uri = ctx.inputs["examples"].uri
        available = layout.examples_splits(examples_uri)
        wanted = split_names(p["splits"])
        if wanted is None:
            wanted = list(available)
        else:
            unknown = [s for s in wanted if s not in available]
            if unknown:
                raise InputError(
                    f"{examples_uri} has no split(s) {', '.join(unknown)} "
                    f"(it has {', '.join(available)})"
                )
        # Each reader takes the feature types ExampleGen recorded (summary.json), if any.
        examples = {s: read_examples_dir(examples_uri, s) for s in wanted}
        model_dir = serving_model_dir(ctx.inputs["model"].uri)
        min_batch, max_batch = batch_bounds(p["batch_size"])
        summary = run_bulk_inference(
            examples,
            model_dir,
            out,
            signature=p["signature"],
            min_batch_size=min_batch,
            max_batch_size=max_batch,
            input_mode=p["input_mode"],
            prediction_prefix=p["prediction_prefix"],
            output_examples=p["output_examples"],
            beam_args=ctx.beam_args,
        )
        return {
            "inference_result": {
                "examples_in": summary["examples_in"],
                "examples_predicted": summary["examples_predicted"],
                "examples_dead_lettered": summary["examples_dead_lettered"],
                "rows_rejected_on_read": summary["rows_rejected_on_read"],
                "splits": json.dumps(summary["splits"]),
                "signature": summary["signature"],
                "model_dir": model_dir,
            }
        }


def batch_bounds(value) -> tuple[int, int]:
    """``"64:1024"``, ``"128"``, ``128`` or ``(64, 1024)`` -> ``(min, max)``; ValueError if bad."""
    if isinstance(value, str):
        lo, sep, hi = value.partition(":")
        try:
            bounds = (int(lo), int(hi) if sep else int(lo))
        except ValueError:
            raise ValueError(f"batch_size must be 'MIN:MAX' or 'N', not {value!r}") from None
    elif isinstance(value, int) and not isinstance(value, bool):
        bounds = (value, value)
    elif (
        isinstance(value, (tuple, list))
        and len(value) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value)
    ):
        bounds = (value[0], value[1])
    else:
        raise ValueError(
            f"batch_size must be 'MIN:MAX', an int or a (min, max) pair, not {value!r}"
        )
    if bounds[0] < 1 or bounds[1] < bounds[0]:
        raise ValueError(f"batch_size needs 1 <= MIN <= MAX, got {value!r}")
    return bounds


def split_names(value) -> list[str] | None:
    """The ``splits`` parameter as a list of names (None: all splits); ValueError if bad."""
    if value is None:
        return None
    if isinstance(value, str):
        value = [s.strip() for s in value.split(",") if s.strip()]
    if (
        not isinstance(value, (list, tuple))
        or not value
        or not all(isinstance(s, str) and s for s in value)
    ):
        raise ValueError(f"splits must be a non-empty list of split names or None, not {value!r}")
    return list(value)

"""TFX's Evaluator, InfraValidator, Pusher and BulkInferrer on Conveyor's nodes.

Example::

    from conveyor import tfx
    import tensorflow_model_analysis as tfma

    evaluator = tfx.components.Evaluator(
        examples=example_gen.outputs["examples"], model=trainer.outputs["model"],
        baseline_model=model_resolver.outputs["model"],
        eval_config=tfma.EvalConfig(model_specs=[tfma.ModelSpec(label_key="species")], ...))
    pusher = tfx.components.Pusher(
        model=trainer.outputs["model"], model_blessing=evaluator.outputs["blessing"],
        push_destination=tfx.proto.PushDestination(
            filesystem=tfx.proto.PushDestination.Filesystem(base_directory="serving")))
"""

from __future__ import annotations

from conveyor.components import BulkInferrer as _BulkInferrer
from conveyor.components import Evaluator as _Evaluator
from conveyor.components import InfraValidator as _InfraValidator
from conveyor.components import Pusher as _Pusher
from conveyor.tfx.components._base import (
    TfxComponent,
    drop_none,
    field_of,
    not_runtime,
    plain,
    refuse,
    single_split,
)
from conveyor.tfx.proto import DataSpec, FeatureSlicingSpec, ModelSpec

__all__ = ["BulkInferrer", "Evaluator", "InfraValidator", "Pusher"]


def _slice_columns(feature_slicing_spec) -> list[str]:
    """TFX's legacy ``feature_slicing_spec`` as Conveyor's ``slice_by`` columns (one each)."""
    spec = field_of(feature_slicing_spec, "Evaluator", "feature_slicing_spec", FeatureSlicingSpec)
    columns = []
    for single in spec.specs:
        names = list(single.column_for_slicing)
        if len(names) > 1:
            raise refuse(
                "Evaluator",
                "feature_slicing_spec",
                f"a slice by several columns {names} is not supported here; give an "
                "eval_config with slicing_specs",
            )
        columns += names  # an empty spec is the overall slice, which is always computed
    return columns


class Evaluator(TfxComponent, _Evaluator):
    """TFX's Evaluator: TFMA metrics of a model on one split, thresholds and the ``blessing``.

    Outputs: ``evaluation``, ``blessing`` (TFX's properties: ``blessed``...).

    Args, TFX's: ``examples``, ``model``, ``baseline_model``, ``eval_config`` (a
    ``tfma.EvalConfig``, also as a dict or JSON), ``example_splits`` (one split;
    default ``eval``), ``feature_slicing_spec`` (single-column slices).
    Refused: ``fairness_indicator_thresholds``, ``schema``, ``module_file`` and
    ``module_path`` (custom TFMA extractors and metrics).

    Example::

        evaluator = Evaluator(examples=example_gen.outputs["examples"],
                              model=trainer.outputs["model"], eval_config=eval_config)
    """

    def __init__(
        self,
        examples=None,
        model=None,
        baseline_model=None,
        feature_slicing_spec=None,
        fairness_indicator_thresholds=None,
        example_splits=None,
        eval_config=None,
        schema=None,
        module_file=None,
        module_path=None,
    ):
        name = "Evaluator"
        if fairness_indicator_thresholds is not None:
            raise refuse(
                name, "fairness_indicator_thresholds", "Fairness Indicators are not supported"
            )
        if schema is not None:
            raise refuse(
                name,
                "schema",
                "Conveyor's Evaluator reads the examples' own feature types; leave schema out",
            )
        for argument, value in (("module_file", module_file), ("module_path", module_path)):
            if value is not None:
                raise refuse(name, argument, "custom TFMA extractors and metrics are not supported")
        kwargs = {}
        if example_splits is not None:
            not_runtime(name, "example_splits", example_splits)
            if isinstance(example_splits, str):
                example_splits = [example_splits]
            split = single_split(name, "example_splits", example_splits, "split")
            if split is not None:
                kwargs["split"] = split
        if feature_slicing_spec is not None:
            kwargs["slice_by"] = _slice_columns(feature_slicing_spec)
        if eval_config is None:
            raise refuse(
                name,
                "eval_config",
                "required: a tfma.EvalConfig (its label key, slices, metrics); TFX's Evaluator "
                "without one reads an Estimator's EvalSavedModel, which Conveyor does not",
            )
        super().__init__(
            **drop_none(
                examples=examples,
                model=model,
                baseline_model=baseline_model,
                eval_config=plain(eval_config),
            ),
            **kwargs,
        )
        self._tfx_outputs()


class InfraValidator(TfxComponent, _InfraValidator):
    """TFX's InfraValidator: the model loaded and queried in a clean serving process -> ``blessing``.

    Args, TFX's: ``model``, ``serving_spec`` (``proto.ServingSpec``: TFX's
    ``tensorflow_serving`` with ``local_docker`` is validated in a local
    TensorFlow process; ``kubernetes`` is refused), ``examples``,
    ``request_spec``, ``validation_spec``.

    Example::

        infra_validator = InfraValidator(
            model=trainer.outputs["model"], examples=example_gen.outputs["examples"],
            serving_spec=proto.ServingSpec(tensorflow_serving=proto.TensorFlowServing(tags=["latest"]),
                                           local_docker=proto.LocalDockerConfig()),
            request_spec=proto.RequestSpec(tensorflow_serving=proto.TensorFlowServingRequestSpec()))
    """

    def __init__(
        self, model=None, serving_spec=None, examples=None, request_spec=None, validation_spec=None
    ):
        if serving_spec is None:
            raise refuse(
                "InfraValidator",
                "serving_spec",
                "required: a proto.ServingSpec (what serves the model, and where)",
            )
        super().__init__(
            **drop_none(
                model=model,
                examples=examples,
                serving_spec=plain(serving_spec),
                request_spec=plain(request_spec),
                validation_spec=plain(validation_spec),
            )
        )
        self._tfx_outputs()


class Pusher(TfxComponent, _Pusher):
    """TFX's Pusher: a blessed model copied to ``<base_directory>/<version>`` -> ``pushed_model``.

    Args, TFX's: ``model``, ``model_blessing``, ``infra_blessing``,
    ``push_destination`` (``proto.PushDestination`` with a ``filesystem``).
    Refused: no ``model`` (TFX then pushes the infra blessing's warmed-up
    model), ``custom_config`` (cloud pushers' settings), ``custom_executor_spec``.

    Example::

        pusher = Pusher(model=trainer.outputs["model"],
                        model_blessing=evaluator.outputs["blessing"],
                        push_destination=proto.PushDestination(
                            filesystem=proto.PushDestination.Filesystem(base_directory="serving")))
    """

    def __init__(
        self,
        model=None,
        model_blessing=None,
        infra_blessing=None,
        push_destination=None,
        custom_config=None,
        custom_executor_spec=None,
    ):
        name = "Pusher"
        if model is None:
            raise refuse(
                name,
                "model",
                "required in Conveyor (pushing the model of an infra_blessing is not supported)",
            )
        if custom_config is not None:
            raise refuse(
                name, "custom_config", "cloud pushers' settings are not supported; use a filesystem"
            )
        if custom_executor_spec is not None:
            raise refuse(name, "custom_executor_spec", "Conveyor runs its own Pusher executor")
        if push_destination is None:
            raise refuse(name, "push_destination", "required: a proto.PushDestination")
        super().__init__(
            **drop_none(
                model=model,
                model_blessing=model_blessing,
                infra_blessing=infra_blessing,
                push_destination=plain(push_destination),
            )
        )
        self._tfx_outputs()


def _signature(model_spec) -> dict:
    """``model_spec`` (``proto.ModelSpec``) as Conveyor's ``signature``; refuses what it lacks."""
    name = "BulkInferrer"
    spec = field_of(model_spec, name, "model_spec", ModelSpec)
    tags = list(spec.tag)
    if tags and tags != ["serve"]:
        raise refuse(name, "model_spec.tag", f"only the 'serve' tag set is loaded, not {tags}")
    signature = single_split(
        name, "model_spec.model_signature_name", spec.model_signature_name, "signature"
    )
    return {"signature": signature} if signature else {}


class BulkInferrer(TfxComponent, _BulkInferrer):
    """TFX's BulkInferrer: a model's signature over the examples -> ``inference_result``
    (PredictionLogs, TFX's layout).

    Args, TFX's: ``examples``, ``model``, ``model_blessing`` (a NOT_BLESSED
    model infers nothing), ``data_spec`` (``proto.DataSpec``: the splits),
    ``model_spec`` (``proto.ModelSpec``: one signature, the ``serve`` tags).
    ``output_example_spec`` is refused: Conveyor's BulkInferrer writes the
    examples with their predictions inside ``inference_result``
    (``conveyor.components.BulkInferrer(output_examples=True)``), not as an
    ``output_examples`` artifact.

    Example::

        bulk_inferrer = BulkInferrer(examples=example_gen.outputs["examples"],
                                     model=trainer.outputs["model"],
                                     data_spec=proto.DataSpec(example_splits=["eval"]))
    """

    TFX_OUTPUTS_NOT_MADE = {
        "output_examples": "the examples with predictions are written inside inference_result "
        "(conveyor.components.BulkInferrer(output_examples=True))"
    }

    def __init__(
        self,
        examples=None,
        model=None,
        model_blessing=None,
        data_spec=None,
        model_spec=None,
        output_example_spec=None,
    ):
        name = "BulkInferrer"
        if model is None:
            raise refuse(name, "model", "required: the model to run")
        if output_example_spec is not None:
            raise refuse(name, "output_example_spec", self.TFX_OUTPUTS_NOT_MADE["output_examples"])
        kwargs = {}
        if data_spec is not None:
            splits = list(field_of(data_spec, name, "data_spec", DataSpec).example_splits)
            if splits:
                kwargs["splits"] = splits
        if model_spec is not None:
            kwargs.update(_signature(model_spec))
        super().__init__(
            **drop_none(examples=examples, model=model, model_blessing=model_blessing), **kwargs
        )
        self._tfx_outputs()

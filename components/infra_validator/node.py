"""InfraValidator as a pipeline component: Model (+ Examples) -> an InfraBlessing artifact."""

from __future__ import annotations

from conveyor.dsl import REQUIRED, Component, InputSpec


class InfraValidator(Component):
    """Checks that a model loads and answers in a clean serving process (TFX's InfraValidator).

    Loads ``<model>/Format-Serving`` (TFX Trainer's layout; else the Model
    folder itself) in a fresh local TensorFlow process that sees none of the
    pipeline's code, and, given ``examples``, sends it ``request_spec``'s
    examples (LOAD_AND_QUERY; LOAD_ONLY without). The ``blessing`` output holds
    ``INFRA_BLESSED`` or ``INFRA_NOT_BLESSED`` (with the reason) and
    ``infra_validation.json``; its properties are ``blessed`` (1 or 0) and
    ``reason``. A model that does not load, a signature that fails, a timeout:
    INFRA_NOT_BLESSED, and the run goes on (a Pusher given this blessing does
    not push).

    Parameters, TFX's (dicts, JSON or ``infra_validator_pb2`` messages):
    ``serving_spec`` (required: ``{"local_tensorflow": {}}``, or TFX's
    ``tensorflow_serving`` spec, validated with the same local runtime),
    ``validation_spec`` (``max_loading_time_seconds``, ``num_tries``),
    ``request_spec`` (``tensorflow_serving``: ``tags``, ``signature_names``;
    ``split_name``, ``num_examples``). See
    :func:`~conveyor.components.infra_validator.component.run_infra_validator`.

    Example::

        infra = InfraValidator(
            model=trainer.outputs["model"],
            examples=gen.outputs["examples"],
            serving_spec={"local_tensorflow": {}},
            request_spec={"tensorflow_serving": {"signature_names": ["serving_default"]},
                          "split_name": "eval", "num_examples": 2},
        )
    """

    INPUTS = {"model": InputSpec("Model"), "examples": InputSpec("Examples", optional=True)}
    OUTPUTS = {"blessing": "InfraBlessing"}
    PARAMETERS = {"serving_spec": REQUIRED, "validation_spec": None, "request_spec": None}

    def __init__(self, id: str | None = None, beam_args: list[str] | None = None, **kwargs):
        from conveyor.components.infra_validator import config
        from conveyor.dsl import PipelineDefinitionError

        super().__init__(id=id, beam_args=beam_args, **kwargs)
        p = self.parameters
        try:
            # Plain dicts from here on: the parameters are recorded, hashed and sent to workers.
            for name in ("serving_spec", "validation_spec", "request_spec"):
                p[name] = config.as_dict(p[name], name)
            config.serving_spec(p["serving_spec"])
            config.validation_spec(p["validation_spec"])
            config.request_spec(p["request_spec"])
            if p["request_spec"] is not None and "examples" not in self.inputs:
                raise PipelineDefinitionError(
                    "request_spec: needs the examples input (without it the model is only loaded)"
                )
        except PipelineDefinitionError as e:
            raise PipelineDefinitionError(f"{self.id}: {e}") from None

    def execute(self, ctx):
        from conveyor.components.infra_validator.component import run_infra_validator

        p = ctx.parameters
        examples = ctx.inputs.get("examples")
        summary = run_infra_validator(
            ctx.inputs["model"].uri,
            ctx.outputs["blessing"].uri,
            examples=examples.uri if examples is not None else None,
            serving_spec=p["serving_spec"],
            validation_spec=p["validation_spec"],
            request_spec=p["request_spec"],
            beam_args=ctx.beam_args,
        )
        return {"blessing": {"blessed": summary["blessed"], "reason": summary["reason"]}}

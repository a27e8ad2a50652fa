"""Pusher as a pipeline component: a blessed Model -> a version folder a server watches."""

from __future__ import annotations

from conveyor.dsl import REQUIRED, Component, InputSpec


class Pusher(Component):
    """Copies a blessed model to TensorFlow Serving's watched layout (TFX's Pusher).

    The SavedModel (``<model>/Format-Serving``, TFX Trainer's layout; else the
    Model folder itself) goes to ``<base_directory>/<version>`` (version: the
    epoch second of the push), copied beside as a hidden folder and renamed, so
    a server never sees part of it. Given a ``model_blessing`` holding
    ``NOT_BLESSED`` or an ``infra_blessing`` holding ``INFRA_NOT_BLESSED``,
    nothing is pushed. The ``pushed_model`` output records ``pushed`` (1 or 0),
    ``pushed_destination`` and ``pushed_version`` (TFX's properties) and holds
    ``push_summary.json``.

    Parameters: ``push_destination``, TFX's ``PushDestination``
    (``{"filesystem": {"base_directory": DIR}}``, as a dict, JSON or a
    ``pusher_pb2`` message). See
    :func:`~conveyor.components.pusher.component.run_pusher`.

    Example::

        pusher = Pusher(
            model=trainer.outputs["model"],
            model_blessing=evaluator.outputs["blessing"],
            infra_blessing=infra_validator.outputs["blessing"],
            push_destination={"filesystem": {"base_directory": "serving/flights"}},
        )
    """

    INPUTS = {
        "model": InputSpec("Model"),
        "model_blessing": InputSpec("ModelBlessing", optional=True),
        "infra_blessing": InputSpec("InfraBlessing", optional=True),
    }
    OUTPUTS = {"pushed_model": "PushedModel"}
    PARAMETERS = {"push_destination": REQUIRED}

    def __init__(self, id: str | None = None, beam_args: list[str] | None = None, **kwargs):
        from conveyor.components.pusher import destination
        from conveyor.dsl import PipelineDefinitionError

        super().__init__(id=id, beam_args=beam_args, **kwargs)
        try:
            # A plain dict from here on (recorded, hashed, sent to the component's process),
            # its folder absolute: the component may run in another working directory.
            base = destination.base_directory(self.parameters["push_destination"])
        except PipelineDefinitionError as e:
            raise PipelineDefinitionError(f"{self.id}: {e}") from None
        spec = destination.as_dict(self.parameters["push_destination"])
        spec["filesystem"] = {**spec["filesystem"], "base_directory": base}
        self.parameters["push_destination"] = spec

    def execute(self, ctx):
        from conveyor.components.pusher.component import run_pusher

        blessing = ctx.inputs.get("model_blessing")
        infra = ctx.inputs.get("infra_blessing")
        summary = run_pusher(
            ctx.inputs["model"].uri,
            ctx.outputs["pushed_model"].uri,
            push_destination=ctx.parameters["push_destination"],
            model_blessing=blessing.uri if blessing is not None else None,
            infra_blessing=infra.uri if infra is not None else None,
            beam_args=ctx.beam_args,
        )
        props = {"pushed": summary["pushed"], "reason": summary["reason"]}
        if summary["pushed"]:
            props["pushed_destination"] = summary["pushed_destination"]
            props["pushed_version"] = summary["pushed_version"]
        return {"pushed_model": props}

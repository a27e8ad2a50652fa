"""Parameters read when the pipeline runs: ``other.outputs["x"].future()[0].value`` as a value.

A component's parameter may be a placeholder on another component's output (a
function component's ``Parameter[float]`` set to ``train.outputs["accuracy"].future()[0].value``,
say). :func:`with_placeholder_values` reads what the producer output in this run
from ML Metadata and gives the component as it runs: a shallow copy whose
parameters hold the values, so its fingerprint, cache key and recorded
parameters count them. A producer that was skipped skips the component too.
"""

from __future__ import annotations

import copy

from conveyor.dsl import Component, Pipeline
from conveyor.dsl.placeholders import ConditionError, Placeholder
from conveyor.orchestration.launcher import ComponentError
from conveyor.orchestration.metadata import SKIPPED, Metadata


def with_placeholder_values(
    md: Metadata, pipeline: Pipeline, component: Component, run_id: str
) -> tuple[Component, str | None]:
    """``(the component with its placeholder parameters' values, why it is skipped or None)``.

    Raises :class:`ComponentError` naming the parameter when its producer has not
    run in this run or the value cannot be read.
    """
    wanted = {k: v for k, v in component.parameters.items() if isinstance(v, Placeholder)}
    if not wanted:
        return component, None
    states = {
        ex.properties["component_id"].string_value: ex.properties["state"].string_value
        for ex in md.executions_of_run(pipeline.name, run_id)
    }
    produced: dict[str, dict] = {}

    def artifacts_of(channel):
        pid = channel.producer.id
        if pid not in produced:
            produced[pid] = md.latest_output_lists(pipeline.name, run_id, pid) or {}
        if channel.key not in produced[pid]:
            raise ConditionError(
                f"{pid}.outputs[{channel.key!r}] has not been produced in run {run_id!r} "
                f"(run {pid} first)"
            )
        return produced[pid][channel.key]

    values = {}
    for name, placeholder in wanted.items():
        for channel in placeholder.channels():
            if states.get(channel.producer.id) == SKIPPED:
                return component, (
                    f"skipped: its parameter {name!r} reads {channel.producer.id}."
                    f"outputs[{channel.key!r}], and {channel.producer.id} was skipped"
                )
        try:
            values[name] = placeholder.resolve(artifacts_of, {}, {})
        except ConditionError as e:
            raise ComponentError(
                f"{component.id}: cannot read parameter {name!r} ({placeholder!r}): {e}"
            ) from None
    resolved = copy.copy(component)
    resolved.parameters = {**component.parameters, **values}
    return resolved, None

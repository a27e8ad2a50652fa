"""What a component is in one run: its runtime parameters' values, and whether it runs at all.

:func:`prepare` is what :func:`~conveyor.orchestration.launcher.run_component`
asks before it resolves inputs, so every runner (local, Beam, ``conveyor
component run`` under Airflow and Kubeflow) decides the same way, from ML
Metadata:

- The runtime parameters' values are the ones given, else those recorded on the
  run's context by whoever started the run, else their defaults.
- A component is SKIPPED when a required input comes from a component that was
  skipped in this run, when its condition reads the output of one, or when its
  condition (the predicates of the ``Cond`` blocks it was made in) is false for
  the artifacts its producers output in this run. An optional input whose
  producer was skipped is left out.
"""

from __future__ import annotations

import copy

from conveyor.dsl import Component, Pipeline
from conveyor.dsl.conditions import condition_channels, conditions_of
from conveyor.dsl.placeholders import ConditionError
from conveyor.dsl.runtime import (
    RuntimeParameterError,
    resolve_runtime_parameters,
    with_runtime_values,
)
from conveyor.orchestration.launcher import ComponentError
from conveyor.orchestration.metadata import SKIPPED, Metadata


def run_values(md: Metadata, pipeline: Pipeline, run_id: str, given: dict | None = None) -> dict:
    """The runtime parameters' values in a run: ``given``, else those recorded for the run, else
    the defaults. Raises ``RuntimeParameterError`` (a UsageError) naming what is wrong."""
    if given is None:
        given = md.runtime_parameters(pipeline.name, run_id)
    return resolve_runtime_parameters(pipeline, given)


def _states(md: Metadata, pipeline: Pipeline, run_id: str) -> dict[str, str]:
    """Each component's latest recorded state in the run."""
    return {
        ex.properties["component_id"].string_value: ex.properties["state"].string_value
        for ex in md.executions_of_run(pipeline.name, run_id)
    }


def skip_reason(
    md: Metadata, pipeline: Pipeline, component: Component, run_id: str, values: dict
) -> tuple[str | None, set[str]]:
    """``(why the component is skipped, or None; its optional inputs left out)``.

    Raises :class:`ComponentError` when its condition cannot be evaluated (a
    producer that has not run, an artifact index out of range, values that
    cannot be compared).
    """
    states = _states(md, pipeline, run_id)
    absent: set[str] = set()
    for key, channel in component.inputs.items():
        producer = getattr(channel, "producer", None)
        if producer is None or states.get(producer.id) != SKIPPED:
            continue
        spec = component.INPUTS.get(key)
        if spec is not None and spec.optional:
            absent.add(key)
        else:
            return f"its input {key!r} comes from {producer.id}, which was skipped", absent
    predicates = conditions_of(component)
    for channel in condition_channels(predicates):
        if states.get(channel.producer.id) == SKIPPED:
            return (
                f"its condition reads {channel.producer.id}.outputs[{channel.key!r}], "
                f"and {channel.producer.id} was skipped"
            ), absent
    produced: dict[str, dict] = {}
    # Every artifact of each output where the store keeps several per key, else the one.
    outputs_of = getattr(md, "latest_output_lists", None) or md.latest_outputs

    def artifacts_of(channel):
        pid = channel.producer.id
        if pid not in produced:
            produced[pid] = outputs_of(pipeline.name, run_id, pid) or {}
        if channel.key not in produced[pid]:
            raise ComponentError(
                f"{component.id}: its condition reads {pid}.outputs[{channel.key!r}], which run "
                f"{run_id!r} has not produced (run {pid} first)"
            )
        return produced[pid][channel.key]

    for predicate in predicates:
        try:
            holds, seen = predicate.evaluate(artifacts_of, values)
        except ConditionError as e:
            raise ComponentError(f"{component.id}: cannot evaluate its condition: {e}") from None
        if not holds:
            if len(seen) == 1:
                read = f" (got {next(iter(seen.values()))!r})"
            else:
                read = " (got " + ", ".join(f"{k} = {v!r}" for k, v in seen.items()) + ")"
            return f"condition false: {predicate!r}{read if seen else ''}", absent
    return None, absent


def prepare(
    md: Metadata,
    pipeline: Pipeline,
    component: Component,
    run_id: str,
    runtime_parameters: dict | None = None,
) -> tuple[Component, str | None]:
    """``(the component as it runs in this run, why it is skipped or None)``.

    The component returned holds its runtime parameters' values and lacks the
    optional inputs whose producers were skipped (a shallow copy, when either
    applies), so its cache key and recorded parameters count them.
    """
    try:
        values = run_values(md, pipeline, run_id, runtime_parameters)
    except RuntimeParameterError as e:
        raise ComponentError(f"{component.id}: {e}") from None
    resolved = with_runtime_values(component, values)
    reason, absent = skip_reason(md, pipeline, resolved, run_id, values)
    if reason is None and absent:
        resolved = copy.copy(resolved) if resolved is component else resolved
        resolved.inputs = {k: v for k, v in component.inputs.items() if k not in absent}
    return resolved, (f"skipped: {reason}" if reason else None)

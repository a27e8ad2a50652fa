"""Resolvers: pipeline nodes that pick artifacts from ML Metadata instead of running code.

A :class:`Resolver` takes channels (usually standalone ones,
``Channel(type="Model")``) and a strategy; when the pipeline runs, its
execution asks ML Metadata for the artifacts of each channel within the
pipeline (every earlier run included), lets the strategy choose, and hands the
chosen artifacts on as its outputs, of the same types as its inputs. This is
what continuous training builds on: the latest model to warm-start from, the
latest blessed model to compare with, the last N spans of data.

The strategies, with TFX's names and configurations:

- :class:`LatestArtifactStrategy` (``{"desired_num_of_artifacts": N}``, default
  1): the N newest artifacts of each channel, newest first.
- :class:`LatestBlessedModelStrategy`: the newest Model (channel ``model``)
  that a ModelBlessing (channel ``model_blessing``) says is blessed, with that
  blessing; given an InfraBlessing channel (``model_infra_blessing``), only a
  model the InfraValidator blessed too, with that infra blessing.
- :class:`SpanRangeStrategy` (``{"range_config": {"static_range":
  {"start_span_number": a, "end_span_number": b}}}`` or ``{"range_config":
  {"rolling_range": {"num_spans": n}}}``): the Examples whose spans (``span``,
  or ``spans`` for one read from several) are in the range, the latest version
  of each span, in span order.

A strategy is a :class:`ResolverStrategy`: ``resolve_artifacts(store,
input_dict)`` gets a read-only :class:`ArtifactStore` and each channel's
candidates (``{key: [Artifact, ...]}``, oldest first) and returns
``{key: [Artifact, ...]}``. Nothing found gives an empty output: a downstream
optional input is then left out, a required one fails naming the resolver.

Example::

    from conveyor.dsl import Channel, Resolver
    from conveyor.dsl.resolver import LatestBlessedModelStrategy

    baseline = Resolver(
        strategy_class=LatestBlessedModelStrategy,
        model=Channel(type="Model"),
        model_blessing=Channel(type="ModelBlessing"),
    ).with_id("latest_blessed_model_resolver")
    evaluator = Evaluator(..., baseline_model=baseline.outputs["model"])
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Protocol, runtime_checkable

from conveyor.dsl.artifacts import Artifact
from conveyor.dsl.component import Channel, Component, InputSpec, PipelineDefinitionError

__all__ = [
    "ArtifactStore",
    "LatestArtifactStrategy",
    "LatestBlessedModelStrategy",
    "Resolver",
    "ResolverStrategy",
    "SpanRangeStrategy",
]


@runtime_checkable
class ArtifactStore(Protocol):
    """What a strategy may read of ML Metadata (``conveyor.orchestration.Metadata`` implements it).

    Artifacts come with their ML Metadata ``id`` and typed ``properties``
    (``span`` an int, ``blessed`` 1 or 0...), within the pipeline being run.
    """

    def artifacts(
        self,
        type_name: str,
        producer_component_id: str | None = None,
        output_key: str | None = None,
    ) -> list[Artifact]:
        """The pipeline's live artifacts of a type, oldest first (newest last); only those
        first output by ``producer_component_id`` (on ``output_key``) when given."""
        ...

    def producer_inputs(self, artifact_id: int) -> dict[str, list[Artifact]]:
        """The inputs (``{key: [Artifact, ...]}``) of the execution that first output an
        artifact (for a ModelBlessing: the Evaluator's, its ``model`` among them); ``{}``
        if none did.

        A store may also have ``producer_inputs_by_id(artifact_ids)`` (``{id:
        producer_inputs(id)}`` in one batch; ML Metadata's has):
        :func:`producer_inputs_of` uses it when there."""
        ...


class ResolverStrategy:
    """The base of resolver strategies, as TFX has it.

    A strategy is made with the resolver's ``config`` as keyword arguments
    (``strategy_class(**config)``, when the Resolver is defined, so a wrong
    config is a definition error) and asked to choose when the resolver runs.
    """

    def check_channels(self, channels: Mapping[str, Channel]) -> None:
        """Raises :class:`PipelineDefinitionError` if the resolver's channels do not suit the
        strategy (called when the Resolver is defined). Accepts any by default."""

    def resolve_artifacts(
        self, store: ArtifactStore, input_dict: dict[str, list[Artifact]]
    ) -> dict[str, list[Artifact]] | None:
        """``{key: chosen artifacts}`` from ``{key: candidates, oldest first}``.

        A key left out, an empty list or None (for all keys) means nothing found.
        """
        raise NotImplementedError


def _positive_int(value, what: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise PipelineDefinitionError(f"{what} must be a positive int, not {value!r}")
    return value


class LatestArtifactStrategy(ResolverStrategy):
    """The ``desired_num_of_artifacts`` newest artifacts of each channel, newest first.

    Example::

        latest_model = Resolver(strategy_class=LatestArtifactStrategy,
                                config={"desired_num_of_artifacts": 1},
                                model=Channel(type="Model", producer_component_id="Trainer"))
    """

    def __init__(self, desired_num_of_artifacts: int = 1):
        self.desired_num_of_artifacts = _positive_int(
            desired_num_of_artifacts, "LatestArtifactStrategy: desired_num_of_artifacts"
        )

    def resolve_artifacts(self, store, input_dict):
        n = self.desired_num_of_artifacts
        return {key: list(reversed(arts))[:n] for key, arts in input_dict.items()}


def _verdict(blessing: Artifact, yes: tuple, no: tuple, markers) -> bool:
    """A blessing's ``blessed`` property read as a verdict (1/0 or one of the strings), else its
    marker files (``markers(uri)``); no verdict at all (no marker, folder gone) is not blessed."""
    value = blessing.properties.get("blessed")
    if isinstance(value, str):
        value = value.strip().upper()
    if value in yes:
        return True
    if value in no:
        return False
    try:
        return markers(blessing.uri)
    except Exception:  # no marker, or the folder is gone: not a blessing to trust
        return False


def is_blessed(blessing: Artifact) -> bool:
    """Whether a ModelBlessing says blessed: its ``blessed`` property (1 or 0, TFX's; the older
    ``"BLESSED"``/``"NOT_BLESSED"`` too), else its ``BLESSED`` marker file."""
    from conveyor.dsl import layout

    return _verdict(
        blessing, (1, "1", "BLESSED", "TRUE"), (0, "0", "NOT_BLESSED", "FALSE"), layout.is_blessed
    )


def is_infra_blessed(blessing: Artifact) -> bool:
    """Whether an InfraBlessing says blessed: its ``blessed`` property (1 or 0, as the
    InfraValidator records it; ``"INFRA_BLESSED"``/``"INFRA_NOT_BLESSED"`` too), else its
    ``INFRA_BLESSED`` / ``INFRA_NOT_BLESSED`` marker file.

    Example::

        is_infra_blessed(Artifact("InfraBlessing", "/root/InfraValidator/blessing/7", 9,
                                  {"blessed": 1}))  # True
    """
    from conveyor.dsl import layout

    return _verdict(
        blessing,
        (1, "1", "INFRA_BLESSED", "TRUE"),
        (0, "0", "INFRA_NOT_BLESSED", "FALSE"),
        layout.is_infra_blessed,
    )


def producer_inputs_of(
    store: ArtifactStore, artifact_ids: list[int]
) -> dict[int, dict[str, list[Artifact]]]:
    """``{artifact id: store.producer_inputs(id)}`` for several artifacts: in one batch when the
    store has ``producer_inputs_by_id`` (ML Metadata's does: a few queries for all of them), else
    one call each."""
    batch = getattr(store, "producer_inputs_by_id", None)
    if batch is not None:
        return batch(list(artifact_ids))
    return {i: store.producer_inputs(i) for i in artifact_ids}


def _as_int(value) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    return None


class LatestBlessedModelStrategy(ResolverStrategy):
    """The newest Model whose ModelBlessing says blessed (and, given, whose InfraBlessing says
    infra-blessed), with those blessings.

    The resolver's channels are ``model`` (Model) and ``model_blessing``
    (ModelBlessing), as in TFX, and optionally ``model_infra_blessing``
    (InfraBlessing; TFX's key for it). A ModelBlessing's model is its
    ``current_model_id`` property (the Evaluator records it), or else, by
    lineage, the ``model`` input of the execution that produced the blessing; an
    InfraBlessing's model is found the same way (the InfraValidator's ``model``
    input). With an infra blessing channel a model counts only if it has both a
    blessed ModelBlessing and an infra-blessed InfraBlessing; without one, the
    ModelBlessing alone decides. The newest model that counts wins, with its
    newest blessing (and newest infra blessing) of those that say blessed; none
    gives every output empty.

    Example::

        Resolver(strategy_class=LatestBlessedModelStrategy,
                 model=Channel(type="Model"), model_blessing=Channel(type="ModelBlessing"),
                 model_infra_blessing=Channel(type="InfraBlessing"))
    """

    def __init__(
        self,
        model_channel_key: str = "model",
        model_blessing_channel_key: str = "model_blessing",
        model_infra_blessing_channel_key: str = "model_infra_blessing",
    ):
        self.model_key = model_channel_key
        self.blessing_key = model_blessing_channel_key
        self.infra_key = model_infra_blessing_channel_key

    def _usage(self) -> str:
        return (
            f"{self.model_key}=Channel(type='Model'), "
            f"{self.blessing_key}=Channel(type='ModelBlessing') and optionally "
            f"{self.infra_key}=Channel(type='InfraBlessing')"
        )

    def check_channels(self, channels):
        wanted = {
            self.model_key: "Model",
            self.blessing_key: "ModelBlessing",
            self.infra_key: "InfraBlessing",
        }
        for key, type_name in wanted.items():
            if key not in channels:
                if key == self.infra_key:
                    continue
                raise PipelineDefinitionError(
                    f"LatestBlessedModelStrategy needs a channel {key!r} ({type_name}): "
                    + self._usage()
                )
            if channels[key].type_name != type_name:
                raise PipelineDefinitionError(
                    f"LatestBlessedModelStrategy: channel {key!r} must be {type_name}, "
                    f"not {channels[key].type_name}"
                )
        extra = sorted(set(channels) - set(wanted))
        if extra:
            raise PipelineDefinitionError(
                f"LatestBlessedModelStrategy: unknown channel {extra[0]!r} "
                f"({channels[extra[0]].type_name}); it takes " + self._usage()
            )

    @staticmethod
    def _newest_by_model(store, blessings: list[Artifact], says_blessed) -> dict[int, Artifact]:
        """``{model id: newest blessing of it}`` among ``blessings`` (oldest first) that say
        blessed; a blessing's model is its ``current_model_id``, else its producer's ``model``
        input (looked up in one batch)."""
        kept = [b for b in blessings if says_blessed(b)]
        model_of = {b.id: _as_int(b.properties.get("current_model_id")) for b in kept}
        unknown = [i for i, m in model_of.items() if m is None]
        if unknown:
            for i, inputs in producer_inputs_of(store, unknown).items():
                models = inputs.get("model") or []
                model_of[i] = models[0].id if models else None
        newest: dict[int, Artifact] = {}
        for b in kept:  # oldest first: later ones win
            if model_of.get(b.id) is not None:
                newest[model_of[b.id]] = b
        return newest

    def resolve_artifacts(self, store, input_dict):
        with_infra = self.infra_key in input_dict
        empty = {self.model_key: [], self.blessing_key: []}
        if with_infra:
            empty[self.infra_key] = []
        models = input_dict.get(self.model_key) or []
        blessed = self._newest_by_model(store, input_dict.get(self.blessing_key) or [], is_blessed)
        if not models or not blessed:
            return empty
        infra = {}
        if with_infra:
            infra = self._newest_by_model(store, input_dict[self.infra_key] or [], is_infra_blessed)
        for model in reversed(models):  # newest first
            if model.id not in blessed or (with_infra and model.id not in infra):
                continue
            out = {self.model_key: [model], self.blessing_key: [blessed[model.id]]}
            if with_infra:
                out[self.infra_key] = [infra[model.id]]
            return out
        return empty


def _field(config, name: str):
    """``config[name]`` of a dict, or the field of an object (a RangeConfig proto, say)."""
    if config is None:
        return None
    if isinstance(config, Mapping):
        return config.get(name)
    has_field = getattr(config, "HasField", None)
    if has_field is not None:
        try:
            return getattr(config, name) if has_field(name) else None
        except ValueError:  # a proto3 scalar: no presence
            return getattr(config, name, None)
    return getattr(config, name, None)


class SpanRangeStrategy(ResolverStrategy):
    """The artifacts whose spans are in a range; the latest version of each span.

    ``range_config`` is TFX's RangeConfig, as a dict (or an object with those fields):

    - ``{"static_range": {"start_span_number": a, "end_span_number": b}}``: spans a to b
      (both included).
    - ``{"rolling_range": {"num_spans": n}}``: the n highest spans there are
      (``start_span_number`` ignores lower ones, ``skip_num_recent_spans`` leaves
      out the highest ones first).

    The spans an artifact covers are its ``spans`` property when it has one (an
    ExampleGen that read a range of spans records them, as JSON, with their
    ``versions``), else its ``span``; artifacts with neither are left out. The
    rule, per channel:

    1. Of several artifacts covering the same spans, the one with the highest
       version (``versions``, else ``version``, compared from the highest span
       down) is kept, then the newest.
    2. The range is taken over the spans covered (a rolling range counts spans,
       not artifacts: an artifact of spans 3 and 4 brings two).
    3. An artifact is chosen only if all its spans are in the range (one reaching
       outside it would bring data from outside).
    4. Each span is read once: artifacts are taken newest first, and one sharing
       a span with an artifact already taken is left out (so a span whose only
       artifacts overlap a newer one is not read).

    For artifacts of one span each this is: the latest version of each span in
    the range. Each channel's choice is in span order, lowest first.

    Example::

        Resolver(strategy_class=SpanRangeStrategy,
                 config={"range_config": {"rolling_range": {"num_spans": 2}}},
                 examples=Channel(type="Examples", producer_component_id="ExampleGen"))
    """

    def __init__(self, range_config):
        static, rolling = (
            _field(range_config, "static_range"),
            _field(range_config, "rolling_range"),
        )
        if (static is None) == (rolling is None):
            raise PipelineDefinitionError(
                "SpanRangeStrategy: range_config needs one of static_range "
                "({'start_span_number': a, 'end_span_number': b}) or rolling_range "
                f"({{'num_spans': n}}), not {range_config!r}"
            )
        self.static = None
        self.rolling = None
        if static is not None:
            start, end = (
                _field(static, "start_span_number"),
                _field(static, "end_span_number"),
            )
            if _as_int(start) is None or _as_int(end) is None or int(start) > int(end):
                raise PipelineDefinitionError(
                    "SpanRangeStrategy: static_range needs start_span_number <= end_span_number "
                    f"(ints), not {start!r} and {end!r}"
                )
            self.static = (int(start), int(end))
        else:
            num = _field(rolling, "num_spans")
            self.rolling = (
                _positive_int(1 if num is None else num, "SpanRangeStrategy: num_spans"),
                _as_int(_field(rolling, "start_span_number")) or 0,
                _as_int(_field(rolling, "skip_num_recent_spans")) or 0,
            )

    def _spans(self, present: list[int]) -> set[int]:
        if self.static is not None:
            start, end = self.static
            return {s for s in present if start <= s <= end}
        num, start, skip = self.rolling
        eligible = sorted({s for s in present if s >= start}, reverse=True)[skip:]
        return set(eligible[:num])

    def resolve_artifacts(self, store, input_dict):
        out = {}
        for key, arts in input_dict.items():
            best: dict[tuple[int, ...], tuple[tuple, Artifact]] = {}
            for position, a in enumerate(arts):  # oldest first
                covered = span_versions(a)
                if not covered:
                    continue
                spans = tuple(sorted(covered))
                order = (tuple(covered[s] for s in reversed(spans)), position)
                if spans not in best or order >= best[spans][0]:
                    best[spans] = (order, a)
            wanted = self._spans(sorted({s for spans in best for s in spans}))
            taken: list[tuple[tuple[int, ...], Artifact]] = []
            read: set[int] = set()
            # newest first
            for spans, (_, a) in sorted(best.items(), key=lambda kv: kv[1][0][1], reverse=True):
                if set(spans) <= wanted and read.isdisjoint(spans):
                    taken.append((spans, a))
                    read.update(spans)
            out[key] = [a for _, a in sorted(taken, key=lambda t: t[0])]
        return out


def _int_list(value, artifact: Artifact, name: str) -> list[int] | None:
    """A ``spans``/``versions`` property (JSON text or a list) as ints; None if unset."""
    if value is None or value == "":
        return None
    items = value
    if isinstance(value, str):
        try:
            items = json.loads(value)
        except ValueError:
            items = None
    numbers = [_as_int(v) for v in items] if isinstance(items, (list, tuple)) else [None]
    if not numbers or any(n is None for n in numbers):
        raise ValueError(
            f"{artifact.type_name} artifact {artifact.id} ({artifact.uri}): property {name!r} "
            f"must be a list of ints (JSON, as ExampleGen records it), not {value!r}"
        )
    return numbers


def span_versions(artifact: Artifact) -> dict[int, int]:
    """``{span: version}`` of the spans an artifact covers (``{}`` for none).

    Its ``spans`` property (JSON list, as an ExampleGen reading a range records
    it) with ``versions`` (one each), else its ``span`` with ``version``; a
    missing version counts as 0.

    Raises:
      ValueError: ``spans`` or ``versions`` not a list of ints, or of other lengths.

    Example::

        span_versions(Artifact("Examples", "e", 1, {"span": 4, "spans": "[3, 4]",
                                                    "versions": "[0, 2]"}))  # {3: 0, 4: 2}
    """
    props = artifact.properties
    version = _as_int(props.get("version")) or 0
    spans = _int_list(props.get("spans"), artifact, "spans")
    if spans is None:
        span = _as_int(props.get("span"))
        return {} if span is None else {span: version}
    versions = _int_list(props.get("versions"), artifact, "versions")
    if versions is None:
        versions = [version] * len(spans)
    if len(versions) != len(spans):
        raise ValueError(
            f"{artifact.type_name} artifact {artifact.id} ({artifact.uri}): 'versions' "
            f"{props.get('versions')!r} does not give one version per span of 'spans' "
            f"{props.get('spans')!r}"
        )
    return dict(zip(spans, versions, strict=True))


def _strategy_name(cls) -> str:
    return f"{cls.__module__}.{cls.__qualname__}"


class Resolver(Component):
    """A node that resolves artifacts from ML Metadata with a strategy, instead of running code.

    Args:
      strategy_class: a :class:`ResolverStrategy` subclass.
      config: its keyword arguments (``strategy_class(**config)``).
      **channels: the channels to resolve, by key: standalone ones
        (``Channel(type="Model", producer_component_id="Trainer")``) or a
        component's outputs (the resolver then runs after it).

    ``outputs[key]`` is a channel of the same type as ``channels[key]``. The id
    is ``Resolver`` unless set with :meth:`with_id` (TFX's way).
    Its execution (type ``conveyor.Resolver``) is never cached: each run
    resolves afresh; the chosen artifacts are its input and output events.
    """

    def __init__(self, strategy_class=None, config: dict[str, Any] | None = None, **channels):
        if not (isinstance(strategy_class, type) and hasattr(strategy_class, "resolve_artifacts")):
            raise PipelineDefinitionError(
                f"Resolver: strategy_class must be a ResolverStrategy class "
                f"(LatestArtifactStrategy, LatestBlessedModelStrategy, SpanRangeStrategy...), "
                f"not {strategy_class!r}"
            )
        if not channels:
            raise PipelineDefinitionError(
                "Resolver: no channels to resolve; pass them by key, e.g. model=Channel(type='Model')"
            )
        for key, ch in channels.items():
            if not isinstance(ch, Channel):
                raise PipelineDefinitionError(
                    f"Resolver: {key!r} must be a Channel (Channel(type='Model')), "
                    f"not {type(ch).__name__}"
                )
        self.strategy_class = strategy_class
        self.config = dict(config or {})
        try:
            strategy = strategy_class(**self.config)
        except TypeError as e:
            raise PipelineDefinitionError(
                f"Resolver: {strategy_class.__name__} does not take config {self.config!r}: {e}"
            ) from None
        strategy.check_channels(channels)
        self.OUTPUTS = {key: ch.type_name for key, ch in channels.items()}
        super().__init__()  # id, outputs and what every node has; the inputs are set below
        # Standalone channels are taken as they are (Component's checks want components' outputs).
        self.INPUTS = {key: InputSpec(ch.type_name) for key, ch in channels.items()}
        self.inputs = dict(channels)
        self.parameters = {"strategy_class": _strategy_name(strategy_class), "config": self.config}

    def candidates(self, store: ArtifactStore) -> dict[str, list[Artifact]]:
        """Each channel's artifacts in the store, oldest first."""
        return {
            key: store.artifacts(ch.type_name, ch.producer_component_id, ch.output_key)
            for key, ch in self.inputs.items()
        }

    def resolve(self, store: ArtifactStore) -> dict[str, list[Artifact]]:
        """``{key: [Artifact, ...]}`` chosen by the strategy (a list may be empty)."""
        chosen = self.strategy_class(**self.config).resolve_artifacts(store, self.candidates(store))
        chosen = chosen or {}
        out = {}
        for key, ch in self.inputs.items():
            arts = list(chosen.get(key) or [])
            for a in arts:
                if a.type_name != ch.type_name or a.id is None:
                    raise TypeError(
                        f"{self.id}: {self.strategy_class.__name__} gave {a!r} for {key!r}, "
                        f"which needs recorded {ch.type_name} artifacts"
                    )
            out[key] = arts
        return out

    def describe(self, key: str | None = None) -> str:
        """What it looks for, for messages: ``LatestArtifactStrategy over model=Channel(type=Model)``."""
        keys = [key] if key is not None else list(self.inputs)
        config = f"({self.config})" if self.config else ""
        over = ", ".join(f"{k}={self.inputs[k]!r}" for k in keys)
        return f"{self.strategy_class.__name__}{config} over {over}"

    def execute(self, ctx):
        raise TypeError(
            f"{self.id}: a Resolver runs no code; the launcher resolves it from ML Metadata"
        )

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
  blessing.
- :class:`SpanRangeStrategy` (``{"range_config": {"static_range":
  {"start_span_number": a, "end_span_number": b}}}`` or ``{"range_config":
  {"rolling_range": {"num_spans": n}}}``): the Examples whose ``span`` is in the
  range, the latest version of each span, in span order.

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
        if none did."""
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


def is_blessed(blessing: Artifact) -> bool:
    """Whether a ModelBlessing says blessed: its ``blessed`` property (1 or 0, TFX's; the older
    ``"BLESSED"``/``"NOT_BLESSED"`` too), else its ``BLESSED`` marker file."""
    value = blessing.properties.get("blessed")
    if isinstance(value, str):
        value = value.strip().upper()
    if value in (1, "1", "BLESSED", "TRUE"):
        return True
    if value in (0, "0", "NOT_BLESSED", "FALSE"):
        return False
    from conveyor.dsl import layout

    try:
        return layout.is_blessed(blessing.uri)
    except Exception:  # no marker, or the folder is gone: not a blessing to trust
        return False


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
    """The newest Model whose ModelBlessing says blessed, and that blessing.

    The resolver's channels are ``model`` (Model) and ``model_blessing``
    (ModelBlessing), as in TFX. A blessing's model is its ``current_model_id``
    property (the Evaluator records it), or else, by lineage, the ``model``
    input of the execution that produced the blessing. Among the blessed models
    the newest wins, with its newest blessing; none blessed gives both outputs
    empty.

    Example::

        Resolver(strategy_class=LatestBlessedModelStrategy,
                 model=Channel(type="Model"), model_blessing=Channel(type="ModelBlessing"))
    """

    def __init__(
        self, model_channel_key: str = "model", model_blessing_channel_key: str = "model_blessing"
    ):
        self.model_key = model_channel_key
        self.blessing_key = model_blessing_channel_key

    def check_channels(self, channels):
        for key, type_name in ((self.model_key, "Model"), (self.blessing_key, "ModelBlessing")):
            if key not in channels:
                raise PipelineDefinitionError(
                    f"LatestBlessedModelStrategy needs a channel {key!r} ({type_name}): "
                    f"{self.model_key}=Channel(type='Model'), "
                    f"{self.blessing_key}=Channel(type='ModelBlessing')"
                )
            if channels[key].type_name != type_name:
                raise PipelineDefinitionError(
                    f"LatestBlessedModelStrategy: channel {key!r} must be {type_name}, "
                    f"not {channels[key].type_name}"
                )

    def _model_of(self, store, blessing: Artifact) -> int | None:
        model_id = _as_int(blessing.properties.get("current_model_id"))
        if model_id is not None:
            return model_id
        models = store.producer_inputs(blessing.id).get("model") or []
        return models[0].id if models else None

    def resolve_artifacts(self, store, input_dict):
        models = input_dict.get(self.model_key) or []
        rank = {m.id: i for i, m in enumerate(models)}  # oldest first
        best: tuple[int, Artifact, Artifact] | None = None
        for blessing in input_dict.get(self.blessing_key) or []:  # oldest first: later ones win
            if not is_blessed(blessing):
                continue
            model_id = self._model_of(store, blessing)
            if model_id not in rank:
                continue
            if best is None or rank[model_id] >= best[0]:
                best = (rank[model_id], models[rank[model_id]], blessing)
        if best is None:
            return {self.model_key: [], self.blessing_key: []}
        return {self.model_key: [best[1]], self.blessing_key: [best[2]]}


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
    """The artifacts whose ``span`` property is in a range; the latest version of each span.

    ``range_config`` is TFX's RangeConfig, as a dict (or an object with those fields):

    - ``{"static_range": {"start_span_number": a, "end_span_number": b}}``: spans a to b
      (both included).
    - ``{"rolling_range": {"num_spans": n}}``: the n highest spans there are
      (``start_span_number`` ignores lower ones, ``skip_num_recent_spans`` leaves
      out the highest ones first).

    Of several artifacts of one span, the one with the highest ``version``
    property (then the newest) is taken. Artifacts without a ``span`` are left
    out. Each channel's choice is in span order, lowest first.

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
            latest: dict[int, tuple[tuple, Artifact]] = {}
            for position, a in enumerate(arts):  # oldest first
                span = _as_int(a.properties.get("span"))
                if span is None:
                    continue
                order = (_as_int(a.properties.get("version")) or 0, position)
                if span not in latest or order >= latest[span][0]:
                    latest[span] = (order, a)
            wanted = self._spans(list(latest))
            out[key] = [latest[s][1] for s in sorted(wanted)]
        return out


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

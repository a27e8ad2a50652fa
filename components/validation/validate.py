"""``validate_statistics``: statistics + schema -> a tensorflow-metadata ``Anomalies``.

Pure Python over the per-feature statistics (a few thousand numbers at most),
so it needs no Beam; :mod:`conveyor.components.validation.transform` wraps it
for pipelines. The output has TFDV's shape, so TFDV's and TFX's tools read it:
``anomaly_info`` keyed by feature name, each with a ``path``, a ``severity``,
``reason`` entries whose ``type`` is an ``AnomalyInfo.Type`` name, and a short
and long description (several reasons: "Several anomalies" and the descriptions
joined); dataset-level findings in ``dataset_anomaly_info``; every drift or skew
measurement in ``drift_skew_info``; the schema in ``baseline``.

What is checked, per feature of the statistics (in this order):

* the feature is not in the schema: ``SCHEMA_NEW_COLUMN``; it is in the schema
  but not in the requested environment: ``SCHEMA_NEW_COLUMN`` too;
* deprecated features (``deprecated``, or lifecycle PLANNED, ALPHA, DEPRECATED,
  DEBUG_ONLY) are not checked; a required feature present in no example:
  ``FEATURE_TYPE_NOT_PRESENT``;
* ``value_count``: ``FEATURE_TYPE_LOW_NUMBER_VALUES`` / ``..._HIGH_NUMBER_VALUES``;
  ``shape``: ``INVALID_FEATURE_SHAPE`` when the feature is sometimes missing or
  its number of values is not the shape's size;
* ``presence``: ``FEATURE_TYPE_LOW_NUMBER_PRESENT`` (min_count) and
  ``FEATURE_TYPE_LOW_FRACTION_PRESENT`` (min_fraction);
* type: ``UNEXPECTED_DATA_TYPE``;
* domains: string domain ``ENUM_TYPE_UNEXPECTED_STRING_VALUES`` (when the
  fraction of values outside it exceeds ``1 - min_domain_mass``, 0 by default);
  int domain ``INT_TYPE_SMALL_INT``/``INT_TYPE_BIG_INT``/``INT_TYPE_NOT_INT_STRING``;
  float domain ``FLOAT_TYPE_SMALL_FLOAT``/``FLOAT_TYPE_BIG_FLOAT``,
  ``FLOAT_TYPE_HAS_NAN`` (``disallow_nan``), ``FLOAT_TYPE_HAS_INF``
  (``disallow_inf``), ``FLOAT_TYPE_STRING_NOT_FLOAT``; bool domain
  ``BOOL_TYPE_SMALL_INT``/``BOOL_TYPE_BIG_INT``/``BOOL_TYPE_UNEXPECTED_STRING``/
  ``BOOL_TYPE_UNEXPECTED_FLOAT``;
* ``unique_constraints``: ``FEATURE_TYPE_LOW_UNIQUE``/``HIGH_UNIQUE``/``NO_UNIQUE``;
* ``drift_comparator`` against the baseline (previous) statistics and
  ``skew_comparator`` against the serving statistics: L-infinity distance
  (``COMPARATOR_L_INFTY_HIGH``) and Jensen-Shannon divergence
  (``COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH``); the comparison dataset lacks
  the feature: ``COMPARATOR_CONTROL_DATA_MISSING``.

Then the schema's required features (``presence`` min_count or min_fraction
above 0, in the environment, not deprecated) that the statistics lack:
``SCHEMA_MISSING_COLUMN``; and the dataset: ``dataset_constraints``
min/max_examples_count (``DATASET_LOW_NUM_EXAMPLES``/``..._HIGH_...``) and
``num_examples_drift_comparator`` against the baseline
(``COMPARATOR_LOW_NUM_EXAMPLES``/``..._HIGH_...``).

Every anomaly is ``ERROR`` (as in TFDV) unless ``severity_overrides`` lowers its
type to ``WARNING``.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping

import numpy as np
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from conveyor.components.validation import metrics
from conveyor.components.validation.stats_view import (
    FNS,
    INVALID_UTF8_LABEL,
    DatasetView,
    FeatureView,
    select_dataset,
)

AnomalyInfo = anomalies_pb2.AnomalyInfo
Measurement = anomalies_pb2.DriftSkewInfo.Measurement
ERROR = AnomalyInfo.ERROR
WARNING = AnomalyInfo.WARNING
_DEPRECATED_STAGES = {
    schema_pb2.PLANNED,
    schema_pb2.ALPHA,
    schema_pb2.DEPRECATED,
    schema_pb2.DEBUG_ONLY,
}
_INT_RE = re.compile(r"^\s*[+-]?[0-9]+\s*$")
#: How many out-of-domain values a description quotes.
MAX_QUOTED_VALUES = 10


@dataclasses.dataclass(frozen=True)
class ValidationOptions:
    """Settings of :func:`validate_statistics` beyond the inputs.

    Attributes:
      environment: the environment the statistics come from (e.g. ``SERVING``):
        features the schema keeps out of it are neither required nor expected.
      dataset: name of the dataset to read in sliced statistics (default: the
        first one, the whole data); applies to the baseline and serving
        statistics too.
      severity_overrides: ``{anomaly type name: "WARNING" or "ERROR"}``, e.g.
        ``{"SCHEMA_NEW_COLUMN": "WARNING"}`` to let new columns pass a gate.
    """

    environment: str | None = None
    dataset: str | None = None
    severity_overrides: Mapping[str, str] = dataclasses.field(default_factory=dict)

    def __post_init__(self):
        overrides = {}
        for name, level in dict(self.severity_overrides).items():
            if name not in AnomalyInfo.Type.keys():
                raise ValueError(f"unknown anomaly type {name!r}")
            level = str(level).upper()
            if level not in ("WARNING", "ERROR"):
                raise ValueError(f"severity of {name} must be WARNING or ERROR, not {level!r}")
            overrides[name] = level
        object.__setattr__(self, "severity_overrides", overrides)


@dataclasses.dataclass
class _Reason:
    type: str
    short: str
    description: str


def _fmt(x: float) -> str:
    """A number the way a person reads it (6 significant digits, integers as integers)."""
    if isinstance(x, (int, np.integer)) or (
        isinstance(x, float) and x.is_integer() and abs(x) < 1e15
    ):
        return str(int(x))
    return f"{x:.6g}"


def _pct(count: float, total: float) -> str:
    if not total:
        return "?"
    p = 100.0 * count / total
    return "<1%" if p < 1 else f"~{int(math.floor(p))}%"


def is_deprecated(feature: schema_pb2.Feature) -> bool:
    """True if validation skips the feature (deprecated or an unreleased lifecycle stage)."""
    return feature.deprecated or (
        feature.HasField("lifecycle_stage") and feature.lifecycle_stage in _DEPRECATED_STAGES
    )


def in_environment(
    feature: schema_pb2.Feature, schema: schema_pb2.Schema, environment: str | None
) -> bool:
    """Whether the feature belongs to ``environment`` (always, without one).

    ``in_environment`` wins over ``not_in_environment``, which wins over the
    schema's ``default_environment`` list; a feature named by none of them is
    not in the environment.
    """
    if environment is None:
        return True
    if environment in feature.in_environment:
        return True
    if environment in feature.not_in_environment:
        return False
    return environment in schema.default_environment


def is_required(
    feature: schema_pb2.Feature, schema: schema_pb2.Schema, environment: str | None
) -> bool:
    """Whether the data must contain the feature."""
    if is_deprecated(feature):
        return False
    if feature.presence.min_count <= 0 and feature.presence.min_fraction <= 0:
        return False
    return in_environment(feature, schema, environment)


class _Validator:
    def __init__(
        self,
        schema,
        view: DatasetView,
        options: ValidationOptions,
        previous: DatasetView | None,
        serving: DatasetView | None,
    ):
        self.schema = schema
        self.view = view
        self.options = options
        self.env = options.environment
        self.previous = previous
        self.serving = serving
        self.string_domains = {d.name: d for d in schema.string_domain}
        self.features = {f.name: f for f in schema.feature}
        self.anomalies = anomalies_pb2.Anomalies()
        self.anomalies.baseline.CopyFrom(schema)
        self.anomalies.anomaly_name_format = anomalies_pb2.Anomalies.SERIALIZED_PATH

    # -- assembling the proto -------------------------------------------------------

    def _severity(self, reason_type: str) -> int:
        level = self.options.severity_overrides.get(reason_type, "ERROR")
        return WARNING if level == "WARNING" else ERROR

    def _fill(self, info: AnomalyInfo, reasons: list[_Reason]) -> None:
        for r in reasons:
            info.reason.add(
                type=AnomalyInfo.Type.Value(r.type),
                short_description=r.short,
                description=r.description,
            )
        info.severity = ERROR if any(self._severity(r.type) == ERROR for r in reasons) else WARNING
        if len(reasons) == 1:
            info.short_description = reasons[0].short
            info.description = reasons[0].description
        else:
            info.short_description = "Several anomalies"
            info.description = " ".join(r.description for r in reasons)

    def _add(self, name: str, reasons: list[_Reason]) -> None:
        if not reasons:
            return
        info = self.anomalies.anomaly_info[name]
        info.path.step.append(name)
        self._fill(info, reasons)

    # -- the checks -------------------------------------------------------------------

    def run(self) -> anomalies_pb2.Anomalies:
        if self.view.num_examples == 0 and not self.view.features:
            self.anomalies.data_missing = True
        for fv in self.view:
            feature = self.features.get(fv.name)
            if feature is None:
                self._add(
                    fv.name,
                    [
                        _Reason(
                            "SCHEMA_NEW_COLUMN",
                            "New feature",
                            f"Feature {fv.name!r} is in the data ({fv.stats_type_name}, present in "
                            f"{_fmt(fv.num_present)} of {_fmt(fv.num_examples)} examples) but not in the schema.",
                        )
                    ],
                )
                continue
            reasons, drift_skew = self._check_feature(fv, feature)
            self._add(fv.name, reasons)
            if drift_skew is not None:
                self.anomalies.drift_skew_info.append(drift_skew)
        for feature in self.schema.feature:
            if feature.name not in self.view.features and is_required(
                feature, self.schema, self.env
            ):
                self._add(
                    feature.name,
                    [
                        _Reason(
                            "SCHEMA_MISSING_COLUMN",
                            "Feature missing",
                            f"The schema requires feature {feature.name!r} "
                            f"({_presence_text(feature)}{self._env_text()}) but it is absent from the data.",
                        )
                    ],
                )
        dataset_reasons = self._check_dataset()
        if dataset_reasons:
            self._fill(self.anomalies.dataset_anomaly_info, dataset_reasons)
        return self.anomalies

    def _env_text(self) -> str:
        return f" in environment {self.env}" if self.env else ""

    def _check_schema_feature(self, feature) -> list[_Reason]:
        """Mistakes in the schema itself that make a check meaningless."""
        out = []
        name = feature.name
        if feature.type == schema_pb2.TYPE_UNKNOWN and not feature.HasField("struct_domain"):
            out.append(
                _Reason(
                    "FEATURE_MISSING_TYPE",
                    "Missing type",
                    f"The schema gives feature {name!r} no type; set INT, FLOAT or BYTES.",
                )
            )
        p = feature.presence
        if p.HasField("min_fraction") and not 0.0 <= p.min_fraction <= 1.0:
            out.append(
                _Reason(
                    "INVALID_SCHEMA_SPECIFICATION",
                    "Invalid presence",
                    f"presence.min_fraction of {name!r} is {_fmt(p.min_fraction)}; "
                    "it must be between 0 and 1.",
                )
            )
        vc = feature.value_count
        if feature.HasField("value_count") and vc.HasField("max") and vc.max < vc.min:
            out.append(
                _Reason(
                    "INVALID_SCHEMA_SPECIFICATION",
                    "Invalid value count",
                    f"value_count of {name!r} has max {vc.max} below min {vc.min}.",
                )
            )
        if feature.HasField("domain") and feature.domain not in self.string_domains:
            out.append(
                _Reason(
                    "INVALID_SCHEMA_SPECIFICATION",
                    "Missing domain",
                    f"Feature {name!r} refers to string_domain {feature.domain!r}, "
                    "which the schema does not define.",
                )
            )
        domain = self._string_domain(feature)
        if domain is not None:
            seen, repeats = set(), []
            for v in domain.value:
                if v in seen:
                    repeats.append(v)
                seen.add(v)
            if repeats:
                out.append(
                    _Reason(
                        "INVALID_DOMAIN_SPECIFICATION",
                        "Malformed string domain",
                        f"The string domain of {name!r} lists some values twice: "
                        + ", ".join(repeats[:MAX_QUOTED_VALUES])
                        + ".",
                    )
                )
        return out

    def _string_domain(self, feature):
        which = feature.WhichOneof("domain_info")
        if which == "domain":
            return self.string_domains.get(feature.domain)
        if which == "string_domain":
            return feature.string_domain
        return None

    def _check_feature(self, fv: FeatureView, feature):
        if is_deprecated(feature):
            return [], None
        reasons = self._check_schema_feature(feature)
        name = fv.name
        if fv.num_present == 0:
            if is_required(feature, self.schema, self.env):
                reasons.append(
                    _Reason(
                        "FEATURE_TYPE_NOT_PRESENT",
                        "Feature never present",
                        f"The schema requires feature {name!r} ({_presence_text(feature)}) but no "
                        f"example of {_fmt(fv.num_examples)} has it.",
                    )
                )
            return reasons, None
        if not in_environment(feature, self.schema, self.env):
            reasons.append(
                _Reason(
                    "SCHEMA_NEW_COLUMN",
                    "Unexpected in environment",
                    f"Feature {name!r} is in the data ({_fmt(fv.num_present)} examples) but the schema "
                    f"does not expect it in environment {self.env}.",
                )
            )
        reasons += self._check_valency(fv, feature)
        reasons += self._check_presence(fv, feature)
        if fv.schema_type != feature.type:
            reasons.append(
                _Reason(
                    "UNEXPECTED_DATA_TYPE",
                    "Type mismatch",
                    f"Feature {name!r}: the schema expects type "
                    f"{schema_pb2.FeatureType.Name(feature.type)} but the data has {fv.stats_type_name}.",
                )
            )
        reasons += self._check_domain(fv, feature)
        if feature.HasField("unique_constraints"):
            reasons += self._check_unique(fv, feature)
        drift_skew = anomalies_pb2.DriftSkewInfo()
        drift_skew.path.step.append(name)
        for kind in ("drift", "skew"):
            if feature.HasField(f"{kind}_comparator"):
                reasons += self._compare(
                    fv, getattr(feature, f"{kind}_comparator"), kind, drift_skew
                )
        has_measurements = drift_skew.drift_measurements or drift_skew.skew_measurements
        return reasons, (drift_skew if has_measurements else None)

    def _check_valency(self, fv, feature) -> list[_Reason]:
        out = []
        lo, hi = fv.min_num_values, fv.max_num_values
        if feature.HasField("value_count"):
            vc = feature.value_count
            if vc.HasField("min") and lo < vc.min:
                out.append(
                    _Reason(
                        "FEATURE_TYPE_LOW_NUMBER_VALUES",
                        "Too few values",
                        f"Feature {fv.name!r}: the schema expects at least {vc.min} value(s) per "
                        f"example but some examples have {lo}.",
                    )
                )
            if vc.HasField("max") and hi > vc.max:
                out.append(
                    _Reason(
                        "FEATURE_TYPE_HIGH_NUMBER_VALUES",
                        "Too many values",
                        f"Feature {fv.name!r}: the schema expects at most {vc.max} value(s) per "
                        f"example but some examples have {hi}.",
                    )
                )
        if feature.HasField("shape"):
            size = int(np.prod([d.size for d in feature.shape.dim])) if feature.shape.dim else 1
            if fv.num_missing > 0 or lo != size or hi != size:
                seen = (
                    f"missing in {_fmt(fv.num_missing)} example(s)"
                    if fv.num_missing > 0
                    else f"{lo} to {hi} values per example"
                )
                dims = "x".join(str(d.size) for d in feature.shape.dim) or "scalar"
                out.append(
                    _Reason(
                        "INVALID_FEATURE_SHAPE",
                        "Shape violated",
                        f"Feature {fv.name!r}: the schema gives it the fixed shape [{dims}] "
                        f"({size} value(s) in every example) but it is {seen}.",
                    )
                )
        return out

    def _check_presence(self, fv, feature) -> list[_Reason]:
        out = []
        if not feature.HasField("presence"):
            return out
        p = feature.presence
        if p.HasField("min_count") and fv.num_present < p.min_count:
            out.append(
                _Reason(
                    "FEATURE_TYPE_LOW_NUMBER_PRESENT",
                    "Present in too few examples",
                    f"Feature {fv.name!r}: the schema expects it in at least {p.min_count} "
                    f"example(s) but it is in {_fmt(fv.num_present)}.",
                )
            )
        fraction = fv.fraction_present
        if p.HasField("min_fraction") and fraction is not None:
            if fraction < p.min_fraction or (p.min_fraction == 1.0 and fv.num_missing != 0):
                out.append(
                    _Reason(
                        "FEATURE_TYPE_LOW_FRACTION_PRESENT",
                        "Present too rarely",
                        f"Feature {fv.name!r}: the schema expects it in at least "
                        f"{_fmt(100 * p.min_fraction)}% of examples but it is in "
                        f"{100 * fraction:.4g}% ({_fmt(fv.num_present)} of {_fmt(fv.num_examples)}; "
                        f"missing in {_fmt(fv.num_missing)}).",
                    )
                )
        return out

    def _check_domain(self, fv, feature) -> list[_Reason]:
        which = feature.WhichOneof("domain_info")
        if fv.stats_type == FNS.BYTES and which not in (
            None,
            "natural_language_domain",
            "image_domain",
            "url_domain",
        ):
            return [
                _Reason(
                    "DOMAIN_INVALID_FOR_TYPE",
                    "Domain invalid for binary data",
                    f"Feature {fv.name!r} holds binary (BYTES) data, which cannot be checked "
                    f"against its {which}.",
                )
            ]
        if which in ("domain", "string_domain"):
            domain = self._string_domain(feature)
            return self._check_string_domain(fv, feature, domain) if domain is not None else []
        if which == "int_domain":
            return self._check_int_domain(fv, feature.int_domain)
        if which == "float_domain":
            return self._check_float_domain(fv, feature.float_domain)
        if which == "bool_domain":
            return self._check_bool_domain(fv, feature.bool_domain)
        return []

    def _check_string_domain(self, fv, feature, domain) -> list[_Reason]:
        counts = fv.string_counts
        if INVALID_UTF8_LABEL in counts:
            return [
                _Reason(
                    "ENUM_TYPE_INVALID_UTF8",
                    "Non-UTF-8 values",
                    f"Feature {fv.name!r} has values that are not valid UTF-8, so they "
                    "cannot be checked against its string domain.",
                )
            ]
        allowed = set(domain.value)
        outside = {v: c for v, c in counts.items() if v not in allowed}
        if not outside:
            return []
        total = fv.total_values
        off = sum(outside.values())
        dc = feature.distribution_constraints
        max_off = 1.0 - dc.min_domain_mass if dc.HasField("min_domain_mass") else 0.0
        fraction = off / total if total else math.inf
        if not (fraction > max_off or max_off == 0):
            return []
        worst = sorted(outside.items(), key=lambda kv: (-kv[1], kv[0]))
        quoted = ", ".join(f"{v!r} ({_pct(c, total)})" for v, c in worst[:MAX_QUOTED_VALUES])
        more = (
            f" and {len(worst) - MAX_QUOTED_VALUES} more" if len(worst) > MAX_QUOTED_VALUES else ""
        )
        expected = ", ".join(list(domain.value)[:MAX_QUOTED_VALUES])
        if len(domain.value) > MAX_QUOTED_VALUES:
            expected += f", ... ({len(domain.value)} values)"
        allowance = f", above the allowed {100 * max_off:.4g}%" if max_off else ""
        return [
            _Reason(
                "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
                "Values outside domain",
                f"Feature {fv.name!r}: {100 * fraction:.4g}% of values are outside the domain "
                f"{domain.name or fv.name!r} (expected one of: {expected}){allowance}; "
                f"seen: {quoted}{more}.",
            )
        ]

    def _check_int_domain(self, fv, domain) -> list[_Reason]:
        if fv.stats_type == FNS.INT and fv.has_num_stats:
            lo, hi = fv.num_stats.min, fv.num_stats.max
        elif fv.stats_type == FNS.STRING and fv.string_counts:
            bad = [v for v in fv.string_counts if not _INT_RE.match(v)]
            if bad:
                return [
                    _Reason(
                        "INT_TYPE_NOT_INT_STRING",
                        "Non-integer values",
                        f"Feature {fv.name!r} has an int domain but values that are not "
                        f"integers, such as {bad[0]!r}.",
                    )
                ]
            parsed = [int(v) for v in fv.string_counts]
            lo, hi = min(parsed), max(parsed)
        else:
            return []
        return self._range(fv, domain, lo, hi, "INT_TYPE_SMALL_INT", "INT_TYPE_BIG_INT")

    def _range(self, fv, domain, lo, hi, small, big) -> list[_Reason]:
        out = []
        if domain.HasField("min") and lo < domain.min:
            out.append(
                _Reason(
                    small,
                    "Value out of range",
                    f"Feature {fv.name!r}: values must be at least {_fmt(domain.min)} "
                    f"but the smallest is {_fmt(lo)}.",
                )
            )
        if domain.HasField("max") and hi > domain.max:
            out.append(
                _Reason(
                    big,
                    "Value out of range",
                    f"Feature {fv.name!r}: values must be at most {_fmt(domain.max)} "
                    f"but the largest is {_fmt(hi)}.",
                )
            )
        return out

    def _check_float_domain(self, fv, domain) -> list[_Reason]:
        out = []
        if fv.stats_type == FNS.FLOAT and fv.has_num_stats:
            # Compared as float32, the type of the data (and of TFDV's check).
            lo = float(np.float32(fv.num_stats.min))
            hi = float(np.float32(fv.num_stats.max))
            out += self._range(fv, domain, lo, hi, "FLOAT_TYPE_SMALL_FLOAT", "FLOAT_TYPE_BIG_FLOAT")
        elif fv.stats_type == FNS.STRING and fv.string_counts:
            parsed = []
            for v in fv.string_counts:
                try:
                    parsed.append(float(v))
                except ValueError:
                    return [
                        _Reason(
                            "FLOAT_TYPE_STRING_NOT_FLOAT",
                            "Non-numeric values",
                            f"Feature {fv.name!r} has a float domain but values that are "
                            f"not numbers, such as {v!r}.",
                        )
                    ]
            out += self._range(
                fv,
                domain,
                min(parsed),
                max(parsed),
                "FLOAT_TYPE_SMALL_FLOAT",
                "FLOAT_TYPE_BIG_FLOAT",
            )
        if fv.has_num_stats:
            if domain.disallow_nan and fv.num_nan > 0:
                out.append(
                    _Reason(
                        "FLOAT_TYPE_HAS_NAN",
                        "NaN not allowed",
                        f"Feature {fv.name!r}: the schema disallows NaN but "
                        f"{_fmt(fv.num_nan)} value(s) are NaN.",
                    )
                )
            ns = fv.num_stats
            if domain.disallow_inf and (math.isinf(ns.min) or math.isinf(ns.max)):
                seen = " and ".join(
                    s for s, x in (("-inf", ns.min), ("+inf", ns.max)) if math.isinf(x)
                )
                out.append(
                    _Reason(
                        "FLOAT_TYPE_HAS_INF",
                        "Infinity not allowed",
                        f"Feature {fv.name!r}: the schema disallows infinities but "
                        f"the data has {seen}.",
                    )
                )
        return out

    def _check_bool_domain(self, fv, domain) -> list[_Reason]:
        if fv.stats_type == FNS.INT and fv.has_num_stats:
            out = []
            if fv.num_stats.min < 0:
                out.append(
                    _Reason(
                        "BOOL_TYPE_SMALL_INT",
                        "Non-boolean values",
                        f"Feature {fv.name!r} is boolean (0 or 1) but has values as "
                        f"small as {_fmt(fv.num_stats.min)}.",
                    )
                )
            elif fv.num_stats.max > 1:  # one reason per feature, the low end first (as TFDV)
                out.append(
                    _Reason(
                        "BOOL_TYPE_BIG_INT",
                        "Non-boolean values",
                        f"Feature {fv.name!r} is boolean (0 or 1) but has values as "
                        f"large as {_fmt(fv.num_stats.max)}.",
                    )
                )
            return out
        if fv.stats_type == FNS.FLOAT and fv.has_num_stats:
            ns = fv.num_stats
            if ns.min < 0 or ns.max > 1:
                return [
                    _Reason(
                        "BOOL_TYPE_UNEXPECTED_FLOAT",
                        "Non-boolean values",
                        f"Feature {fv.name!r} is boolean (0 or 1) but has values from "
                        f"{_fmt(ns.min)} to {_fmt(ns.max)}.",
                    )
                ]
            return []
        if fv.stats_type == FNS.STRING:
            allowed = {v for v in (domain.true_value, domain.false_value) if v}
            bad = sorted(v for v in fv.string_counts if v not in allowed)
            if bad:
                return [
                    _Reason(
                        "BOOL_TYPE_UNEXPECTED_STRING",
                        "Non-boolean values",
                        f"Feature {fv.name!r} is boolean (expected "
                        f"{' or '.join(repr(v) for v in sorted(allowed)) or 'nothing'}) "
                        f"but has {', '.join(repr(v) for v in bad[:MAX_QUOTED_VALUES])}.",
                    )
                ]
        return []

    def _check_unique(self, fv, feature) -> list[_Reason]:
        uc = feature.unique_constraints
        unique = fv.unique
        if unique is None:
            return [
                _Reason(
                    "FEATURE_TYPE_NO_UNIQUE",
                    "Distinct values not counted",
                    f"Feature {fv.name!r} has unique_constraints but its statistics do not "
                    "count distinct values (it is not a string or categorical feature).",
                )
            ]
        out = []
        if unique < uc.min:
            out.append(
                _Reason(
                    "FEATURE_TYPE_LOW_UNIQUE",
                    "Too few distinct values",
                    f"Feature {fv.name!r}: expected at least {uc.min} distinct values "
                    f"but found {unique}.",
                )
            )
        if unique > uc.max:
            out.append(
                _Reason(
                    "FEATURE_TYPE_HIGH_UNIQUE",
                    "Too many distinct values",
                    f"Feature {fv.name!r}: expected at most {uc.max} distinct values "
                    f"but found {unique}.",
                )
            )
        return out

    def _compare(self, fv, comparator, kind: str, drift_skew) -> list[_Reason]:
        has_linf = comparator.infinity_norm.HasField("threshold")
        has_jsd = comparator.jensen_shannon_divergence.HasField("threshold")
        if not (has_linf or has_jsd):
            return []
        control_view = self.previous if kind == "drift" else self.serving
        if control_view is None:
            return []
        this_name, other_name = (
            ("current", "previous") if kind == "drift" else ("training", "serving")
        )
        measurements = (
            drift_skew.drift_measurements if kind == "drift" else drift_skew.skew_measurements
        )
        control = control_view.get(fv.name)
        if control is None:
            return [
                _Reason(
                    "COMPARATOR_CONTROL_DATA_MISSING",
                    f"Feature absent from {other_name} data",
                    f"Feature {fv.name!r} has a {kind} comparator but the {other_name} "
                    "statistics do not include it.",
                )
            ]
        out = []
        if has_linf:
            threshold = comparator.infinity_norm.threshold
            value_key, value = metrics.l_infinity(fv.string_counts, control.string_counts)
            measurements.add(type=Measurement.L_INFTY, value=value, threshold=threshold)
            if value > threshold:
                a = fv.string_counts.get(value_key, 0.0) / (sum(fv.string_counts.values()) or 1)
                b = control.string_counts.get(value_key, 0.0) / (
                    sum(control.string_counts.values()) or 1
                )
                out.append(
                    _Reason(
                        "COMPARATOR_L_INFTY_HIGH",
                        f"L-infinity {kind} above threshold",
                        f"Feature {fv.name!r}: the L-infinity distance between {this_name} and "
                        f"{other_name} is {value:.6g}, above the threshold {threshold:.6g}; the value "
                        f"that moved most is {value_key!r} ({100 * b:.3g}% {other_name}, "
                        f"{100 * a:.3g}% {this_name}).",
                    )
                )
        if has_jsd:
            threshold = comparator.jensen_shannon_divergence.threshold
            value = _jensen_shannon(fv, control, comparator.jensen_shannon_divergence)
            if value is not None:
                measurements.add(
                    type=Measurement.JENSEN_SHANNON_DIVERGENCE, value=value, threshold=threshold
                )
                if value > threshold:
                    out.append(
                        _Reason(
                            "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH",
                            f"Jensen-Shannon {kind} above threshold",
                            f"Feature {fv.name!r}: the approximate Jensen-Shannon divergence between "
                            f"{this_name} and {other_name} is {value:.6g}, above the threshold "
                            f"{threshold:.6g}{_moments(fv, control, this_name, other_name)}.",
                        )
                    )
        return out

    def _check_dataset(self) -> list[_Reason]:
        if not self.schema.HasField("dataset_constraints"):
            return []
        dc = self.schema.dataset_constraints
        n = self.view.num_examples
        out = []
        if dc.HasField("min_examples_count") and n < dc.min_examples_count:
            out.append(
                _Reason(
                    "DATASET_LOW_NUM_EXAMPLES",
                    "Too few examples",
                    f"The dataset has {_fmt(n)} examples; the schema expects at least "
                    f"{dc.min_examples_count}.",
                )
            )
        if dc.HasField("max_examples_count") and n > dc.max_examples_count:
            out.append(
                _Reason(
                    "DATASET_HIGH_NUM_EXAMPLES",
                    "Too many examples",
                    f"The dataset has {_fmt(n)} examples; the schema expects at most "
                    f"{dc.max_examples_count}.",
                )
            )
        cmp_ = dc.num_examples_drift_comparator
        if dc.HasField("num_examples_drift_comparator") and self.previous is not None:
            prev = self.previous.num_examples
            if prev > 0:
                ratio = n / prev
                if cmp_.HasField("max_fraction_threshold") and ratio > cmp_.max_fraction_threshold:
                    out.append(
                        _Reason(
                            "COMPARATOR_HIGH_NUM_EXAMPLES",
                            "More examples than the baseline allows",
                            f"The dataset has {_fmt(n)} examples, {ratio:.4g} times the previous "
                            f"{_fmt(prev)}; the schema allows at most {cmp_.max_fraction_threshold:.4g} times.",
                        )
                    )
                if cmp_.HasField("min_fraction_threshold") and ratio < cmp_.min_fraction_threshold:
                    out.append(
                        _Reason(
                            "COMPARATOR_LOW_NUM_EXAMPLES",
                            "Fewer examples than the baseline allows",
                            f"The dataset has {_fmt(n)} examples, {ratio:.4g} times the previous "
                            f"{_fmt(prev)}; the schema expects at least {cmp_.min_fraction_threshold:.4g} times.",
                        )
                    )
        return out


def _presence_text(feature) -> str:
    p = feature.presence
    parts = []
    if p.min_fraction > 0:
        parts.append(f"in at least {_fmt(100 * p.min_fraction)}% of examples")
    if p.min_count > 0:
        parts.append(f"in at least {p.min_count} example(s)")
    return ", ".join(parts) or "present"


def _moments(fv, control, this_name, other_name) -> str:
    if not (fv.has_num_stats and control.has_num_stats):
        return ""
    a, b = fv.num_stats, control.num_stats
    return (
        f"; mean {b.mean:.4g} ({other_name}) -> {a.mean:.4g} ({this_name}), "
        f"std dev {b.std_dev:.4g} -> {a.std_dev:.4g}"
    )


def _jensen_shannon(fv: FeatureView, control: FeatureView, jsd) -> float | None:
    if fv.string_counts and control.string_counts:
        return metrics.jensen_shannon_counts(fv.string_counts, control.string_counts)
    kind = statistics_pb2.Histogram.STANDARD
    if jsd.HasField("source") and jsd.source.type == jsd.source.QUANTILES:
        kind = statistics_pb2.Histogram.QUANTILES
    h1, h2 = fv.histogram(kind), control.histogram(kind)
    if h1 is None or h2 is None:
        return None
    return metrics.jensen_shannon_histograms(h1, h2)


def validate_statistics(
    statistics,
    schema: schema_pb2.Schema,
    *,
    environment: str | None = None,
    previous_statistics=None,
    serving_statistics=None,
    options: ValidationOptions | None = None,
) -> anomalies_pb2.Anomalies:
    """Checks ``statistics`` against ``schema``; returns the ``Anomalies`` found.

    Args:
      statistics: a ``DatasetFeatureStatisticsList`` (or one dataset).
      schema: the curated tensorflow-metadata ``Schema``.
      environment: the environment of the statistics (overrides ``options``).
      previous_statistics: a baseline (the previous span) for the features'
        ``drift_comparator`` and the dataset's ``num_examples_drift_comparator``.
      serving_statistics: serving data for the features' ``skew_comparator``.
      options: :class:`ValidationOptions`.
    """
    options = options or ValidationOptions()
    if environment is not None:
        options = dataclasses.replace(options, environment=environment)
    view = DatasetView(select_dataset(statistics, options.dataset))
    previous = (
        DatasetView(select_dataset(previous_statistics, options.dataset))
        if previous_statistics is not None
        else None
    )
    serving = (
        DatasetView(select_dataset(serving_statistics, options.dataset))
        if serving_statistics is not None
        else None
    )
    return _Validator(schema, view, options, previous, serving).run()


def has_errors(anomalies: anomalies_pb2.Anomalies) -> bool:
    """True if any anomaly (per feature or of the dataset) has severity ERROR."""
    if any(info.severity == ERROR for info in anomalies.anomaly_info.values()):
        return True
    return anomalies.dataset_anomaly_info.severity == ERROR and bool(
        anomalies.dataset_anomaly_info.reason
    )


def anomaly_pairs(anomalies: anomalies_pb2.Anomalies) -> set[tuple[str, str]]:
    """``{(feature, anomaly type name)}``, with ``""`` as the feature of dataset anomalies."""
    out = {
        (name, AnomalyInfo.Type.Name(r.type))
        for name, info in anomalies.anomaly_info.items()
        for r in info.reason
    }
    out |= {("", AnomalyInfo.Type.Name(r.type)) for r in anomalies.dataset_anomaly_info.reason}
    return out

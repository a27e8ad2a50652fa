"""``infer_schema``: a first tensorflow-metadata ``Schema`` from statistics.

The rules (the same as TFDV's ``infer_schema``, so both give the same schema
from the same statistics; see README.md):

* type: the statistics' type, ``STRING`` and ``BYTES`` both becoming ``BYTES``;
* presence: ``min_count: 1`` when the feature was seen at all (else 0) and
  ``min_fraction: 1`` when it was never missing;
* valency: when every example holding the feature had the same number ``k > 0``
  of values, ``shape {dim {size: k}}`` if it was never missing (with
  ``infer_feature_shape``), else ``value_count {min: k max: k}``; when the
  number varied but never fell to 0, ``value_count {min: 1}``;
* domains, from the values the statistics list (the rank histogram): one or two
  strings out of ``true/TRUE/1`` and ``false/FALSE/0`` give a ``bool_domain``
  with those spellings; strings that are all integers give an (open)
  ``int_domain``; otherwise at most ``max_string_domain_size`` strings give a
  top-level ``string_domain`` named after the feature, values sorted. INT
  features whose values are exactly 0 and 1 get an empty ``bool_domain``.
  Statistics of type ``BYTES`` (binary data) get no domain; INT features
  whose statistics list values as strings (categorical) get a string domain.
* with ``infer_int_ranges`` (not in TFDV, off by default), INT features that
  have no bool domain get ``int_domain {min max}`` of the observed range: a
  tight range a person loosens where needed.

A person then edits the schema (tightens a domain, relaxes a presence, adds
environments and drift or skew comparators) and feeds it back to validation.
"""

from __future__ import annotations

import dataclasses
import re

from tensorflow_metadata.proto.v0 import schema_pb2, statistics_pb2

# Statistics read as validation reads them (TFDV's reading), so both see the same figures.
from conveyor.components.validation import DatasetView, select_dataset

FNS = statistics_pb2.FeatureNameStatistics

DEFAULT_MAX_STRING_DOMAIN_SIZE = 100
_TRUE_SPELLINGS = ("true", "TRUE", "1")
_FALSE_SPELLINGS = ("false", "FALSE", "0")
_INT_RE = re.compile(r"^[+-]?[0-9]+$")


@dataclasses.dataclass(frozen=True)
class InferOptions:
    """How :func:`infer_schema` builds a schema.

    Attributes:
      max_string_domain_size: most distinct strings a feature may show to get a
        string domain (TFDV's default, 100).
      infer_feature_shape: give always-present fixed-valency features a
        ``shape`` instead of a ``value_count``.
      infer_int_ranges: give INT features ``int_domain {min max}`` of their
        observed range (Conveyor's addition; off by default, as in TFDV).
      dataset: name of the dataset to read in a sliced statistics list
        (default: the first, the whole data).
    """

    max_string_domain_size: int = DEFAULT_MAX_STRING_DOMAIN_SIZE
    infer_feature_shape: bool = True
    infer_int_ranges: bool = False
    dataset: str | None = None

    def __post_init__(self):
        if self.max_string_domain_size < 0:
            raise ValueError("max_string_domain_size must not be negative")


def infer_schema(statistics, options: InferOptions | None = None) -> schema_pb2.Schema:
    """A ``Schema`` describing the data summarized by ``statistics``.

    Args:
      statistics: a ``DatasetFeatureStatisticsList`` (or one dataset of it).
      options: :class:`InferOptions` (TFDV's defaults when omitted).
    """
    options = options or InferOptions()
    view = DatasetView(select_dataset(statistics, options.dataset))
    schema = schema_pb2.Schema()
    domain_names: set[str] = set()
    for fv in view:
        f = schema.feature.add()
        f.name = fv.name
        f.type = fv.schema_type
        _presence_and_valency(fv, f, options)
        _domain(fv, f, schema, domain_names, options)
    return schema


def _presence_and_valency(fv, f: schema_pb2.Feature, options: InferOptions) -> None:
    present = fv.num_present
    f.presence.min_count = 1 if present >= 1 else 0
    if present == 0:
        return
    always = fv.num_missing == 0
    if always:
        f.presence.min_fraction = 1.0
    lo, hi = fv.min_num_values, fv.max_num_values
    if lo <= 0:
        return
    if lo == hi:
        if always and options.infer_feature_shape:
            f.shape.dim.add().size = lo
        else:
            f.value_count.min = lo
            f.value_count.max = hi
    else:
        f.value_count.min = 1


def _bool_spellings(values: list[str]) -> tuple[str | None, str | None] | None:
    """(true spelling, false spelling) if the values read as booleans, else None."""
    if not 1 <= len(values) <= 2:
        return None
    true_value = false_value = None
    for v in values:
        if v in _TRUE_SPELLINGS and true_value is None:
            true_value = v
        elif v in _FALSE_SPELLINGS and false_value is None:
            false_value = v
        else:
            return None
    return true_value, false_value


def _unique_domain_name(name: str, taken: set[str]) -> str:
    candidate, i = name, 1
    while candidate in taken:
        i += 1
        candidate = f"{name}{i}"
    taken.add(candidate)
    return candidate


def _domain(
    fv, f: schema_pb2.Feature, schema: schema_pb2.Schema, taken: set[str], options: InferOptions
) -> None:
    if fv.stats_type == FNS.BYTES:
        return  # binary data: no domain
    values = list(fv.string_counts)
    if fv.stats_type == FNS.INT and fv.has_num_stats and not values:
        ns = fv.num_stats
        if ns.min == 0 and ns.max == 1:
            f.bool_domain.SetInParent()
        elif options.infer_int_ranges and fv.num_present > 0 and fv.total_values > 0:
            f.int_domain.min = int(ns.min)
            f.int_domain.max = int(ns.max)
        return
    if not values:
        return
    spellings = _bool_spellings(values) if fv.stats_type == FNS.STRING else None
    if spellings is not None:
        f.bool_domain.SetInParent()
        if spellings[0] is not None:
            f.bool_domain.true_value = spellings[0]
        if spellings[1] is not None:
            f.bool_domain.false_value = spellings[1]
        return
    if fv.stats_type == FNS.STRING and all(_INT_RE.match(v) for v in values):
        f.int_domain.SetInParent()
        return
    if len(values) <= options.max_string_domain_size:
        domain = schema.string_domain.add()
        domain.name = _unique_domain_name(fv.name, taken)
        domain.value.extend(sorted(values, key=lambda v: v.encode("utf-8")))
        f.domain = domain.name

"""Parity of Conveyor's schema inference and validation with TFDV's on the same statistics.

A dataset (palmerpenguins, in Conveyor's RecordBatch format) is corrupted in the
ways real pipelines break: a dropped column, a new column, unseen categories, a
shifted numeric distribution, a jump in missing values, a type change. Both
``tfdv.infer_schema``/``tfdv.validate_statistics`` and ours run on the same
statistics, computed by TFDV and by Conveyor's GenerateStatistics; the
(feature, anomaly type) pairs must be equal and the drift and skew numbers
within 1e-6. Hand-written statistics cover the remaining anomaly kinds.
"""

from __future__ import annotations

import warnings

import numpy as np
import pyarrow as pa
import pytest
from google.protobuf import text_format
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from conveyor.beam_utils.arrow import column_type, to_column
from conveyor.components.schema_gen import infer_schema
from conveyor.components.statistics import StatsCombineFn, StatsOptions
from conveyor.components.validation import anomaly_pairs, validate_statistics

warnings.filterwarnings("ignore")
tfdv = pytest.importorskip("tensorflow_data_validation")
from tensorflow_data_validation.statistics import stats_impl  # noqa: E402

TYPES = {
    "species": "BYTES",
    "island": "BYTES",
    "bill_length_mm": "FLOAT",
    "bill_depth_mm": "FLOAT",
    "flipper_length_mm": "INT",
    "body_mass_g": "INT",
    "sex": "BYTES",
    "year": "INT",
}


def _penguins() -> dict[str, pa.Array]:
    import pandas as pd

    from conveyor.beam_utils.datasets import penguins_csv

    df = pd.read_csv(penguins_csv())
    return {
        c: to_column(pa.array(df[c], from_pandas=True), column_type(t)) for c, t in TYPES.items()
    }


def _batch(cols: dict[str, pa.Array]) -> pa.RecordBatch:
    return pa.RecordBatch.from_arrays(list(cols.values()), names=list(cols))


def _scalars(col: pa.Array) -> list:
    return [v[0] if v else None for v in col.to_pylist()]


def _with(cols, name, values, type_name):
    out = dict(cols)
    if not isinstance(values, pa.Array):
        values = pa.array(values)
    out[name] = to_column(values, column_type(type_name))
    return out


def _variants(base: dict[str, pa.Array]) -> dict[str, pa.RecordBatch]:
    n = len(base["species"])
    rng = np.random.default_rng(7)
    v = {}
    v["dropped_column"] = _batch({k: c for k, c in base.items() if k != "island"})
    v["new_column"] = _batch(_with(base, "tag", [f"t{i % 5}".encode() for i in range(n)], "BYTES"))
    species = _scalars(base["species"])
    unseen = [b"Emperor" if i % 4 == 0 else s for i, s in enumerate(species)]
    sex = _scalars(base["sex"])
    v["unseen_categories"] = _batch(
        _with(
            _with(base, "species", unseen, "BYTES"),
            "sex",
            [b"unknown" if i % 9 == 0 else s for i, s in enumerate(sex)],
            "BYTES",
        )
    )
    bill = np.array([np.nan if x is None else x for x in _scalars(base["bill_length_mm"])])
    v["shifted_numeric"] = _batch(
        _with(base, "bill_length_mm", pa.array(bill * 1.3 + 8, from_pandas=True), "FLOAT")
    )
    year = _scalars(base["year"])
    island = _scalars(base["island"])
    holes = rng.random(n) < 0.4
    v["missing_jump"] = _batch(
        _with(
            _with(base, "year", [None if h else y for h, y in zip(holes, year)], "INT"),
            "island",
            [None if h else s for h, s in zip(holes, island)],
            "BYTES",
        )
    )
    v["type_change"] = _batch(_with(base, "year", [str(y).encode() + b"y" for y in year], "BYTES"))
    mass = _scalars(base["body_mass_g"])
    v["int_to_float"] = _batch(
        _with(base, "body_mass_g", [None if m is None else m / 1000.0 for m in mass], "FLOAT")
    )
    shuffled = np.array(island, dtype=object)
    v["category_mix"] = _batch(
        _with(base, "island", list(np.where(rng.random(n) < 0.6, b"Biscoe", shuffled)), "BYTES")
    )
    return v


def _tfdv_stats(batch: pa.RecordBatch) -> statistics_pb2.DatasetFeatureStatisticsList:
    result = stats_impl.generate_statistics_in_memory(batch, tfdv.StatsOptions())
    return result


def _our_stats(batch: pa.RecordBatch) -> statistics_pb2.DatasetFeatureStatisticsList:
    fn = StatsCombineFn(StatsOptions())
    acc = fn.add_input(fn.create_accumulator(), batch)
    out = statistics_pb2.DatasetFeatureStatisticsList()
    out.datasets.append(fn.extract_output(acc))
    return out


@pytest.fixture(scope="module")
def data():
    base = _penguins()
    return _batch(base), _variants(base)


GENERATORS = {"tfdv_stats": _tfdv_stats, "conveyor_stats": _our_stats}


def _curate(schema: schema_pb2.Schema) -> schema_pb2.Schema:
    """What a person adds: drift/skew comparators on every feature, a SERVING environment."""
    schema = schema_pb2.Schema.FromString(schema.SerializeToString())
    for f in schema.feature:
        if f.type == schema_pb2.BYTES:
            f.drift_comparator.infinity_norm.threshold = 0.1
            f.skew_comparator.infinity_norm.threshold = 0.1
        else:
            f.drift_comparator.jensen_shannon_divergence.threshold = 0.1
            f.skew_comparator.jensen_shannon_divergence.threshold = 0.1
    schema.default_environment.extend(["TRAINING", "SERVING"])
    for f in schema.feature:
        if f.name == "species":
            f.not_in_environment.append("SERVING")
    return schema


def _measurements(anomalies) -> dict[tuple[str, str, int], float]:
    out = {}
    for info in anomalies.drift_skew_info:
        name = info.path.step[0]
        for m in info.drift_measurements:
            out[(name, "drift", m.type)] = m.value
        for m in info.skew_measurements:
            out[(name, "skew", m.type)] = m.value
    return out


def _assert_same(theirs, ours, context=""):
    assert anomaly_pairs(ours) == anomaly_pairs(theirs), context
    m_theirs, m_ours = _measurements(theirs), _measurements(ours)
    assert set(m_ours) == set(m_theirs), context
    for key, value in m_theirs.items():
        assert m_ours[key] == pytest.approx(value, abs=1e-6), (context, key)


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_inferred_schema_equals_tfdv(data, generator):
    base, variants = data
    for name, batch in [("base", base), *variants.items()]:
        stats = GENERATORS[generator](batch)
        ours = infer_schema(stats)
        theirs = tfdv.infer_schema(stats)
        assert text_format.MessageToString(ours) == text_format.MessageToString(theirs), name


@pytest.mark.parametrize("generator", sorted(GENERATORS))
def test_corrupted_variants_same_anomalies_as_tfdv(data, generator):
    base, variants = data
    make = GENERATORS[generator]
    base_stats = make(base)
    schema = tfdv.infer_schema(base_stats)
    curated = _curate(schema)
    expected = {
        "dropped_column": {("island", "SCHEMA_MISSING_COLUMN")},
        "new_column": {("tag", "SCHEMA_NEW_COLUMN")},
        "unseen_categories": {
            ("species", "ENUM_TYPE_UNEXPECTED_STRING_VALUES"),
            ("sex", "ENUM_TYPE_UNEXPECTED_STRING_VALUES"),
        },
        "missing_jump": {
            ("year", "FEATURE_TYPE_LOW_FRACTION_PRESENT"),
            ("year", "INVALID_FEATURE_SHAPE"),
            ("island", "FEATURE_TYPE_LOW_FRACTION_PRESENT"),
            ("island", "INVALID_FEATURE_SHAPE"),
        },
        "type_change": {("year", "UNEXPECTED_DATA_TYPE")},
        "int_to_float": {("body_mass_g", "UNEXPECTED_DATA_TYPE")},
    }
    for name, batch in variants.items():
        stats = make(batch)
        ours = validate_statistics(stats, schema)
        theirs = tfdv.validate_statistics(stats, schema)
        _assert_same(theirs, ours, name)
        if name in expected:
            assert expected[name] <= anomaly_pairs(ours), name
        # Drift against the base statistics and skew against the variant as serving data.
        ours = validate_statistics(
            base_stats, curated, previous_statistics=stats, serving_statistics=stats
        )
        theirs = tfdv.validate_statistics(
            base_stats, curated, previous_statistics=stats, serving_statistics=stats
        )
        _assert_same(theirs, ours, f"{name} drift/skew")
        ours = validate_statistics(stats, curated, environment="SERVING")
        theirs = tfdv.validate_statistics(stats, curated, environment="SERVING")
        _assert_same(theirs, ours, f"{name} SERVING")
    shifted = make(variants["shifted_numeric"])
    drift = validate_statistics(shifted, curated, previous_statistics=base_stats)
    assert ("bill_length_mm", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH") in anomaly_pairs(drift)
    mixed = make(variants["category_mix"])
    drift = validate_statistics(mixed, curated, previous_statistics=base_stats)
    assert ("island", "COMPARATOR_L_INFTY_HIGH") in anomaly_pairs(drift)
    # The label is kept out of SERVING: present there, it is unexpected.
    serving = validate_statistics(base_stats, curated, environment="SERVING")
    assert anomaly_pairs(serving) == {("species", "SCHEMA_NEW_COLUMN")}


def test_anomalies_are_readable_by_tfdv(data, tmp_path):
    base, variants = data
    stats = _tfdv_stats(variants["unseen_categories"])
    anomalies = validate_statistics(stats, tfdv.infer_schema(_tfdv_stats(base)))
    path = tmp_path / "anomalies.pbtxt"
    path.write_text(text_format.MessageToString(anomalies))
    loaded = tfdv.load_anomalies_text(str(path))
    assert set(loaded.anomaly_info) == {"species", "sex"}
    from tensorflow_data_validation.utils.display_util import get_anomalies_dataframe

    assert len(get_anomalies_dataframe(loaded)) == 2


# ---------------------------------------------------------------------------------------
# Hand-written statistics for the anomaly kinds the variants do not reach.


def _feature_stats(name, kind, present=100, missing=0, lo=1, hi=1, **extra) -> str:
    common = (
        f"common_stats {{ num_non_missing: {present} num_missing: {missing} "
        f"min_num_values: {lo} max_num_values: {hi} avg_num_values: {(lo + hi) / 2} "
        f"tot_num_values: {int(present * (lo + hi) / 2)} }}"
    )
    if kind in ("INT", "FLOAT"):
        body = f"num_stats {{ {common} {extra.get('num', '')} }}"
    else:
        labels = extra.get("labels", {})
        buckets = " ".join(
            f'buckets {{ label: "{k}" sample_count: {v} }}' for k, v in labels.items()
        )
        body = f"string_stats {{ {common} unique: {len(labels)} rank_histogram {{ {buckets} }} }}"
    return f'features {{ path {{ step: "{name}" }} type: {kind} {body} }}'


def _stats(*features, n=100) -> statistics_pb2.DatasetFeatureStatisticsList:
    text = f"datasets {{ num_examples: {n} {' '.join(features)} }}"
    return text_format.Parse(text, statistics_pb2.DatasetFeatureStatisticsList())


SCHEMA = """
feature { name: "f" type: FLOAT float_domain { min: 0 max: 10 disallow_nan: true disallow_inf: true } }
feature { name: "i" type: INT int_domain { min: 0 max: 5 } }
feature { name: "b" type: INT bool_domain { } }
feature { name: "sb" type: BYTES bool_domain { true_value: "yes" false_value: "no" } }
feature { name: "v" type: INT value_count { min: 2 max: 3 } }
feature { name: "p" type: INT presence { min_count: 150 min_fraction: 0.9 } }
feature { name: "s" type: BYTES domain: "s" distribution_constraints { min_domain_mass: 0.9 } }
feature { name: "u" type: BYTES unique_constraints { min: 3 max: 4 } }
feature { name: "si" type: BYTES int_domain { min: 0 } }
feature { name: "sf" type: BYTES float_domain { } }
feature { name: "gone" type: INT presence { min_count: 1 } }
feature { name: "opt" type: INT presence { min_count: 0 } }
feature { name: "old" type: INT presence { min_count: 1 } deprecated: true }
feature { name: "never" type: INT presence { min_count: 1 } }
string_domain { name: "s" value: "a" value: "b" }
dataset_constraints { min_examples_count: 200 max_examples_count: 1000 }
"""


def _hand_stats(n=100):
    return _stats(
        _feature_stats(
            "f",
            "FLOAT",
            num="min: -1 max: inf histograms { num_nan: 3 type: STANDARD "
            "buckets { low_value: -1 high_value: 5 sample_count: 50 } "
            "buckets { low_value: 5 high_value: inf sample_count: 47 } }",
        ),
        _feature_stats("i", "INT", num="min: -2 max: 9"),
        _feature_stats("b", "INT", num="min: -1 max: 2"),
        _feature_stats("sb", "STRING", labels={"yes": 10, "maybe": 5}),
        _feature_stats("v", "INT", lo=1, hi=4, num="min: 0 max: 1"),
        _feature_stats("p", "INT", present=80, missing=20, num="min: 0 max: 1"),
        _feature_stats("s", "STRING", labels={"a": 80, "b": 15, "c": 5}),
        _feature_stats("u", "STRING", labels={"x": 50, "y": 50}),
        _feature_stats("si", "STRING", labels={"12": 50, "-3": 50}),
        _feature_stats("sf", "STRING", labels={"1.5": 50, "abc": 50}),
        _feature_stats("old", "FLOAT"),
        _feature_stats("never", "INT", present=0, missing=100, lo=0, hi=0),
        n=n,
    )


@pytest.mark.parametrize("environment", [None])
def test_hand_written_anomaly_kinds_match_tfdv(environment):
    schema = text_format.Parse(SCHEMA, schema_pb2.Schema())
    stats = _hand_stats()
    ours = validate_statistics(stats, schema, environment=environment)
    theirs = tfdv.validate_statistics(stats, schema, environment=environment)
    assert anomaly_pairs(ours) == anomaly_pairs(theirs)
    pairs = anomaly_pairs(ours)
    for pair in [
        ("f", "FLOAT_TYPE_SMALL_FLOAT"),
        ("f", "FLOAT_TYPE_HAS_NAN"),
        ("f", "FLOAT_TYPE_HAS_INF"),
        ("i", "INT_TYPE_SMALL_INT"),
        ("i", "INT_TYPE_BIG_INT"),
        ("v", "FEATURE_TYPE_LOW_NUMBER_VALUES"),
        ("v", "FEATURE_TYPE_HIGH_NUMBER_VALUES"),
        ("p", "FEATURE_TYPE_LOW_NUMBER_PRESENT"),
        ("p", "FEATURE_TYPE_LOW_FRACTION_PRESENT"),
        ("gone", "SCHEMA_MISSING_COLUMN"),
        ("never", "FEATURE_TYPE_NOT_PRESENT"),
        ("", "DATASET_LOW_NUM_EXAMPLES"),
    ]:
        assert pair in pairs, pair
    assert ("opt", "SCHEMA_MISSING_COLUMN") not in pairs
    assert not any(name == "old" for name, _ in pairs)
    for info in ours.anomaly_info.values():
        assert info.severity == anomalies_pb2.AnomalyInfo.ERROR
        assert info.description and info.short_description


def test_dataset_anomalies_match_tfdv():
    schema = text_format.Parse(SCHEMA, schema_pb2.Schema())
    schema.dataset_constraints.num_examples_drift_comparator.min_fraction_threshold = 0.8
    schema.dataset_constraints.num_examples_drift_comparator.max_fraction_threshold = 1.2
    for n, previous in [(2000, 1000), (300, 1000), (500, 500)]:
        stats, prev = _hand_stats(n), _hand_stats(previous)
        ours = validate_statistics(stats, schema, previous_statistics=prev)
        theirs = tfdv.validate_statistics(stats, schema, previous_statistics=prev)
        assert anomaly_pairs(ours) == anomaly_pairs(theirs), (n, previous)


def _hist(*buckets, nan=0, kind="STANDARD"):
    b = " ".join(
        f"buckets {{ low_value: {lo} high_value: {hi} sample_count: {c} }}" for lo, hi, c in buckets
    )
    return f"histograms {{ num_nan: {nan} type: {kind} {b} }}"


HISTOGRAM_CASES = [
    # (current buckets, previous buckets)
    ([(0, 1, 10), (1, 2, 10)], [(0, 1, 10), (1, 2, 10)]),
    ([(0, 1, 10), (1, 2, 30)], [(0, 1, 25), (1, 2, 5)]),
    ([(0, 2, 10), (2, 4, 30)], [(1, 3, 25), (3, 5, 5)]),
    ([(0, 1, 10), (1, 1, 5), (1, 3, 4)], [(0.5, 1, 7), (1, 1, 2)]),
    ([(0, 10, 100)], [(20, 30, 100)]),
    ([(-5, 0, 3), (0, 5, 9), (5, 6, 2)], [(-5, 0, 4), (0, 5, 8)]),
    ([(0, 1, 10), (1, 1, 5)], [(0, 1, 7), (1, 1, 5)]),
]
_JSD_SCHEMA = 'feature { name: "x" type: FLOAT drift_comparator { jensen_shannon_divergence { threshold: 0.01 } } }'


def _jsd_pair(cur, prev, nan_cur=0, nan_prev=0):
    a = _stats(_feature_stats("x", "FLOAT", num=f"min: 0 max: 1 {_hist(*cur, nan=nan_cur)}"))
    b = _stats(_feature_stats("x", "FLOAT", num=f"min: 0 max: 1 {_hist(*prev, nan=nan_prev)}"))
    return a, b


@pytest.mark.parametrize("case", HISTOGRAM_CASES)
def test_jensen_shannon_matches_tfdv(case):
    schema = text_format.Parse(_JSD_SCHEMA, schema_pb2.Schema())
    a, b = _jsd_pair(*case)
    ours = validate_statistics(a, schema, previous_statistics=b)
    theirs = tfdv.validate_statistics(a, schema, previous_statistics=b)
    _assert_same(theirs, ours, str(case))


def test_jensen_shannon_nan_and_infinity_differ_from_tfdv_on_purpose():
    """NaN is compared with NaN, infinite mass with infinite mass (see metrics.py)."""
    from conveyor.components.validation.metrics import jensen_shannon_histograms

    schema = text_format.Parse(_JSD_SCHEMA, schema_pb2.Schema())
    a, b = _jsd_pair([(0, 1, 10), (1, "inf", 3)], [(0, 1, 10), (1, "inf", 3)], 2, 2)
    ours = validate_statistics(a, schema, previous_statistics=b)
    theirs = tfdv.validate_statistics(a, schema, previous_statistics=b)
    assert ours.drift_skew_info[0].drift_measurements[0].value == pytest.approx(0.0, abs=1e-12)
    assert theirs.drift_skew_info[0].drift_measurements[0].value > 0.1  # TFDV: never matches
    assert not ours.anomaly_info
    # NaN counts still move the divergence when the boundaries differ (TFDV drops them there).
    h = {k: statistics_pb2.Histogram() for k in "abc"}
    text_format.Parse("buckets { low_value: 0 high_value: 1 sample_count: 10 } num_nan: 0", h["a"])
    text_format.Parse("buckets { low_value: 0 high_value: 2 sample_count: 10 } num_nan: 0", h["b"])
    text_format.Parse("buckets { low_value: 0 high_value: 2 sample_count: 10 } num_nan: 10", h["c"])
    assert jensen_shannon_histograms(h["a"], h["c"]) > jensen_shannon_histograms(h["a"], h["b"])


@pytest.mark.parametrize(
    "labels",
    [
        ({"a": 10, "b": 10}, {"a": 10, "b": 10}),
        ({"a": 10, "b": 30}, {"a": 30, "b": 10, "c": 5}),
        ({"x": 1}, {"y": 1}),
    ],
)
def test_categorical_distances_match_tfdv(labels):
    cur, prev = labels
    schema = text_format.Parse(
        'feature { name: "c" type: BYTES drift_comparator { infinity_norm { threshold: 0.05 } '
        "jensen_shannon_divergence { threshold: 0.05 } } "
        "skew_comparator { infinity_norm { threshold: 0.05 } } }",
        schema_pb2.Schema(),
    )
    a = _stats(_feature_stats("c", "STRING", labels=cur))
    b = _stats(_feature_stats("c", "STRING", labels=prev))
    ours = validate_statistics(a, schema, previous_statistics=b, serving_statistics=b)
    theirs = tfdv.validate_statistics(a, schema, previous_statistics=b, serving_statistics=b)
    _assert_same(theirs, ours, str(labels))


def test_control_data_missing_matches_tfdv():
    schema = text_format.Parse(
        'feature { name: "c" type: BYTES drift_comparator { infinity_norm { threshold: 0.05 } } }',
        schema_pb2.Schema(),
    )
    a = _stats(_feature_stats("c", "STRING", labels={"a": 3}))
    b = _stats(_feature_stats("d", "STRING", labels={"a": 3}))
    ours = validate_statistics(a, schema, previous_statistics=b)
    theirs = tfdv.validate_statistics(a, schema, previous_statistics=b)
    assert (
        anomaly_pairs(ours) == anomaly_pairs(theirs) == {("c", "COMPARATOR_CONTROL_DATA_MISSING")}
    )

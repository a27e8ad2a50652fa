"""Validation and schema generation: schema inference options, file IO, reports, CLIs, Beam transforms."""

from __future__ import annotations

import warnings

import apache_beam as beam
import numpy as np
import pyarrow as pa
import pytest
from google.protobuf import text_format
from pipeline_helpers import CollectBatches, CollectJson, load_json, load_table
from tensorflow_metadata.proto.v0 import anomalies_pb2, schema_pb2, statistics_pb2

from conveyor.beam_utils.arrow import column_type, make_schema, to_column
from conveyor.beam_utils.options import pipeline_options
from conveyor.components.schema_gen import InferOptions, InferSchema, infer_schema
from conveyor.components.statistics import GenerateStatistics, StatsCombineFn, StatsOptions
from conveyor.components.validation import (
    ValidateExamples,
    ValidateStatistics,
    anomalies_report,
    anomaly_pairs,
    read_schema,
    read_statistics,
    validate_statistics,
    write_schema,
)
from conveyor.components.validation.row_checks import check_batch
from conveyor.orchestration.cli import main

warnings.filterwarnings("ignore")


def _batch(n=200, seed=0, shift=0.0, colors=(b"red", b"green", b"blue")) -> pa.RecordBatch:
    rng = np.random.default_rng(seed)
    cols = {
        "color": to_column(
            pa.array(
                list(np.array(colors, dtype=object)[rng.integers(0, len(colors), n)]),
                pa.large_binary(),
            ),
            column_type("BYTES"),
        ),
        "size": to_column(pa.array(rng.integers(1, 10, n)), column_type("INT")),
        "score": to_column(
            pa.array((rng.normal(0, 1, n) + shift).astype(np.float32)), column_type("FLOAT")
        ),
        "flag": to_column(pa.array(rng.integers(0, 2, n)), column_type("INT")),
    }
    return pa.RecordBatch.from_arrays(
        list(cols.values()),
        schema=make_schema({"color": "BYTES", "size": "INT", "score": "FLOAT", "flag": "INT"}),
    )


def _stats(batch) -> statistics_pb2.DatasetFeatureStatisticsList:
    fn = StatsCombineFn(StatsOptions())
    out = statistics_pb2.DatasetFeatureStatisticsList()
    out.datasets.append(fn.extract_output(fn.add_input(fn.create_accumulator(), batch)))
    return out


def test_infer_schema_domains_presence_and_shape():
    schema = infer_schema(_stats(_batch()))
    by_name = {f.name: f for f in schema.feature}
    assert by_name["color"].domain == "color"
    assert list(schema.string_domain[0].value) == ["blue", "green", "red"]
    assert by_name["flag"].HasField("bool_domain")
    assert by_name["size"].presence.min_fraction == 1.0
    assert [d.size for d in by_name["score"].shape.dim] == [1]
    assert not by_name["size"].HasField("int_domain")
    ranged = infer_schema(
        _stats(_batch()),
        InferOptions(infer_int_ranges=True, infer_feature_shape=False, max_string_domain_size=2),
    )
    by_name = {f.name: f for f in ranged.feature}
    assert (by_name["size"].int_domain.min, by_name["size"].int_domain.max) == (1, 9)
    assert by_name["size"].value_count.min == 1 and by_name["size"].value_count.max == 1
    assert not by_name["color"].HasField("domain") and not ranged.string_domain


def test_schema_and_statistics_files_round_trip(tmp_path):
    stats = _stats(_batch())
    (tmp_path / "FeatureStats.pb").write_bytes(stats.SerializeToString())
    (tmp_path / "stats.pbtxt").write_text(text_format.MessageToString(stats))
    assert read_statistics(str(tmp_path / "FeatureStats.pb")) == stats
    assert read_statistics(str(tmp_path / "stats.pbtxt")) == stats
    schema = infer_schema(stats)
    write_schema(schema, str(tmp_path / "out" / "schema.pbtxt"))
    assert read_schema(str(tmp_path / "out" / "schema.pbtxt")) == schema


def test_bad_inputs_are_input_errors_naming_the_file(tmp_path):
    from conveyor.beam_utils.errors import InputError

    schema = infer_schema(_stats(_batch()))
    (tmp_path / "schema.pb").write_bytes(schema.SerializeToString())
    (tmp_path / "junk.pb").write_bytes(b"\x00\xffnot a proto at all\x13")
    (tmp_path / "bad.pbtxt").write_text("feature { name: ")
    for path in ["schema.pb", "junk.pb", "missing.pb"]:
        with pytest.raises(InputError, match=path):
            read_statistics(str(tmp_path / path))
    with pytest.raises(InputError, match="bad.pbtxt"):
        read_schema(str(tmp_path / "bad.pbtxt"))


def test_report_names_feature_expected_and_seen():
    schema = infer_schema(_stats(_batch()))
    anomalies = validate_statistics(_stats(_batch(colors=(b"red", b"purple"))), schema)
    assert anomaly_pairs(anomalies) == {("color", "ENUM_TYPE_UNEXPECTED_STRING_VALUES")}
    text = anomalies_report(anomalies)
    assert "color" in text and "'purple'" in text and "blue, green, red" in text
    assert "1 error(s)" in text
    assert anomalies_report(validate_statistics(_stats(_batch()), schema)) == "No anomalies."


def test_severity_overrides_and_environment():
    from conveyor.components.validation import ValidationOptions, has_errors

    schema = infer_schema(_stats(_batch()))
    schema.feature.add(name="label", type=schema_pb2.INT).presence.min_count = 1
    schema.default_environment.extend(["TRAINING", "SERVING"])
    schema.feature[-1].not_in_environment.append("SERVING")
    stats = _stats(_batch())
    assert anomaly_pairs(validate_statistics(stats, schema)) == {("label", "SCHEMA_MISSING_COLUMN")}
    assert not validate_statistics(stats, schema, environment="SERVING").anomaly_info
    lenient = validate_statistics(
        stats,
        schema,
        options=ValidationOptions(severity_overrides={"SCHEMA_MISSING_COLUMN": "warning"}),
    )
    assert lenient.anomaly_info["label"].severity == anomalies_pb2.AnomalyInfo.WARNING
    assert not has_errors(lenient)
    with pytest.raises(ValueError, match="unknown anomaly type"):
        ValidationOptions(severity_overrides={"NOPE": "WARNING"})


def test_generate_infer_validate_in_one_pipeline(tmp_path):
    train, drifted = _batch(seed=1), _batch(seed=2, shift=3.0)
    schema = infer_schema(_stats(train))
    for f in schema.feature:
        if f.name == "score":
            f.drift_comparator.jensen_shannon_divergence.threshold = 0.2
    with beam.Pipeline(options=pipeline_options()) as p:
        base = p | "Train" >> beam.Create([train]) | "StatsTrain" >> GenerateStatistics()
        cur = p | "Cur" >> beam.Create([drifted]) | "StatsCur" >> GenerateStatistics()
        inferred = base | InferSchema()
        anomalies = cur | ValidateStatistics(
            schema, previous_statistics=beam.pvalue.AsSingleton(base)
        )
        (
            inferred
            | "S" >> beam.Map(lambda s: {"features": len(s.feature)})
            | "SaveSchema" >> CollectJson(tmp_path / "schema")
        )
        (
            anomalies
            | "A" >> beam.Map(lambda a: sorted(map(list, anomaly_pairs(a))))
            | "SaveAnomalies" >> CollectJson(tmp_path / "anomalies")
        )
    assert load_json(tmp_path / "schema") == [{"features": 4}]
    assert load_json(tmp_path / "anomalies") == [
        [["score", "COMPARATOR_JENSEN_SHANNON_DIVERGENCE_HIGH"]]
    ]


# --- row-level validation -------------------------------------------------------------

ROW_SCHEMA = """
feature { name: "color" type: BYTES domain: "color" presence { min_fraction: 1 min_count: 1 } }
feature { name: "size" type: INT int_domain { min: 1 max: 9 } value_count { min: 1 max: 2 } }
feature { name: "score" type: FLOAT float_domain { max: 3 disallow_nan: true disallow_inf: true } }
feature { name: "flag" type: INT bool_domain { } shape { dim { size: 1 } } }
feature { name: "label" type: INT not_in_environment: "SERVING" presence { min_count: 1 } }
string_domain { name: "color" value: "red" value: "green" value: "blue" }
default_environment: "TRAINING"
default_environment: "SERVING"
"""


def _messy_batch() -> pa.RecordBatch:
    color = pa.array(
        [[b"red"], [b"pink"], None, [b"blue"], [b"green", b"mauve"], [b"red"]],
        pa.large_list(pa.large_binary()),
    )
    size = pa.array([[3], [4], [5], [0], [1, 2, 3], [7]], pa.large_list(pa.int64()))
    score = pa.array(
        [[0.5], [1.0], [float("nan")], [9.0], [float("inf")], None], pa.large_list(pa.float32())
    )
    flag = pa.array([[1], [0], [2], None, [1], [0]], pa.large_list(pa.int64()))
    return pa.RecordBatch.from_arrays(
        [color, size, score, flag], names=["color", "size", "score", "flag"]
    )


def test_check_batch_reasons_per_row():
    schema = text_format.Parse(ROW_SCHEMA, schema_pb2.Schema())
    valid, reasons = check_batch(_messy_batch(), schema, environment="SERVING")
    assert valid.tolist() == [True, False, False, False, False, True]
    types = {r: {t for t, _ in rs} for r, rs in reasons.items()}
    assert types[1] == {"ENUM_TYPE_UNEXPECTED_STRING_VALUES"}
    assert types[2] == {
        "FEATURE_TYPE_LOW_FRACTION_PRESENT",
        "FLOAT_TYPE_HAS_NAN",
        "BOOL_TYPE_BIG_INT",
    }
    assert types[3] == {
        "INT_TYPE_SMALL_INT",
        "FLOAT_TYPE_BIG_FLOAT",
        "FEATURE_TYPE_LOW_FRACTION_PRESENT",
    }
    assert types[4] == {
        "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
        "FEATURE_TYPE_HIGH_NUMBER_VALUES",
        "FLOAT_TYPE_HAS_INF",
        "FLOAT_TYPE_BIG_FLOAT",
    }
    assert any("'mauve'" in m for _, m in reasons[4])
    # Without an environment the label is required and absent: every row fails.
    valid, reasons = check_batch(_messy_batch(), schema)
    assert not valid.any()
    assert all("SCHEMA_MISSING_COLUMN" in {t for t, _ in rs} for rs in reasons.values())


def _run_validate_examples(tmp_path, batches, beam_args=None):
    schema = text_format.Parse(ROW_SCHEMA, schema_pb2.Schema())
    with beam.Pipeline(options=pipeline_options(beam_args)) as p:
        result = p | beam.Create(batches) | ValidateExamples(schema, environment="SERVING")
        result.valid | "Valid" >> CollectBatches(tmp_path / "valid")
        result.quarantine | "Quarantine" >> CollectJson(tmp_path / "quarantine")
        result.counts | "Counts" >> CollectJson(tmp_path / "counts")
    return (
        load_table(tmp_path / "valid", batches[0].schema),
        load_json(tmp_path / "quarantine"),
        load_json(tmp_path / "counts"),
    )


def _check_outputs(valid, quarantine, counts, batches):
    total = sum(b.num_rows for b in batches)
    assert sum(c["rows"] for c in counts) == total
    assert sum(c["valid"] for c in counts) == valid.num_rows
    assert sum(c["quarantined"] for c in counts) == len(quarantine)
    assert valid.num_rows + len(quarantine) == total
    assert sorted(v[0] for v in valid.column("size").to_pylist()) == [3, 3, 7, 7]
    pink = [q for q in quarantine if q["row"]["color"] == ["pink"]]
    assert len(pink) == 2 and pink[0]["anomaly_types"] == ["ENUM_TYPE_UNEXPECTED_STRING_VALUES"]
    assert all(q["reasons"] for q in quarantine)


def test_validate_examples_splits_and_reconciles(tmp_path):
    batches = [_messy_batch(), _messy_batch()]
    _check_outputs(*_run_validate_examples(tmp_path, batches), batches)


def test_validate_examples_portable_runner(tmp_path, job_endpoint):
    from conftest import portable_args

    batches = [_messy_batch(), _messy_batch()]
    _check_outputs(*_run_validate_examples(tmp_path, batches, portable_args(job_endpoint)), batches)


# --- run_schema_gen / run_validation ----------------------------------------------------


def _split_stats(tmp_path, splits):
    """``{split: path}`` of a StatisticsGen-like artifact under ``tmp_path/stats``."""
    from conveyor.dsl import layout

    for split, stats in splits.items():
        folder = tmp_path / "stats" / f"{layout.SPLIT_PREFIX}{split}"
        folder.mkdir(parents=True)
        (folder / layout.STATS_FILE).write_bytes(stats.SerializeToString())
    return layout.split_files(str(tmp_path / "stats"), layout.STATS_FILE)


def test_run_schema_gen_reads_one_split_and_writes_the_artifact(tmp_path):
    from conveyor.components.schema_gen import run_schema_gen
    from conveyor.dsl import layout

    paths = _split_stats(
        tmp_path, {"train": _stats(_batch(seed=1)), "eval": _stats(_batch(seed=2))}
    )
    summary = run_schema_gen(paths, str(tmp_path / "schema"))
    assert summary["split"] == "train" and summary["features"] == 4
    assert summary["schema_file"] == layout.schema_path(str(tmp_path / "schema"))
    assert (
        read_schema(summary["schema_file"])
        == summary["schema"]
        == infer_schema(_stats(_batch(seed=1)))
    )
    assert summary["always_present"] == 4 and summary["with_domain"] == 2
    one = run_schema_gen(
        paths["eval"],
        None,
        InferOptions(infer_feature_shape=False),
        schema_file=str(tmp_path / "s.pb"),
    )
    assert one["split"] is None
    assert schema_pb2.Schema.FromString((tmp_path / "s.pb").read_bytes()) == one["schema"]
    with pytest.raises(ValueError, match="no statistics for split 'test'.*'eval', 'train'"):
        run_schema_gen(paths, str(tmp_path / "schema"), split="test")


def test_run_validation_writes_every_split_and_compares_with_the_baseline(tmp_path):
    from conveyor.beam_utils.proto_io import read_anomalies
    from conveyor.components.validation import run_validation
    from conveyor.dsl import layout

    schema = infer_schema(_stats(_batch(seed=1)))
    for f in schema.feature:
        if f.name == "score":
            f.drift_comparator.jensen_shannon_divergence.threshold = 0.2
    paths = _split_stats(
        tmp_path, {"train": _stats(_batch(seed=1)), "drift": _stats(_batch(seed=2, shift=3.0))}
    )
    write_schema(schema, str(tmp_path / "schema.pbtxt"))
    out = tmp_path / "anomalies"
    result = run_validation(paths, str(tmp_path / "schema.pbtxt"), str(out), baseline_split="train")
    assert result["errors"] is True
    assert (
        result["splits"]["train"]["errors"] is False and result["splits"]["train"]["features"] == []
    )
    assert result["splits"]["drift"]["features"] == ["score"]
    for split in ("train", "drift"):
        folder = out / f"{layout.SPLIT_PREFIX}{split}"
        assert (
            read_anomalies(str(folder / layout.ANOMALIES_FILE))
            == result["splits"][split]["anomalies"]
        )
        assert (folder / layout.ANOMALIES_REPORT_FILE).read_text() == anomalies_report(
            result["splits"][split]["anomalies"]
        )
    # Without the baseline the drifted split passes; one statistics input goes to output_dir itself.
    single = run_validation(
        _stats(_batch(seed=2, shift=3.0)), schema, str(tmp_path / "one"), report_file=False
    )
    assert single["errors"] is False and list(single["splits"]) == [""]
    assert sorted(p.name for p in (tmp_path / "one").iterdir()) == [layout.ANOMALIES_FILE]
    with pytest.raises(ValueError, match="drift baseline split 'test'"):
        run_validation(paths, schema, str(out), baseline_split="test")


# --- command line -----------------------------------------------------------------------


def test_cli_schema_then_validate_gate(tmp_path, capsys):
    train = _stats(_batch(seed=1))
    bad = _stats(_batch(seed=2, colors=(b"red", b"teal")))
    (tmp_path / "train.pb").write_bytes(train.SerializeToString())
    (tmp_path / "bad.pbtxt").write_text(text_format.MessageToString(bad))
    assert (
        main(
            [
                "schema",
                "--statistics",
                str(tmp_path / "train.pb"),
                "--output",
                str(tmp_path / "schema.pbtxt"),
            ]
        )
        == 0
    )
    assert "4 features" in capsys.readouterr().out
    ok = main(
        [
            "validate",
            "--statistics",
            str(tmp_path / "train.pb"),
            "--schema",
            str(tmp_path / "schema.pbtxt"),
            "--output",
            str(tmp_path / "ok"),
        ]
    )
    assert ok == 0 and "No anomalies." in capsys.readouterr().out
    failed = main(
        [
            "validate",
            "--statistics",
            str(tmp_path / "bad.pbtxt"),
            "--schema",
            str(tmp_path / "schema.pbtxt"),
            "--baseline-statistics",
            str(tmp_path / "train.pb"),
            "--serving-statistics",
            str(tmp_path / "train.pb"),
            "--environment",
            "TRAINING",
            "--output",
            str(tmp_path / "out"),
        ]
    )
    out = capsys.readouterr().out
    assert failed == 1 and "teal" in out and "environment 'TRAINING'" in out
    written = anomalies_pb2.Anomalies.FromString((tmp_path / "out" / "SchemaDiff.pb").read_bytes())
    assert "color" in written.anomaly_info
    lenient = main(
        [
            "validate",
            "--statistics",
            str(tmp_path / "bad.pbtxt"),
            "--schema",
            str(tmp_path / "schema.pbtxt"),
            "--warn",
            "ENUM_TYPE_UNEXPECTED_STRING_VALUES",
            "--output",
            str(tmp_path / "out2"),
        ]
    )
    assert lenient == 0


def test_cli_input_and_usage_errors_exit_2(tmp_path, capsys):
    (tmp_path / "schema.pbtxt").write_text("feature { name: 'x' type: INT }")
    (tmp_path / "broken.pbtxt").write_text("feature { nope: 1 }")
    (tmp_path / "stats.pb").write_bytes(_stats(_batch()).SerializeToString())
    cases = [
        (
            [
                "validate",
                "--statistics",
                str(tmp_path / "schema.pbtxt"),
                "--schema",
                str(tmp_path / "schema.pbtxt"),
                "--output",
                str(tmp_path / "out"),
            ],
            "schema.pbtxt",
        ),
        (
            [
                "validate",
                "--statistics",
                str(tmp_path / "stats.pb"),
                "--schema",
                str(tmp_path / "broken.pbtxt"),
                "--output",
                str(tmp_path / "out"),
            ],
            "broken.pbtxt",
        ),
        (
            [
                "schema",
                "--statistics",
                str(tmp_path / "nothing.pb"),
                "--output",
                str(tmp_path / "s"),
            ],
            "nothing.pb",
        ),
        (
            [
                "validate",
                "--statistics",
                str(tmp_path / "stats.pb"),
                "--schema",
                str(tmp_path / "schema.pbtxt"),
                "--warn",
                "NOT_A_TYPE",
                "--output",
                str(tmp_path / "out"),
            ],
            "NOT_A_TYPE",
        ),
    ]
    for argv, named in cases:
        assert main(argv) == 2, argv
        assert named in capsys.readouterr().err

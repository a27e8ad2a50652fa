"""Each step once in memory and once with an engine's Beam flags, and the two outputs equal.

The checks of ``test_flink.py`` and ``test_spark.py``: the same comparisons as
``tests/test_distributed.py`` (its helpers), for any engine. ``tag`` names the
engine in the work folders; ``args`` are its flags.
"""

from __future__ import annotations

import numpy as np
from test_distributed import (
    FLIGHTS_ROWS,
    MODULE,
    PREDICTION_ATOL,
    _assert_same_rows,
    _decode_files,
    _evaluate,
    _infer,
    _rows,
    _statistics,
    _tight_schema,
    _transform,
    _validate,
    assert_same_metrics,
)

from conveyor.beam_utils import datasets
from conveyor.beam_utils.io import ReadExamples

__all__ = [
    "check_validation",
    "check_example_gen_and_transform",
    "check_evaluation",
    "check_bulk_inference",
]


def check_validation(work, flights, tag: str, args: list[str]) -> None:
    """Validation with row quarantine: valid rows, quarantine, totals and anomalies equal."""
    schema = _tight_schema(_statistics(flights, work / f"{tag}_val_stats", None))
    local = _validate(flights, work / f"{tag}_val_local", schema, None)
    on_engine = _validate(flights, work / f"{tag}_val", schema, args)
    valid, quarantine, totals, anomalies = local
    assert totals["rows"] == FLIGHTS_ROWS and 0 < totals["quarantined"] < FLIGHTS_ROWS
    assert totals["quarantined"] == len(quarantine)
    assert {"origin", "distance"} <= set(anomalies.anomaly_info)
    assert _rows(on_engine[0]) == _rows(valid)
    assert on_engine[1:] == (quarantine, totals, anomalies)


def check_example_gen_and_transform(work, tag: str, args: list[str]) -> None:
    """ExampleGen's splits, then Transform's summary, rows and vocabulary, equal."""
    from conveyor.components.example_gen import run_example_gen

    read = {None: ReadExamples(datasets.penguins_csv())}
    splits = {"train": 2, "eval": 1}
    local_dir, engine_dir = work / f"{tag}_eg_local", work / f"{tag}_eg"
    local_summary = run_example_gen(read, str(local_dir), splits=splits)
    summary = run_example_gen(read, str(engine_dir), splits=splits, beam_args=args)
    assert summary == local_summary
    for split in splits:
        got = _decode_files(str(engine_dir / f"Split-{split}" / "*.gz"))
        expected = _decode_files(str(local_dir / f"Split-{split}" / "*.gz"))
        assert got.num_rows > 0 and _rows(got) == _rows(expected)

    module_file = work / f"{tag}_prep.py"
    module_file.write_text(MODULE)
    local = _transform(str(local_dir), str(module_file), work / f"{tag}_tf_local", None)
    on_engine = _transform(str(engine_dir), str(module_file), work / f"{tag}_tf", args)
    assert local[0]["analyzed"] is True and sum(local[0]["rows"].values()) == 344
    assert on_engine[0] == local[0]
    assert on_engine[2] == local[2]  # the vocabulary
    for split in splits:
        _assert_same_rows(on_engine[1][split], local[1][split])


def check_evaluation(work, flights_parquet, model_dir, tag: str, args: list[str]) -> None:
    """The evaluation's validation, blessing, slices, notes and metrics equal (floats within
    the predictions' tolerance)."""
    local, metrics = _evaluate(flights_parquet, model_dir, work / f"{tag}_eval_local", None)
    got, got_metrics = _evaluate(flights_parquet, model_dir, work / f"{tag}_eval", args)
    assert metrics[0]["slice"] == {} and 0.7 < metrics[0]["metrics"]["auc"] <= 1
    assert got["validation"] == local["validation"] and got["blessed"] is True
    assert [(m["slice"], m["notes"], sorted(m["metrics"])) for m in got_metrics] == [
        (m["slice"], m["notes"], sorted(m["metrics"])) for m in metrics
    ]
    assert_same_metrics(got_metrics, metrics)


def check_bulk_inference(work, flights_parquet, model_dir, tag: str, args: list[str]) -> None:
    """Bulk inference's summary, PredictionLogs and predicted examples equal."""
    summary, logs, examples = _infer(flights_parquet, model_dir, work / f"{tag}_infer_local", None)
    got = _infer(flights_parquet, model_dir, work / f"{tag}_infer", args)
    assert summary["examples_predicted"] == summary["examples_in"] == len(logs) > 0
    assert summary["examples_dead_lettered"] == 0
    assert got[0] == summary
    assert [text for text, _ in got[1]] == [text for text, _ in logs]
    np.testing.assert_allclose(
        np.array([out["p_late"] for _, out in got[1]]),
        np.array([out["p_late"] for _, out in logs]),
        rtol=0,
        atol=PREDICTION_ATOL,
    )
    others = [c for c in examples.column_names if c != "p_late"]
    assert _rows(got[2].select(others)) == _rows(examples.select(others))

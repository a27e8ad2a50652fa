"""Transform: tf.Transform over RecordBatches, TFX layout, train/serve consistency, cache, errors.

One Examples directory of penguins (train/eval) and one run of the component
with an analyzer cache are shared by most tests (tf.Transform pipelines are slow
to start); each test checks one aspect of that run against values computed here
with numpy from the raw train split.
"""

from __future__ import annotations

import glob
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pyarrow as pa
import pytest

from conveyor.beam_utils import datasets
from conveyor.beam_utils.errors import InputError
from conveyor.beam_utils.io import ReadExamples, read_examples_dir
from conveyor.components.example_gen import run_example_gen
from conveyor.components.transform import (
    MissingFeatureError,
    PreprocessingFnError,
    load_preprocessing_fn,
    run_transform,
)

CONVEYOR = [sys.executable, "-m", "conveyor.orchestration.cli"]

MODULE = textwrap.dedent(
    """
    import tensorflow as tf
    import tensorflow_transform as tft

    SPECIES_THRESHOLD = 60


    def _dense(x, default):
        # A missing value (an empty row of the SparseTensor) becomes `default`.
        return tf.squeeze(tft.sparse_tensor_to_dense_with_shape(x, [None, 1], default), 1)


    def preprocessing_fn(inputs):
        bill = inputs["bill_length_mm"]
        mass = inputs["body_mass_g"]
        return {
            # raw values (missing -> sentinel), to check the others against
            "bill_raw": _dense(bill, -1.0),
            "mass_raw": _dense(mass, -1),
            "flipper_raw": _dense(inputs["flipper_length_mm"], -1),
            "species_raw": _dense(inputs["species"], b""),
            "island_raw": _dense(inputs["island"], b""),
            # z-score over present values; a missing value becomes 0 (the mean)
            "bill_z": _dense(tft.scale_to_z_score(bill), 0.0),
            # the same left sparse: a missing value stays missing
            "bill_z_sparse": tft.scale_to_z_score(bill, name="bill_sparse"),
            # min-max
            "mass_01": _dense(tft.scale_to_0_1(tf.cast(mass, tf.float32)), 0.5),
            # vocabularies
            "island_top2": tft.compute_and_apply_vocabulary(
                _dense(inputs["island"], b""), top_k=2, num_oov_buckets=1, vocab_filename="island"),
            "species_id": tft.compute_and_apply_vocabulary(
                _dense(inputs["species"], b""), frequency_threshold=SPECIES_THRESHOLD,
                default_value=-1, vocab_filename="species"),
            # bucketize (missing flipper -> 0 falls in the first bucket)
            "flipper_bucket": tft.bucketize(_dense(inputs["flipper_length_mm"], 0), num_buckets=4),
            # missing string with a default
            "sex": _dense(inputs["sex"], b"unknown"),
        }
    """
)


# ------------------------------------------------------------------ helpers


def _decode_files(pattern: str) -> pa.Table:
    """All tf.Examples of gzip TFRecord files as one Arrow table (tfx-bsl's decoder)."""
    import tensorflow as tf
    from tfx_bsl.coders import example_coder

    paths = sorted(glob.glob(pattern))
    assert paths, pattern
    records = [r.numpy() for r in tf.data.TFRecordDataset(paths, compression_type="GZIP")]
    return pa.Table.from_batches(
        [example_coder.ExamplesToRecordBatchDecoder().DecodeBatch(records)]
    )


def _scalars(table: pa.Table, name: str) -> np.ndarray:
    values = table.column(name).to_pylist()
    assert all(v is not None and len(v) == 1 for v in values), name
    return np.array([v[0] for v in values])


def _present(table: pa.Table, name: str) -> np.ndarray:
    return np.array([v[0] for v in table.column(name).to_pylist() if v], dtype=object)


def _rows(table: pa.Table) -> list:
    """Rows as sorted tuples of each column's values (order-free comparison)."""
    cols = sorted(table.column_names)
    data = [table.column(c).to_pylist() for c in cols]
    return sorted(tuple(tuple(v) if v is not None else None for v in row) for row in zip(*data))


# ------------------------------------------------------------------ fixtures


@pytest.fixture(scope="module")
def work(tmp_path_factory):
    return tmp_path_factory.mktemp("transform")


@pytest.fixture(scope="module")
def module_file(work):
    path = work / "prep.py"
    path.write_text(MODULE)
    return str(path)


@pytest.fixture(scope="module")
def examples(work):
    out = str(work / "examples")
    run_example_gen(
        {None: ReadExamples(datasets.penguins_csv())}, out, splits={"train": 2, "eval": 1}
    )
    return out


def _reads(examples_dir):
    return {s: read_examples_dir(examples_dir, s) for s in ("train", "eval")}


@pytest.fixture(scope="module")
def run1(work, examples, module_file):
    out = str(work / "out1")
    summary = run_transform(
        _reads(examples), out, load_preprocessing_fn(module_file), cache_dir=str(work / "cache")
    )
    return out, summary


@pytest.fixture(scope="module")
def raw_train(examples):
    return _decode_files(os.path.join(examples, "Split-train", "*.gz"))


@pytest.fixture(scope="module")
def transformed(run1):
    out, _ = run1
    return {
        s: _decode_files(os.path.join(out, "transformed_examples", f"Split-{s}", "*.gz"))
        for s in ("train", "eval")
    }


# ------------------------------------------------------------------ layout


def test_outputs_in_tfx_layout(run1, examples):
    import tensorflow_transform as tft

    out, summary = run1
    for split in ("train", "eval"):
        names = [
            os.path.basename(p)
            for p in glob.glob(os.path.join(out, "transformed_examples", f"Split-{split}", "*"))
        ]
        assert names and all(
            n.startswith("transformed_examples-") and n.endswith(".gz") for n in names
        )
        assert "-of-" in names[0]
    tft_out = tft.TFTransformOutput(os.path.join(out, "transform_graph"))
    spec = tft_out.transformed_feature_spec()
    assert set(spec) >= {
        "bill_z",
        "bill_z_sparse",
        "mass_01",
        "island_top2",
        "species_id",
        "flipper_bucket",
        "sex",
    }
    assert set(tft_out.raw_feature_spec()) == {
        "species",
        "island",
        "bill_length_mm",
        "bill_depth_mm",
        "flipper_length_mm",
        "body_mass_g",
        "sex",
        "year",
    }
    assert not os.path.exists(os.path.join(out, ".transform_tmp")), "temp dir left behind"
    ex_summary = json.loads(open(os.path.join(examples, "summary.json")).read())
    assert summary["rows"] == ex_summary["splits"]
    assert summary["analyzed"] is True
    # only the columns the function reads are decoded
    assert "bill_depth_mm" not in summary["transform_columns"] + summary["analyze_columns"]


# ------------------------------------------------------------------ values


def test_z_score_uses_train_statistics_on_every_split(transformed, raw_train):
    bill = np.array(
        [v[0] for v in raw_train.column("bill_length_mm").to_pylist() if v], dtype=np.float64
    )
    mean, std = bill.mean(), bill.std()
    for split, table in transformed.items():
        raw = _scalars(table, "bill_raw")
        z = _scalars(table, "bill_z")
        present = raw != -1.0
        np.testing.assert_allclose(z[present], (raw[present] - mean) / std, rtol=1e-4, atol=1e-5)
        assert np.all(z[~present] == 0.0), split
        sparse = table.column("bill_z_sparse").to_pylist()
        assert [len(v) for v in sparse] == [1 if p else 0 for p in present]
    train = transformed["train"]
    assert abs(_scalars(train, "bill_z")[_scalars(train, "bill_raw") != -1.0].mean()) < 1e-5


def test_min_max_scaling(transformed, raw_train):
    mass = np.array(
        [v[0] for v in raw_train.column("body_mass_g").to_pylist() if v], dtype=np.float64
    )
    lo, hi = mass.min(), mass.max()
    for table in transformed.values():
        raw = _scalars(table, "mass_raw")
        scaled = _scalars(table, "mass_01")
        present = raw != -1
        np.testing.assert_allclose(
            scaled[present], (raw[present] - lo) / (hi - lo), rtol=1e-5, atol=1e-6
        )
        assert np.all(scaled[~present] == 0.5)
    train = _scalars(transformed["train"], "mass_01")[
        _scalars(transformed["train"], "mass_raw") != -1
    ]
    assert train.min() == 0.0 and train.max() == 1.0


def test_vocabulary_top_k_with_oov_bucket(run1, transformed, raw_train):
    import tensorflow_transform as tft

    out, _ = run1
    islands, counts = np.unique(_present(raw_train, "island").astype(bytes), return_counts=True)
    top2 = [islands[i] for i in np.argsort(-counts, kind="stable")[:2]]
    vocab = tft.TFTransformOutput(os.path.join(out, "transform_graph")).vocabulary_by_name("island")
    assert vocab == top2
    for table in transformed.values():
        raw = _scalars(table, "island_raw")
        ids = _scalars(table, "island_top2")
        expected = [top2.index(v) if v in top2 else 2 for v in raw]  # one OOV bucket: id 2
        assert list(ids) == expected


def test_vocabulary_frequency_threshold(run1, transformed, raw_train):
    import tensorflow_transform as tft

    out, _ = run1
    species, counts = np.unique(_present(raw_train, "species").astype(bytes), return_counts=True)
    kept = {s for s, c in zip(species, counts) if c >= 60}
    assert 0 < len(kept) < len(species), "the threshold should drop a species in this data"
    vocab = tft.TFTransformOutput(os.path.join(out, "transform_graph")).vocabulary_by_name(
        "species"
    )
    assert set(vocab) == kept
    for table in transformed.values():
        raw = _scalars(table, "species_raw")
        ids = _scalars(table, "species_id")
        assert list(ids) == [vocab.index(v) if v in kept else -1 for v in raw]


def test_bucketize(transformed):
    for table in transformed.values():
        raw = _scalars(table, "flipper_raw")
        buckets = _scalars(table, "flipper_bucket")
        assert set(buckets) <= {0, 1, 2, 3}
        order = np.argsort(raw, kind="stable")
        assert np.all(np.diff(buckets[order]) >= 0), "buckets must follow the raw order"
    train = _scalars(transformed["train"], "flipper_bucket")
    present = _scalars(transformed["train"], "flipper_raw") != -1
    assert set(train[present]) == {0, 1, 2, 3}
    shares = np.bincount(train[present], minlength=4) / present.sum()
    assert shares.min() > 0.1, shares  # quantile buckets: each holds a fair share


def test_missing_string_gets_default(transformed, raw_train):
    n_missing = sum(1 for v in raw_train.column("sex").to_pylist() if not v)
    assert n_missing > 0
    assert list(_scalars(transformed["train"], "sex")).count(b"unknown") == n_missing


# ------------------------------------------------------------------ train/serve


def test_serving_graph_reproduces_transformed_examples(run1, examples, transformed):
    """Raw serialized examples through the saved graph == what was written."""
    import tensorflow as tf
    import tensorflow_transform as tft

    out, _ = run1
    tft_out = tft.TFTransformOutput(os.path.join(out, "transform_graph"))
    layer = tft_out.transform_features_layer()

    @tf.function(input_signature=[tf.TensorSpec([None], tf.string)])
    def serve(serialized):
        return layer(tf.io.parse_example(serialized, tft_out.raw_feature_spec()))

    for split in ("train", "eval"):
        paths = sorted(glob.glob(os.path.join(examples, f"Split-{split}", "*.gz")))
        records = [r.numpy() for r in tf.data.TFRecordDataset(paths, compression_type="GZIP")]
        result = serve(tf.constant(records))
        columns = {}
        for name, value in result.items():
            if isinstance(value, tf.SparseTensor):
                dense = tf.sparse.to_dense(value).numpy()
                lengths = tf.math.bincount(
                    tf.cast(value.indices[:, 0], tf.int32), minlength=len(records)
                ).numpy()
                columns[name] = [list(row[:n]) for row, n in zip(dense, lengths)]
            else:
                columns[name] = [[v] for v in value.numpy()]
        served = pa.table(columns)
        written = transformed[split].select(sorted(columns))
        assert _rows(served) == _rows(written), split


# ------------------------------------------------------------------ cache


def test_rerun_with_cache_skips_analysis(run1, work, examples, module_file, transformed):
    _, first = run1
    out = str(work / "out2")
    summary = run_transform(
        _reads(examples), out, load_preprocessing_fn(module_file), cache_dir=str(work / "cache")
    )
    assert first["analyzed"] is True and summary["analyzed"] is False
    assert summary["dataset_key"] == first["dataset_key"]
    assert summary["rows"] == first["rows"]
    for split in ("train", "eval"):
        again = _decode_files(os.path.join(out, "transformed_examples", f"Split-{split}", "*.gz"))
        assert _rows(again) == _rows(transformed[split])


def test_node_records_whether_analysis_ran(tmp_path, examples, module_file):
    """The node's TransformGraph ``analysis`` property: computed on a first run, cached on a rerun.

    Two executions as the launcher runs them (staging folders published as
    ``<key>/<execution id>``): the second finds the first's analyzer cache.
    """
    from orchestration_components import CsvExamples

    from conveyor.components import Transform
    from conveyor.dsl import ExecutionContext
    from conveyor.dsl.artifacts import Artifact

    node = Transform(examples=CsvExamples(csv="x.csv").outputs["examples"], module_file=module_file)

    def execute(ex_id):
        staging = {
            k: Artifact(t, str(tmp_path / k / f".{ex_id}.tmp")) for k, t in node.OUTPUTS.items()
        }
        for a in staging.values():
            os.makedirs(a.uri)
        ctx = ExecutionContext(
            {"examples": Artifact("Examples", examples)},
            staging,
            dict(node.parameters),
            [],
            f"r{ex_id}",
            str(tmp_path),
        )
        props = node.execute(ctx)
        for key, a in staging.items():
            os.replace(a.uri, str(tmp_path / key / str(ex_id)))
        summary = json.loads(
            (tmp_path / "transform_graph" / str(ex_id) / "transform_summary.json").read_text()
        )
        return props["transform_graph"]["analysis"], summary["analyzed"]

    assert execute(1) == ("computed", True)
    assert execute(2) == ("cached", False)


def test_summary_written_only_when_counts_reconcile(tmp_path):
    """Per split, rows read = accepted + rejected, or the run fails and writes no summary."""
    from conveyor.components.transform.component import SUMMARY_FILE, _write_summary

    info = {"splits": ["eval", "train"]}
    counts = {
        "read:train": 5,
        "accepted:train": 4,
        "rejected:train": 1,
        "out:train": 4,
        "read:eval": 3,
        "accepted:eval": 3,
        "rejected:eval": 0,
        "out:eval": 3,
    }
    summary = _write_summary(counts, info, str(tmp_path))
    assert summary == {
        "splits": ["eval", "train"],
        "rows": {"eval": 3, "train": 4},
        "rows_rejected": {"eval": 0, "train": 1},
    }
    assert json.loads((tmp_path / SUMMARY_FILE).read_text()) == summary
    (tmp_path / SUMMARY_FILE).unlink()
    with pytest.raises(RuntimeError, match=r"'eval'.*read 3 != accepted 2 \+ rejected 0"):
        _write_summary({**counts, "accepted:eval": 2}, info, str(tmp_path))
    assert not (tmp_path / SUMMARY_FILE).exists()


def test_cached_analysis_is_not_recomputed(work):
    """Same dataset key, different data: the cached statistics win, so analysis did not run."""
    import apache_beam as beam
    import tensorflow_transform as tft
    from pipeline_helpers import CollectBatches, load_table

    from conveyor.beam_utils import arrow
    from conveyor.components.transform import TransformExamples

    def fn(inputs):
        x = tf_dense(inputs["x"])
        return {"x_mean": tft.mean(x) + 0.0 * x}

    schema = arrow.make_schema({"x": "FLOAT"})

    def run(values, name):
        batch = pa.RecordBatch.from_arrays(
            [arrow.wrap_scalars(pa.array(values, pa.float32()), pa.float32())], schema=schema
        )
        t = TransformExamples(
            fn,
            schema,
            temp_dir=str(work / f"tmp_{name}"),
            cache_dir=str(work / "xcache"),
            dataset_key="span-0",
        )
        with beam.Pipeline() as p:
            result = {"train": p | beam.Create([batch])} | t
            result.transformed["train"] | CollectBatches(work / f"x_{name}")
        return result.analyzed, load_table(work / f"x_{name}").column("x_mean").to_pylist()

    analyzed, first = run([1.0, 2.0, 3.0], "a")
    assert analyzed and first == [[2.0]] * 3
    analyzed, second = run([10.0, 20.0], "b")
    assert not analyzed and second == [[2.0]] * 2


def tf_dense(x):
    import tensorflow as tf

    return tf.sparse.to_dense(x, default_value=0.0)[:, 0]


# ------------------------------------------------------------------ bad input


def test_missing_module_file_names_the_file(tmp_path):
    with pytest.raises(InputError, match=r"nope\.py: no such module file"):
        load_preprocessing_fn(str(tmp_path / "nope.py"))


def test_module_without_preprocessing_fn_names_the_file(tmp_path):
    path = tmp_path / "empty.py"
    path.write_text("def something_else(inputs):\n    return inputs\n")
    with pytest.raises(
        InputError, match=r"empty\.py: defines no function 'preprocessing_fn'.*something_else"
    ):
        load_preprocessing_fn(str(path))


def test_feature_missing_from_schema_is_named(tmp_path, examples):
    path = tmp_path / "m.py"
    path.write_text("def preprocessing_fn(inputs):\n    return {'y': inputs['wingspan']}\n")
    with pytest.raises(
        MissingFeatureError, match=r"needs feature 'wingspan', which is not in the input data"
    ):
        run_transform(_reads(examples), str(tmp_path / "o"), load_preprocessing_fn(str(path)))


def test_feature_missing_from_data_is_named(tmp_path):
    from tensorflow_metadata.proto.v0 import schema_pb2

    from conveyor.beam_utils import arrow

    read = ReadExamples(datasets.penguins_csv())
    schema = arrow.to_metadata_schema(read.arrow_schema)
    extra = schema.feature.add()
    extra.name, extra.type = "ring_id", schema_pb2.INT
    path = tmp_path / "m.py"
    path.write_text("def preprocessing_fn(inputs):\n    return {'y': inputs['ring_id']}\n")
    with pytest.raises(
        MissingFeatureError, match=r"needs feature 'ring_id', which is not in the data"
    ):
        run_transform(
            {"train": read}, str(tmp_path / "o"), load_preprocessing_fn(str(path)), schema=schema
        )


def test_error_while_tracing_points_at_user_code(tmp_path):
    path = tmp_path / "broken.py"
    path.write_text(
        textwrap.dedent(
            """
        import tensorflow_transform as tft


        def _scale(x):
            return tft.scale_to_z_score(x)


        def preprocessing_fn(inputs):
            return {"species_z": _scale(inputs["species"])}
        """
        )
    )
    with pytest.raises(PreprocessingFnError) as info:
        run_transform(
            {"train": ReadExamples(datasets.penguins_csv())},
            str(tmp_path / "o"),
            load_preprocessing_fn(str(path)),
        )
    message = str(info.value)
    assert "failed while tracing" in message
    assert f'File "{path}", line 10, in preprocessing_fn' in message
    assert f'File "{path}", line 6, in _scale' in message
    assert "apache_beam" not in message and len(message.splitlines()) < 12


def test_cli_errors_exit_2(tmp_path):
    proc = subprocess.run(
        [
            *CONVEYOR,
            "transform",
            "--input",
            datasets.penguins_csv(),
            "--module-file",
            str(tmp_path / "x.py"),
            "--output",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 2 and "x.py: no such module file" in proc.stderr


# ------------------------------------------------------------------ CLI, schema, portability

SCHEMA_PBTXT = """
feature { name: "species" type: BYTES }
feature { name: "body_mass_g" type: INT }
feature { name: "year" type: INT presence { min_fraction: 1 } shape { dim { size: 1 } } }
tensor_representation_group {
  key: ""
  value {
    tensor_representation {
      key: "body_mass_g"
      value { dense_tensor { column_name: "body_mass_g" shape { dim { size: 1 } } default_value { int_value: -1 } } }
    }
  }
}
"""

SCHEMA_MODULE = """
import tensorflow as tf
import tensorflow_transform as tft

def preprocessing_fn(inputs):
    # dense inputs from the schema: [batch, 1], missing mass already -1
    mass = tf.squeeze(inputs["body_mass_g"], 1)
    return {"mass": mass, "year_z": tf.squeeze(tft.scale_to_z_score(tf.cast(inputs["year"], tf.float32)), 1),
            "species_id": tft.compute_and_apply_vocabulary(inputs["species"])}
"""


def test_cli_csv_with_schema_dense_defaults(tmp_path):
    (tmp_path / "schema.pbtxt").write_text(SCHEMA_PBTXT)
    (tmp_path / "m.py").write_text(SCHEMA_MODULE)
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            *CONVEYOR,
            "transform",
            "--input",
            datasets.penguins_csv(),
            "--schema",
            str(tmp_path / "schema.pbtxt"),
            "--module-file",
            str(tmp_path / "m.py"),
            "--output",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "Split-train: 344 rows transformed" in proc.stdout
    table = _decode_files(str(out / "transformed_examples" / "Split-train" / "*.gz"))
    mass = _scalars(table, "mass")
    assert (mass == -1).sum() == 2 and table.num_rows == 344  # penguins lacks 2 body masses
    assert abs(_scalars(table, "year_z").mean()) < 1e-4  # float32 variance of years ~2008
    import tensorflow_transform as tft

    spec = tft.TFTransformOutput(str(out / "transform_graph")).raw_feature_spec()
    assert spec["year"].shape == [1] and spec["body_mass_g"].default_value == -1


def test_portable_runner_loopback(job_endpoint, tmp_path, module_file, examples, transformed):
    from conftest import portable_args

    summary = run_transform(
        _reads(examples),
        str(tmp_path / "out"),
        load_preprocessing_fn(module_file),
        beam_args=portable_args(job_endpoint),
    )
    assert summary["analyzed"] is True
    for split in ("train", "eval"):
        table = _decode_files(
            str(tmp_path / "out" / "transformed_examples" / f"Split-{split}" / "*.gz")
        )
        assert _rows(table) == _rows(transformed[split])


def test_node_transform_splits_writes_only_those_splits(tmp_path, examples, module_file):
    """TFX's splits_config.transform_splits: the train split is analyzed whether or not it is
    transformed; only the named splits are written; a split the examples lack is named."""
    from orchestration_components import CsvExamples

    from conveyor import tfx
    from conveyor.beam_utils.errors import UsageError
    from conveyor.components import Transform
    from conveyor.dsl import ExecutionContext
    from conveyor.dsl.artifacts import Artifact

    source = CsvExamples(csv="x.csv").outputs["examples"]

    def execute(node, name):
        staging = {k: Artifact(t, str(tmp_path / name / k)) for k, t in node.OUTPUTS.items()}
        for a in staging.values():
            os.makedirs(a.uri)
        ctx = ExecutionContext(
            {"examples": Artifact("Examples", examples)},
            staging,
            dict(node.parameters),
            [],
            name,
            str(tmp_path),
        )
        return node.execute(ctx), staging["transformed_examples"].uri

    node = Transform(examples=source, module_file=module_file, transform_splits=["eval"])
    props, out = execute(node, "eval-only")
    assert json.loads(props["transformed_examples"]["split_names"]) == ["eval"]
    assert sorted(os.listdir(out)) == ["Split-eval"]

    wrapped = tfx.components.Transform(
        examples=source,
        module_file=module_file,
        splits_config=tfx.proto.SplitsConfig(analyze_splits=["train"], transform_splits=["eval"]),
    )
    assert wrapped.parameters["transform_splits"] == ["eval"]

    with pytest.raises(UsageError, match=r"transform_splits names \['test'\].*splits: eval, train"):
        execute(Transform(examples=source, module_file=module_file, transform_splits=["test"]), "x")

"""conveyor.dsl.layout: TFX's artifact layout, written once."""

from __future__ import annotations

import pytest

from conveyor.beam_utils.errors import InputError
from conveyor.dsl import layout


def test_split_folders_are_named_as_tfx_names_them():
    assert layout.split_uri("out/stats/3", "train") == "out/stats/3/Split-train"
    assert layout.split_uri("gs://b/stats", "eval") == "gs://b/stats/Split-eval"
    assert layout.split_name("out/stats/3/Split-train/") == "train"
    assert layout.split_name("Split-") == ""
    assert layout.split_name("transform_fn") is None
    assert layout.schema_path("out/schema/4") == "out/schema/4/schema.pbtxt"


def test_split_files_lists_the_splits_that_hold_the_file(tmp_path):
    for split in ("train", "eval", "empty"):
        (tmp_path / f"Split-{split}").mkdir()
    for split in ("train", "eval"):
        (tmp_path / f"Split-{split}" / layout.STATS_FILE).write_bytes(b"")
    (tmp_path / "not-a-split").mkdir()
    (tmp_path / "not-a-split" / layout.STATS_FILE).write_bytes(b"")
    found = layout.split_files(str(tmp_path), layout.STATS_FILE)
    assert found == {
        "eval": f"{tmp_path}/Split-eval/{layout.STATS_FILE}",
        "train": f"{tmp_path}/Split-train/{layout.STATS_FILE}",
    }
    with pytest.raises(InputError, match=r"no Split-<name>/SchemaDiff.pb"):
        layout.split_files(str(tmp_path), layout.ANOMALIES_FILE)


def test_examples_splits_of_an_examples_folder(tmp_path):
    (tmp_path / "Split-train").mkdir()
    (tmp_path / "Split-train" / "data-00000.gz").write_bytes(b"")
    assert layout.examples_splits(str(tmp_path)) == {"train": f"{tmp_path}/Split-train/*"}
    with pytest.raises(InputError, match="not an Examples directory"):
        layout.examples_splits(str(tmp_path / "Split-train"))

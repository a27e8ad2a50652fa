"""Publishing artifacts through Beam's FileSystems: a rename on a local disk; on an object store
(the ``teststore://`` fixture, which has no folders) a copy, then a completion marker written
last; readers (cache hits, inputs, resolvers) ignore an artifact without its marker."""

import json
import os

import pytest
from apache_beam.io.filesystems import FileSystems

from conveyor.beam_utils import publish
from conveyor.dsl import REQUIRED, Component, InputSpec
from conveyor.dsl.resolver import LatestArtifactStrategy, Resolver
from conveyor.orchestration import Pipeline
from conveyor.orchestration.launcher import ComponentError, run_component
from conveyor.orchestration.metadata import Metadata, sqlite_config

ROOT = "teststore://bucket/root"


def _write(uri: str, name: str, data: bytes) -> None:
    with FileSystems.create(f"{uri}/{name}") as f:
        f.write(data)


def _read(uri: str, name: str) -> bytes:
    with FileSystems.open(f"{uri}/{name}") as f:
        return f.read()


class StoreProduce(Component):
    """Writes ``n`` numbers through FileSystems, in two files (one in a split folder)."""

    OUTPUTS = {"examples": "Examples"}
    PARAMETERS = {"n": 3}

    def execute(self, ctx):
        uri = ctx.outputs["examples"].uri
        _write(uri, "Split-train/data.json", json.dumps(list(range(ctx.parameters["n"]))).encode())
        _write(uri, "summary.json", b"{}")


class StoreSum(Component):
    """Sums what StoreProduce wrote; fails on purpose while publishing when told (``fail``)."""

    INPUTS = {"examples": InputSpec("Examples")}
    OUTPUTS = {"statistics": "ExampleStatistics"}
    PARAMETERS = {"fail": False}

    def execute(self, ctx):
        total = sum(json.loads(_read(ctx.inputs["examples"].uri, "Split-train/data.json")))
        _write(ctx.outputs["statistics"].uri, "sum.json", json.dumps(total).encode())


class LocalModel(Component):
    """A Model written with plain ``open`` (as TensorFlow writes a SavedModel): staged locally."""

    OUTPUTS = {"model": "Model"}
    PARAMETERS = {"text": REQUIRED}

    def execute(self, ctx):
        uri = ctx.outputs["model"].uri
        assert "://" not in uri and os.path.isdir(uri), uri
        os.makedirs(os.path.join(uri, "variables"))
        with open(os.path.join(uri, "variables", "weights.txt"), "w") as f:
            f.write(ctx.parameters["text"])


class ReadModel(Component):
    """Reads a Model with plain ``open``: the launcher hands it a local copy."""

    INPUTS = {"model": InputSpec("Model")}
    OUTPUTS = {"statistics": "ExampleStatistics"}

    def execute(self, ctx):
        uri = ctx.inputs["model"].uri
        assert "://" not in uri, uri
        with open(os.path.join(uri, "variables", "weights.txt")) as f:
            _write(ctx.outputs["statistics"].uri, "seen.txt", f.read().encode())


def _pipeline(tmp_path, components, **kw):
    return Pipeline(
        "store",
        ROOT,
        components,
        metadata_connection_config=sqlite_config(str(tmp_path / "md.sqlite")),
        **kw,
    )


def _under(store, uri):
    return [k for k in store.objects if k.startswith(uri.rstrip("/") + "/")]


def test_local_publish_is_a_rename(tmp_path):
    staging, final = tmp_path / "k" / ".3.tmp", tmp_path / "k" / "3"
    publish.prepare_staging(str(staging))
    (staging / "Split-train").mkdir()
    (staging / "Split-train" / "a.txt").write_text("a")
    inode = os.stat(staging).st_ino
    publish.publish(str(staging), str(final))
    assert not staging.exists() and (final / "Split-train" / "a.txt").read_text() == "a"
    assert os.stat(final).st_ino == inode  # the same folder, renamed: no copy
    assert not (final / publish.MARKER).exists()  # a rename needs no marker
    assert publish.is_complete(str(final)) and not publish.is_complete(str(tmp_path / "k" / "4"))


def test_object_store_publish_copies_then_writes_the_marker_last(object_store):
    staging, final = f"{ROOT}/Gen/examples/.3.tmp", f"{ROOT}/Gen/examples/3"
    publish.prepare_staging(staging)
    _write(staging, "Split-train/a.txt", b"a")
    _write(staging, "Split-eval/b.txt", b"bb")
    assert not publish.has_folders(final) and not publish.is_complete(staging)
    publish.publish(staging, final)
    written = _under(object_store, final)
    assert written[-1] == publish.marker_uri(final)  # the marker came after every file
    assert sorted(written[:-1]) == [f"{final}/Split-eval/b.txt", f"{final}/Split-train/a.txt"]
    assert json.loads(object_store.objects[publish.marker_uri(final)])["files"] == [
        "Split-eval/b.txt",
        "Split-train/a.txt",
    ]
    assert _under(object_store, staging) == []  # the staging objects are gone
    assert publish.is_complete(final)


def test_local_staging_is_streamed_onto_the_store(tmp_path, object_store):
    staging = tmp_path / "model"
    (staging / "variables").mkdir(parents=True)
    (staging / "saved_model.pb").write_bytes(b"\x00\x01")
    (staging / "variables" / "v.data").write_bytes(b"x" * 1000)
    final = f"{ROOT}/Trainer/model/5"
    publish.publish(str(staging), final)
    assert object_store.objects[f"{final}/variables/v.data"] == b"x" * 1000
    assert publish.is_complete(final) and not staging.exists()
    # And back down for a reader that cannot read the store.
    local = publish.localize(final, str(tmp_path / "down"))
    assert open(os.path.join(local, "saved_model.pb"), "rb").read() == b"\x00\x01"
    assert not os.path.exists(os.path.join(local, publish.MARKER))


def test_a_copy_stopped_midway_leaves_nothing_that_looks_complete(object_store, monkeypatch):
    staging, final = f"{ROOT}/Gen/examples/.3.tmp", f"{ROOT}/Gen/examples/3"
    for i in range(3):
        _write(staging, f"Split-train/{i}.txt", b"x")
    real_copy = object_store.copy
    calls = []

    def copy_then_die(self, sources, destinations):
        calls.append(sources)
        if len(calls) == 2:
            raise KeyboardInterrupt  # as a kill would stop it: nothing after this runs
        real_copy(self, sources, destinations)

    monkeypatch.setattr(object_store, "copy", copy_then_die)
    with pytest.raises(KeyboardInterrupt):
        publish.publish(staging, final)
    assert _under(object_store, final) == [f"{final}/Split-train/0.txt"]  # one file got there
    assert not publish.is_complete(final)
    # Removing a published artifact takes the marker first, so half removed is not complete.
    monkeypatch.setattr(object_store, "copy", real_copy)
    publish.publish(staging, final)
    deleted = []
    real_delete = object_store.delete
    monkeypatch.setattr(
        object_store,
        "delete",
        lambda self, paths: (deleted.extend(paths), real_delete(self, paths)),
    )
    publish.remove_tree(final)
    assert deleted[0] == publish.marker_uri(final) and _under(object_store, final) == []


def test_pipeline_on_the_store_and_a_half_written_cache_hit_redone(tmp_path, object_store):
    produce = StoreProduce(n=4)
    total = StoreSum(examples=produce.outputs["examples"])
    pipeline = _pipeline(tmp_path, [produce, total])
    first = run_component(pipeline, "StoreProduce", "r1", log=None)
    examples = first["outputs"]["examples"]
    assert examples.startswith(f"{ROOT}/StoreProduce/examples/") and publish.is_complete(examples)
    summed = run_component(pipeline, "StoreSum", "r1", log=None)["outputs"]["statistics"]
    assert json.loads(_read(summed, "sum.json")) == 6
    assert [k for k in object_store.objects if ".tmp" in k] == []  # no staging left

    # The marker of the cached Examples is gone (its publisher was killed mid-copy, say):
    # the next run does not take it from the cache; it runs again and publishes a new one.
    del object_store.objects[publish.marker_uri(examples)]
    said = []
    again = run_component(pipeline, "StoreProduce", "r2", log=said.append)
    assert again["state"] == "COMPLETE" and again["outputs"]["examples"] != examples
    assert publish.is_complete(again["outputs"]["examples"])
    assert any("not using the cache" in s and examples in s and publish.MARKER in s for s in said)
    assert run_component(pipeline, "StoreProduce", "r3", log=None)["state"] == "CACHED"

    # A component whose input lacks its marker does not read it: a clear error, recorded FAILED.
    del object_store.objects[publish.marker_uri(again["outputs"]["examples"])]
    said.clear()
    with pytest.raises(ComponentError, match="lacks its completion marker.*run StoreProduce again"):
        run_component(pipeline, "StoreSum", "r2", log=said.append)
    assert any("half written, ignored" in s for s in said)
    [row] = [
        r
        for r in Metadata(pipeline.metadata_connection_config).run_status("store", "r2")
        if r["component_id"] == "StoreSum"
    ]
    assert row["state"] == "FAILED"


def test_a_failed_publish_removes_what_it_copied(tmp_path, object_store, monkeypatch):
    produce = StoreProduce()
    pipeline = _pipeline(tmp_path, [produce], enable_cache=False)

    def fail_marker(staging, final):
        publish.copy_tree(staging, final)
        raise OSError("the store went away before the marker")

    monkeypatch.setattr(publish, "publish", fail_marker)
    with pytest.raises(ComponentError, match="the store went away"):
        run_component(pipeline, "StoreProduce", "r1", log=None)
    assert object_store.objects == {}  # neither the copy nor the staging objects are left


def test_resolver_skips_a_pick_without_its_marker(tmp_path, object_store):
    produce = StoreProduce()
    pipeline = _pipeline(tmp_path, [produce], enable_cache=False)
    older = run_component(pipeline, "StoreProduce", "r1", log=None)["outputs"]["examples"]
    newer = run_component(pipeline, "StoreProduce", "r2", log=None)["outputs"]["examples"]
    del object_store.objects[publish.marker_uri(newer)]
    latest = Resolver(
        strategy_class=LatestArtifactStrategy,
        config={"desired_num_of_artifacts": 2},
        examples=produce.outputs["examples"],
    ).with_id("latest")
    resolving = _pipeline(tmp_path, [produce, latest])
    said = []
    result = run_component(resolving, "latest", "r3", log=said.append)
    assert result["artifacts"]["examples"] == [older]
    assert any(newer in s and "half written, ignored" in s for s in said)


def test_savedmodel_types_stage_locally_under_a_remote_root(tmp_path, object_store):
    model = LocalModel(text="w=1")
    read = ReadModel(model=model.outputs["model"])
    pipeline = _pipeline(tmp_path, [model, read])
    uri = run_component(pipeline, "LocalModel", "r1", log=None)["outputs"]["model"]
    assert uri == f"{ROOT}/LocalModel/model/{uri.rsplit('/', 1)[1]}"
    assert object_store.objects[f"{uri}/variables/weights.txt"] == b"w=1"
    assert publish.is_complete(uri)
    seen = run_component(pipeline, "ReadModel", "r1", log=None)["outputs"]["statistics"]
    assert _read(seen, "seen.txt") == b"w=1"

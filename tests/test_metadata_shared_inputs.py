"""One artifact given to an execution under several input keys (a cached model that is also the
resolved baseline): ML Metadata keeps one INPUT event per artifact and execution, so the
event's path holds each ``[key, index]``, and reading the inputs back gives every key."""

from conveyor.dsl.artifacts import Artifact
from conveyor.orchestration.metadata import Metadata


def test_an_artifact_under_two_input_keys_is_one_event_with_both_paths(tmp_path):
    from ml_metadata.proto import metadata_store_pb2 as pb

    md = Metadata(str(tmp_path / "metadata.sqlite"))
    train = md.start_execution("conveyor.Test", "p", "r1", "Trainer", {}, "k1")
    model = Artifact("Model", str(tmp_path / "model"))
    other = Artifact("Examples", str(tmp_path / "examples"))
    md.finish_execution(train, "COMPLETE", {"model": model, "examples": other})

    ex = md.start_execution(
        "conveyor.Test",
        "p",
        "r2",
        "Evaluator",
        {"model": model, "baseline_model": [model], "examples": [other, other]},
        "k2",
    )
    events = [e for e in md.store.get_events_by_execution_ids([ex]) if e.type == pb.Event.INPUT]
    assert sorted(e.artifact_id for e in events) == sorted([model.id, other.id])
    [model_event] = [e for e in events if e.artifact_id == model.id]
    steps = [s.key if s.HasField("key") else s.index for s in model_event.path.steps]
    assert steps == ["model", 0, "baseline_model", 0]
    inputs = md.input_lists_of_execution(ex)
    assert {k: [a.id for a in v] for k, v in inputs.items()} == {
        "model": [model.id],
        "baseline_model": [model.id],
        "examples": [other.id, other.id],
    }
    md.finish_execution(ex, "COMPLETE", {})
    assert md.latest_outputs("p", "r1", "Trainer")["model"].id == model.id

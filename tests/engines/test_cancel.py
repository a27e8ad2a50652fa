"""A job left running on an engine by a client that went away is cancelled by
``python -m conveyor.orchestration.engines cancel`` (``cancel_jobs``), and then
nothing of it runs there any more: on Flink a Beam job outlives the process that
submitted it, and Spark's job server lets the Spark jobs it submitted run on
after the Beam job is cancelled."""

from __future__ import annotations

import time

import pytest


def _slow(x):
    time.sleep(0.5)
    return x


def _wait(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = predicate()
        if found:
            return found
        time.sleep(1)
    raise AssertionError(f"{what} within {timeout:.0f}s")


@pytest.mark.parametrize("name", ["flink", "spark"])
def test_cancel_stops_a_job_whose_client_left_it_running(name, request):
    import apache_beam as beam
    from apache_beam.options.pipeline_options import PipelineOptions
    from apache_beam.runners.runner import PipelineState

    from conveyor.orchestration.engines import engine_module
    from conveyor.orchestration.engines.__main__ import main as engines_cli

    engine = request.getfixturevalue(f"{name}_engine")
    module = engine_module(name)
    assert module.running_jobs() == [], "the engine was not idle before the test"
    # 400 elements at 0.5 s each on 2 workers: minutes, far longer than the test waits.
    pipeline = beam.Pipeline(options=PipelineOptions(engine.test_args))
    _ = pipeline | beam.Create(range(400)) | beam.Reshuffle() | beam.Map(_slow)
    result = pipeline.run()
    try:
        _wait(module.running_jobs, 180, f"no job running on {name}")
        assert engines_cli(["cancel", name]) == 0
        _wait(lambda: module.running_jobs() == [], 60, f"the job still runs on {name}")
        try:
            state = result.wait_until_finish()
        except Exception as exc:  # the portable runner raises a cancelled job's end
            assert "cancel" in str(exc).lower(), exc
        else:
            assert state == PipelineState.CANCELLED
    finally:
        module.cancel_jobs()

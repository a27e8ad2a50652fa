"""``python -m conveyor.orchestration.engines start|stop|status|cancel [NAMES...]``.

Starts, stops or reports the named engines (default: flink spark), in order, or
cancels the jobs still running on them (a stopped client leaves its job running);
exit 2 with the reason when one cannot be started or does not exist.
"""

from __future__ import annotations

import argparse
import json
import sys

from conveyor.orchestration.engines import DEFAULT_ENGINES, engine_module
from conveyor.orchestration.engines.common import EngineError

__all__ = ["main"]


def main(argv: list[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    parser = argparse.ArgumentParser(
        prog="python -m conveyor.orchestration.engines",
        description="Start, stop or report the real engines on loopback.",
    )
    parser.add_argument("action", choices=("start", "stop", "status", "cancel"))
    parser.add_argument("names", nargs="*", help=f"engines (default: {' '.join(DEFAULT_ENGINES)})")
    args = parser.parse_args(argv)
    names = args.names or list(DEFAULT_ENGINES)
    try:
        modules = [(name, engine_module(name)) for name in names]
    except EngineError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.action == "stop":
        # Stopped in reverse order, so a later engine that uses an earlier one goes first.
        modules = modules[::-1]
    failed = False
    for name, module in modules:
        try:
            if args.action == "start":
                info = module.start()
                print(f"{name}: started {json.dumps(info, default=str)}", flush=True)
            elif args.action == "stop":
                module.stop()
                print(f"{name}: stopped", flush=True)
            elif args.action == "cancel":
                cancel = getattr(module, "cancel_jobs", None)
                jobs = cancel() if cancel else []
                print(f"{name}: cancelled {len(jobs)} job(s) {' '.join(jobs)}".rstrip(), flush=True)
            else:
                print(f"{name}: {json.dumps(module.status(), default=str)}", flush=True)
        except EngineError as exc:
            print(f"error: {name}: {exc}", file=sys.stderr, flush=True)
            failed = True
            if args.action == "start":
                break
    return 2 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

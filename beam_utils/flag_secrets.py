"""Beam flags that carry credentials: kept out of what Conveyor records.

A pipeline's Beam flags are recorded on each execution (ML Metadata, shown by the UI) and
hashed into the cache key. Flags such as ``--s3_secret_access_key`` or a password must be
in neither: the store is shared and readable, and a rotated credential does not change what
a step computes.

Example::

    redact(["--runner=FlinkRunner", "--s3_secret_access_key=abc"])
    # ['--runner=FlinkRunner', '--s3_secret_access_key=***']
    without_secrets(["--s3_secret_access_key", "abc", "--parallelism=2"])
    # ['--parallelism=2']
"""

from __future__ import annotations

import re
from collections.abc import Sequence

__all__ = ["REDACTED", "is_secret_flag", "redact", "without_secrets"]

#: What a secret flag's value is replaced with.
REDACTED = "***"
_SECRET = re.compile(r"secret|password|passwd|token|access_key|credential|session_key", re.I)


def is_secret_flag(arg: str) -> bool:
    """Whether ``arg`` (``--name`` or ``--name=value``) names a flag that holds a credential."""
    if not arg.startswith("--"):
        return False
    return bool(_SECRET.search(arg[2:].split("=", 1)[0]))


def _walk(args: Sequence[str]):
    """``(arg, is_secret_value_or_flag)`` pairs: a secret flag, and the separate value that
    follows a bare ``--name`` of one."""
    args = list(args)
    i = 0
    while i < len(args):
        arg = args[i]
        if is_secret_flag(arg):
            if "=" in arg:
                yield arg, "flag="
            else:
                yield arg, "flag"
                if i + 1 < len(args) and not args[i + 1].startswith("--"):
                    i += 1
                    yield args[i], "value"
        else:
            yield arg, None
        i += 1


def redact(args: Sequence[str]) -> list[str]:
    """``args`` with the values of credential flags replaced by :data:`REDACTED`."""
    out = []
    for arg, kind in _walk(args):
        if kind == "flag=":
            out.append(arg.split("=", 1)[0] + "=" + REDACTED)
        elif kind == "value":
            out.append(REDACTED)
        else:
            out.append(arg)
    return out


def without_secrets(args: Sequence[str]) -> list[str]:
    """``args`` without credential flags and their values (what a cache key may depend on)."""
    return [arg for arg, kind in _walk(args) if kind is None]

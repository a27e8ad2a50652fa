"""Exceptions that the command line turns into a message and exit status 2.

A runner may hand such an error back wrapped: the DirectRunner in memory
re-raises it with `` [while running 'Step']`` added to the message, while the
multi-process DirectRunner, the PortableRunner and remote runners raise a
``RuntimeError`` whose message is the worker's traceback text. :func:`user_error`
finds the user-facing error in either form.
"""

from __future__ import annotations

import re


class InputError(ValueError):
    """Input that cannot be read: a missing file, a corrupt record, an unusable header.

    The message names the file (and the record or row where there is one), so the
    command line can print it as it is.
    """


class UsageError(ValueError):
    """Arguments that do not make a valid request, such as two inputs or none."""


# What a Beam DoFnRunner appends to the message of an exception raised in a step.
_STEP_NOTE = re.compile(r"(?: \[while running '[^\n]*?'\])+$")
# ``module.ClassName: message``, as the last line of a traceback shows an exception.
_EXCEPTION_LINE = re.compile(
    r"^(?P<name>(?:[A-Za-z_]\w*\.)*[A-Za-z_]\w*(?:Error|Exception|Exit|Interrupt)): (?P<message>.*)$",
    re.MULTILINE,
)


def _strip_step_note(text: str) -> str:
    return _STEP_NOTE.sub("", text.rstrip())


def _user_error_classes() -> dict[str, type]:
    """``{"module.QualName": class}`` of InputError, UsageError and their loaded subclasses."""
    found: dict[str, type] = {}
    todo = [InputError, UsageError]
    while todo:
        cls = todo.pop()
        name = f"{cls.__module__}.{cls.__qualname__}"
        if name not in found:
            found[name] = cls
            todo.extend(cls.__subclasses__())
    return found


def _from_text(text: str) -> InputError | UsageError | None:
    """The user error a traceback's text ends with (a ``pkg.InputError: msg`` line), or None.

    Only the last exception the text shows counts: an InputError that was
    handled and followed by another failure is not the reason the run failed.
    """
    found = list(_EXCEPTION_LINE.finditer(text))
    if not found:
        return None
    last = found[-1]
    cls = _user_error_classes().get(last.group("name"))
    if cls is None:
        return None
    # The message runs on to the blank line that ends the exception part of a traceback.
    lines = [last.group("message")]
    for line in text[last.end() :].split("\n")[1:]:
        if not line.strip() or line.startswith("Traceback (most recent call last)"):
            break
        lines.append(line)
    message = _strip_step_note("\n".join(lines))
    return UsageError(message) if issubclass(cls, UsageError) else InputError(message)


def _clean(error: InputError | UsageError) -> InputError | UsageError:
    text = str(error)
    clean = _strip_step_note(text)
    if clean == text:
        return error
    return (UsageError if isinstance(error, UsageError) else InputError)(clean)


def _is_user_error(e) -> bool:
    return isinstance(e, (InputError, UsageError))


def _inner_user_error(e: BaseException) -> BaseException | None:
    """The user error ``e`` was raised from or while handling, if it should be reported instead.

    An error that describes the user's own code (it carries the user's
    ``frames``, as ``UserCodeError`` does) is the report itself; and an error
    raised ``from None`` has said its context is not the point.
    """
    if getattr(e, "frames", None) is not None:
        return None
    nxt = e.__cause__
    if nxt is None and not e.__suppress_context__:
        nxt = e.__context__
    return nxt if _is_user_error(nxt) else None


def user_error(exc: BaseException) -> InputError | UsageError | None:
    """The :class:`InputError` or :class:`UsageError` that ``exc`` reports, or None.

    That is ``exc`` itself when it is one (or, when it was raised while handling
    or from another one, as Beam re-raises a step's error, the innermost: it has
    the original message); else the error its message text ends with, where
    runners that run workers in other processes put the worker's traceback; else
    the same for the exception ``exc`` was raised from (``raise ... from e``).
    An error raised while merely handling a user error is not one. The step note
    Beam appends (`` [while running '...']``) is removed, so the message reads as
    the code that raised it wrote it. The error is returned as it is when its
    message has no such note; otherwise (and when found in text) as a plain
    InputError or UsageError.
    """
    seen = set()
    e = exc
    while e is not None and id(e) not in seen:
        seen.add(id(e))
        if _is_user_error(e):
            inner = e
            while True:
                nxt = _inner_user_error(inner)
                if nxt is None or id(nxt) in seen:
                    return _clean(inner)
                seen.add(id(nxt))
                inner = nxt
        try:
            text = str(e)
        except Exception:
            text = ""
        found = _from_text(text)
        if found is not None:
            return found
        e = e.__cause__
    return None

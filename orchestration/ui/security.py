"""The UI's guards: an access token on every request, a CSRF token on every action, and file
paths confined to the pipeline roots.

* Token: when the server has one (required off loopback), a request carries it as
  ``Authorization: Bearer T``, the ``conveyor_ui_token`` cookie, or once as ``?token=T``
  (a page then redirects to its URL without it, setting the cookie); anything else is 401.
* CSRF: pages carry the server's CSRF token (a ``<meta name="csrf-token">`` and the
  ``conveyor_csrf`` cookie); a POST must send it back in the ``X-CSRF-Token`` header (which a
  cross-site form cannot set) and, when the browser says where it comes from (``Origin``),
  come from this host.
* Paths: :func:`safe_path` resolves a request's relative path inside a root, refusing
  ``..``, absolute paths, NUL, backslashes, percent signs left after decoding (double
  encodings) and symlinks that lead out.
"""

from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
from urllib.parse import urlsplit

TOKEN_COOKIE = "conveyor_ui_token"
CSRF_COOKIE = "conveyor_csrf"
CSRF_HEADER = "x-csrf-token"
TOKEN_ENV = "CONVEYOR_UI_TOKEN"


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address or ``localhost``.

    >>> is_loopback("127.0.0.1"), is_loopback("localhost"), is_loopback("0.0.0.0")
    (True, True, False)
    """
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def new_token() -> str:
    """A fresh random token (CSRF, or an access token to give ``--token``)."""
    return secrets.token_urlsafe(32)


def same(a: str | None, b: str | None) -> bool:
    """Constant-time equality of two tokens (False if either is missing)."""
    return bool(a) and bool(b) and hmac.compare_digest(str(a).encode(), str(b).encode())


def request_token(headers, cookies, query) -> str | None:
    """The access token a request carries: bearer header, else ``?token=``, else the cookie."""
    auth = headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip()
    return query.get("token") or cookies.get(TOKEN_COOKIE)


def origin_ok(headers) -> bool:
    """A request without ``Origin`` (not a browser's cross-site form), or from this host."""
    origin = headers.get("origin")
    if not origin or origin == "null":
        return origin is None
    return urlsplit(origin).netloc == headers.get("host", "")


class PathRefused(LookupError):
    """A requested path outside its root (served as 404, like a missing file)."""


def safe_path(root: str, relative: str) -> str:
    """The real path of ``relative`` inside ``root``; :class:`PathRefused` if it could leave it.

    >>> safe_path("/", "../etc/passwd")
    Traceback (most recent call last):
    ...
    conveyor.orchestration.ui.security.PathRefused: ../etc/passwd: not inside the pipeline root
    """
    bad = (
        not relative
        or relative.startswith(("/", "~"))
        or any(c in relative for c in ("\x00", "\\", "%"))
        or any(part in ("..", ".") for part in relative.split("/"))
        or os.path.isabs(relative)
    )
    if bad:
        raise PathRefused(f"{relative}: not inside the pipeline root")
    real_root = os.path.realpath(root)
    path = os.path.realpath(os.path.join(real_root, relative))
    if os.path.commonpath([real_root, path]) != real_root:
        raise PathRefused(f"{relative}: not inside the pipeline root")
    return path


def inside(path: str, roots: list[str]) -> str | None:
    """The root (of ``roots``) that ``path``'s real path lies in, or None."""
    real = os.path.realpath(path)
    for root in roots:
        r = os.path.realpath(root)
        if os.path.commonpath([r, real]) == r:
            return r
    return None

"""The ASGI application of ``conveyor ui`` (Starlette): routes, guards, errors.

:func:`create_app` builds it; ``uvicorn`` serves it (:mod:`conveyor.orchestration.ui.cli`).

Example::

    from starlette.testclient import TestClient
    app = create_app(roots=["out/demo"])
    TestClient(app).get("/api/pipelines").json()
"""

from __future__ import annotations

import os
from urllib.parse import quote, urlencode

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import (
    FileResponse,
    HTMLResponse,
    JSONResponse,
    RedirectResponse,
    Response,
)
from starlette.routing import Route

from conveyor.orchestration.ui import api, assets, pages, security
from conveyor.orchestration.ui.actions import ActionError
from conveyor.orchestration.ui.store import Ambiguous, NotFound, Store


class UiState:
    """What every request reads: the store, the access token (None: none needed), the CSRF token.

    Args:
      store: the pipelines and their metadata.
      token: the access token every request must carry, or None.
      csrf: the CSRF token POSTs must send (default: a fresh random one).
      hosts: the host names a request's ``Host`` header may give (None: any).
    """

    def __init__(
        self,
        store: Store,
        token: str | None = None,
        csrf: str | None = None,
        hosts: set[str] | None = None,
    ):
        self.store = store
        self.token = token or None
        self.csrf = csrf or security.new_token()
        self.hosts = hosts

    def file_url(self, ref, uri: str) -> str | None:
        """``/files/<pipeline>/<path>`` of a folder inside ``ref``'s root (None outside it)."""
        if "://" in uri or not uri:
            return None
        real = os.path.realpath(uri)
        if security.inside(real, [ref.root]) is None:
            return None
        rel = os.path.relpath(real, ref.root)
        return f"/files/{quote(ref.name, safe='')}/{quote(rel)}"


#: Pages load nothing but this server's own script, styles and images (offline, no CDN).
CSP = (
    b"default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; "
    b"connect-src 'self'; frame-ancestors 'none'; form-action 'self'"
)


class Guard:
    """ASGI middleware: the access token on every request, the CSRF token on every POST."""

    def __init__(self, app, state: UiState):
        self.app, self.state = app, state

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        request = Request(scope)
        if self.state.hosts is not None and not _host_allowed(request, self.state.hosts):
            # DNS rebinding: a page of another site whose name now points to 127.0.0.1
            return await _error(400, "unexpected Host header")(scope, receive, send)
        if self.state.token:
            given = security.request_token(request.headers, request.cookies, request.query_params)
            if not security.same(given, self.state.token):
                return await _error(401, "missing or wrong access token (--token)")(
                    scope, receive, send
                )
            page = request.method == "GET" and not request.url.path.startswith("/api/")
            if page and request.query_params.get("token"):
                # a browser's first visit: the token goes into a cookie and out of the URL
                return await _without_token(request, self.state.token)(scope, receive, send)
        if request.method not in ("GET", "HEAD"):
            sent = request.headers.get(security.CSRF_HEADER)
            if not security.same(sent, self.state.csrf) or not security.origin_ok(request.headers):
                return await _error(403, "missing or wrong CSRF token (X-CSRF-Token)")(
                    scope, receive, send
                )

        async def send_with_cookies(message):
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                cookie = f"{security.CSRF_COOKIE}={self.state.csrf}; Path=/; SameSite=Strict"
                headers.append((b"set-cookie", cookie.encode()))
                headers.append((b"x-content-type-options", b"nosniff"))
                headers.append((b"x-frame-options", b"DENY"))
                headers.append((b"content-security-policy", CSP))
                message = dict(message, headers=headers)
            await send(message)

        await self.app(scope, receive, send_with_cookies)


def _without_token(request: Request, token: str) -> Response:
    """A redirect to the same URL without ``?token=``, setting the token's cookie."""
    query = urlencode([(k, v) for k, v in request.query_params.multi_items() if k != "token"])
    location = request.url.path + (f"?{query}" if query else "")
    response = RedirectResponse(location, status_code=303)
    cookie = f"{security.TOKEN_COOKIE}={token}; Path=/; HttpOnly; SameSite=Strict"
    response.headers.append("set-cookie", cookie)
    return response


def _host_allowed(request: Request, hosts: set[str]) -> bool:
    host = request.headers.get("host", "")
    name = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    return name in hosts


def _error(status: int, message: str) -> Response:
    return JSONResponse({"error": message, "status": status}, status_code=status)


def _handle(status: int):
    def handler(request: Request, exc: Exception) -> Response:
        if request.url.path.startswith("/api/"):
            return _error(getattr(exc, "status", status), str(exc))
        code = getattr(exc, "status", status)
        return HTMLResponse(
            f"<!doctype html><title>{code}</title><h1>{code}</h1><p>{pages.e(str(exc))}</p>",
            status_code=code,
        )

    return handler


def serve_file(request: Request) -> Response:
    """A file inside a known pipeline's root (404 for anything else, even one that exists)."""
    store = request.app.state.ui.store
    ref = store.pipeline(request.path_params["name"])
    try:
        path = security.safe_path(ref.root, request.path_params["path"])
    except security.PathRefused as e:
        raise NotFound(str(e)) from None
    if not os.path.isfile(path):
        raise NotFound(f"{request.path_params['path']}: no such file")
    return FileResponse(path)


def _static(text: str, media_type: str):
    def endpoint(request: Request) -> Response:
        return Response(text, media_type=media_type, headers={"cache-control": "max-age=300"})

    return endpoint


ROUTES = [
    Route("/", pages.pipelines_page),
    Route("/pipelines/{name}", pages.runs_page),
    Route("/pipelines/{name}/compare", pages.compare_page),
    Route("/pipelines/{name}/runs/{run_id}", pages.run_page),
    Route("/pipelines/{name}/runs/{run_id}/nodes/{component_id}", pages.node_page),
    Route("/pipelines/{name}/artifacts/{id}", pages.artifact_page),
    Route("/pipelines/{name}/artifacts/{id}/lineage", pages.lineage_page),
    Route("/files/{name}/{path:path}", serve_file),
    Route("/static/ui.css", _static(assets.CSS, "text/css")),
    Route("/static/ui.js", _static(assets.JS, "text/javascript")),
    Route("/api/openapi.json", api.openapi),
    Route("/api/csrf", api.csrf),
    Route("/api/pipelines", api.pipelines),
    Route("/api/pipelines/{name}", api.pipeline),
    Route("/api/pipelines/{name}/runs", api.runs, methods=["GET"]),
    Route("/api/pipelines/{name}/runs", api.create_run, methods=["POST"]),
    Route("/api/pipelines/{name}/compare", api.compare_runs),
    Route("/api/runs/{run_id}", api.run),
    Route("/api/runs/{run_id}/cancel", api.cancel, methods=["POST"]),
    Route("/api/runs/{run_id}/components/{component_id}/log", api.component_log),
    Route("/api/artifacts/{id}", api.artifact),
    Route("/api/artifacts/{id}/lineage", api.lineage),
]


def create_app(
    roots: list[str] | None = None,
    token: str | None = None,
    csrf: str | None = None,
    hosts: set[str] | None = None,
) -> Starlette:
    """The UI's ASGI app over the registered pipelines (``CONVEYOR_HOME``) and ``roots``.

    Args:
      roots: extra pipeline roots (folders holding a ``metadata.sqlite``).
      token: an access token every request must carry (None: no check, for loopback).
      csrf: the CSRF token actions need (default: random, shown on every page).
      hosts: the names a request's ``Host`` may give (None: any); ``conveyor ui`` on a
        loopback address allows only ``127.0.0.1``, ``localhost`` and ``[::1]``, against
        DNS rebinding.
    """
    state = UiState(Store(roots), token, csrf, hosts)
    app = Starlette(
        routes=ROUTES,
        exception_handlers={
            NotFound: _handle(404),
            Ambiguous: _handle(409),
            ActionError: _handle(409),
            FileNotFoundError: _handle(404),
        },
    )
    app.state.ui = state
    app.add_middleware(Guard, state=state)
    return app

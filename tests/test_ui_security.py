"""``conveyor ui``'s guards: loopback by default, an access token off it, CSRF on actions,
files only from inside the pipeline roots (``..``, absolute paths, encodings, symlinks out:
404), the Host header checked against DNS rebinding."""

from __future__ import annotations

import os

import pytest
from conftest import run_conveyor_in_process
from starlette.testclient import TestClient
from test_ui_api import NAME, ui_pipeline

from conveyor.orchestration import LocalDagRunner
from conveyor.orchestration.ui import create_app, security


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    """A pipeline root with one run, a secret beside it and a symlink out of it."""
    base = tmp_path_factory.mktemp("uisec")
    root = base / "root"
    LocalDagRunner(in_process=True, quiet=True).run(ui_pipeline(root), run_id="run-1")
    (base / "secret.txt").write_text("not for the UI")
    (root / "note.txt").write_text("inside")
    os.symlink(base / "secret.txt", root / "link-out.txt")
    os.symlink(base, root / "dir-out")
    os.symlink(root / "note.txt", root / "link-in.txt")
    return root


def _client(root, **kwargs) -> TestClient:
    os.environ.pop(security.TOKEN_ENV, None)
    return TestClient(create_app(roots=[str(root)], csrf="csrf-1", **kwargs))


@pytest.fixture(autouse=True)
def empty_home(tmp_path, monkeypatch):
    monkeypatch.setenv("CONVEYOR_HOME", str(tmp_path / "home"))


def test_files_only_inside_the_root(root):
    c = _client(root)
    assert c.get(f"/files/{NAME}/note.txt").text == "inside"
    assert c.get(f"/files/{NAME}/link-in.txt").text == "inside"  # a symlink that stays inside
    refused = [
        f"/files/{NAME}/%2e%2e/secret.txt",
        f"/files/{NAME}/%2E%2E/secret.txt",
        f"/files/{NAME}/.%2e/secret.txt",
        f"/files/{NAME}/%252e%252e/secret.txt",  # double encoded
        f"/files/{NAME}/%2e%2e%2fsecret.txt",
        f"/files/{NAME}/..%5csecret.txt",
        f"/files/{NAME}/%2fetc%2fpasswd",
        f"/files/{NAME}//etc/passwd",
        f"/files/{NAME}/link-out.txt",  # symlink out
        f"/files/{NAME}/dir-out/secret.txt",  # through a symlinked folder
        f"/files/{NAME}/note.txt%00.png",
        f"/files/{NAME}/",
        "/files/nope/note.txt",
        f"/files/{NAME}/metadata.sqlite/..",
    ]
    for url in refused:
        r = c.get(url)
        assert r.status_code == 404, url
        assert "not for the UI" not in r.text


def test_safe_path():
    for bad in (
        "../x",
        "a/../../x",
        "/etc/passwd",
        "a/./b",
        "a\\b",
        "%2e%2e/x",
        "",
        "~/x",
        "a\x00",
    ):
        with pytest.raises(security.PathRefused):
            security.safe_path("/tmp", bad)
    assert security.safe_path("/", "etc") == "/etc"


def test_token_on_every_request(root):
    c = _client(root, token="s3cret")
    for path in ("/", "/api/pipelines", f"/files/{NAME}/note.txt", "/static/ui.css"):
        assert c.get(path).status_code == 401, path
    assert c.get("/api/pipelines", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert c.get("/api/pipelines?token=wrong").status_code == 401
    assert c.get("/api/pipelines", headers={"Authorization": "Bearer s3cret"}).status_code == 200
    assert not c.cookies.get(security.TOKEN_COOKIE)  # a script's bearer token sets no cookie
    r = c.get(f"/pipelines/{NAME}?token=s3cret&offset=0", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/pipelines/{NAME}?offset=0"
    assert any(h.startswith(security.TOKEN_COOKIE) for h in r.headers.get_list("set-cookie"))
    assert c.get("/api/pipelines?token=s3cret").status_code == 200  # scripts: no redirect
    assert c.get(f"/files/{NAME}/note.txt").text == "inside"  # the cookie from now on
    c.cookies.clear()
    assert c.get("/api/pipelines").status_code == 401


def test_post_needs_the_csrf_token(root):
    c = _client(root)
    url = f"/api/runs/run-1/cancel?pipeline={NAME}"
    assert c.post(url).status_code == 403
    assert c.post(url, headers={"X-CSRF-Token": "wrong"}).status_code == 403
    cross = {"X-CSRF-Token": "csrf-1", "Origin": "http://evil.example"}
    assert c.post(url, headers=cross).status_code == 403
    r = c.post(url, headers={"X-CSRF-Token": "csrf-1", "Origin": "http://testserver"})
    assert r.status_code == 409 and "COMPLETE" in r.json()["error"]  # past the guard: not running
    assert 'name="csrf-token" content="csrf-1"' in c.get("/").text
    assert c.get("/api/csrf").json() == {"csrf_token": "csrf-1"}
    # a pipeline that is only in a --root store (not registered) cannot be started
    r = c.post(f"/api/pipelines/{NAME}/runs", json={}, headers={"X-CSRF-Token": "csrf-1"})
    assert r.status_code == 409 and "not registered" in r.json()["error"]


def test_host_header_checked_on_loopback(root):
    c = _client(root, hosts={"127.0.0.1", "localhost"})
    assert c.get("/api/pipelines", headers={"Host": "127.0.0.1:8765"}).status_code == 200
    assert c.get("/api/pipelines", headers={"Host": "localhost"}).status_code == 200
    assert c.get("/api/pipelines", headers={"Host": "rebound.example:8765"}).status_code == 400


def test_non_loopback_host_needs_a_token(root, capsys, monkeypatch):
    monkeypatch.delenv(security.TOKEN_ENV, raising=False)
    assert run_conveyor_in_process("ui", "--host", "0.0.0.0", "--root", root) == 2
    assert "--token" in capsys.readouterr().err
    assert run_conveyor_in_process("ui", "--root", root / "missing") == 2
    assert security.is_loopback("127.0.0.1") and security.is_loopback("::1")
    assert not security.is_loopback("0.0.0.0") and not security.is_loopback("192.168.1.2")

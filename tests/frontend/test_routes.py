"""Serving the dashboard: the page, our static files, Plotly from the plotly package."""

from __future__ import annotations

import re
from pathlib import Path

import plotly
import pytest

from server.errors import NotFound
from server.frontend_routes import frontend_dir, resolve_static

PLOTLY_FILE = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


def test_index_loads_only_our_own_files(live_server):
    r = live_server.api.get("/")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/html")
    assert r.headers["cache-control"] == "no-cache"
    refs = re.findall(r'(?:src|href|content)="([^"]+)"', r.text)
    assert refs and all(ref.startswith(("/", "#", "width=")) for ref in refs), refs
    assert f"/static/plotly.min.js?v={plotly.__version__}" in r.text
    assert "//" not in " ".join(refs)
    for ref in refs:
        if ref.startswith("/static/"):
            assert live_server.api.get(ref).status_code == 200, ref


def test_plotly_comes_from_the_plotly_package_with_a_long_cache(live_server):
    r = live_server.api.get(f"/static/plotly.min.js?v={plotly.__version__}")
    assert r.status_code == 200
    assert r.content == PLOTLY_FILE.read_bytes()
    assert "max-age=31536000" in r.headers["cache-control"]
    assert r.headers["content-type"].startswith("text/javascript")


def test_static_files_and_modules(live_server):
    r = live_server.api.get("/static/js/main.js")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/javascript")
    assert r.headers["cache-control"] == "no-cache"
    assert live_server.api.get("/static/app.css").headers["content-type"].startswith("text/css")
    assert live_server.api.head("/static/app.css").status_code == 200


def test_no_way_out_of_the_frontend_folder(live_server):
    for path in (
        "/static/..%2fserver/app.py",
        "/static/%2e%2e/%2e%2e/etc/passwd",
        "/static/js/..%2f..%2fpyproject.toml",
        "/static/.hidden",
        "/static/nope.js",
        "/static/js",
        "/static/%2fetc%2fpasswd",
    ):
        r = live_server.api.get(path)
        assert r.status_code == 404, path
        assert "detail" in r.json()


def test_resolve_static_refuses_escapes():
    assert resolve_static("js/main.js") == frontend_dir() / "js" / "main.js"
    for bad in (
        "../server/app.py",
        "js/../../server/app.py",
        "/etc/passwd",
        "js\\main.js",
        "",
        ".git/config",
        "js//main.js",
        "index.html\x00.js",
    ):
        assert resolve_static(bad) is None, bad


def test_frontend_dir_from_the_environment(tmp_path, monkeypatch):
    (tmp_path / "index.html").write_text("<!doctype html>")
    monkeypatch.setenv("LOSSLENS_FRONTEND_DIR", str(tmp_path))
    frontend_dir.cache_clear()
    try:
        assert frontend_dir() == tmp_path.resolve()
        monkeypatch.setenv("LOSSLENS_FRONTEND_DIR", str(tmp_path / "nowhere"))
        frontend_dir.cache_clear()
        with pytest.raises(NotFound, match="LOSSLENS_FRONTEND_DIR"):
            frontend_dir()
    finally:
        monkeypatch.delenv("LOSSLENS_FRONTEND_DIR")
        frontend_dir.cache_clear()

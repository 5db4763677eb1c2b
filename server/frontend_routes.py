"""Serving the dashboard: the single page at ``/``, our static files, and Plotly.js.

Plotly.js comes from the ``plotly`` Python package's bundled file, never a CDN: the dashboard
works on air-gapped clusters. Our own files are served with ``no-cache`` (the browser revalidates
with the ETag, so a deploy shows at once); Plotly is cached for a year under a versioned URL.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import FileResponse, HTMLResponse, Response

from .errors import NotFound

# The checkout's frontend/ (source installs); the Docker image copies it to /app/frontend and
# runs from /app; LOSSLENS_FRONTEND_DIR names another place.
_CHECKOUT_FRONTEND = Path(__file__).resolve().parent.parent / "frontend"
NO_CACHE = {"Cache-Control": "no-cache"}
LONG_CACHE = {"Cache-Control": "public, max-age=31536000, immutable"}
MEDIA_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".json": "application/json",
}

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def frontend_dir() -> Path:
    """Where the dashboard's files are: $LOSSLENS_FRONTEND_DIR, the checkout, or ./frontend."""
    configured = os.environ.get("LOSSLENS_FRONTEND_DIR")
    candidates = [Path(configured)] if configured else [_CHECKOUT_FRONTEND, Path.cwd() / "frontend"]
    for candidate in candidates:
        if (candidate / "index.html").is_file():
            return candidate.resolve()
    raise NotFound(
        "the dashboard's files are missing (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); set LOSSLENS_FRONTEND_DIR to the frontend/ folder"
    )


@lru_cache(maxsize=1)
def plotly_js() -> tuple[Path, str]:
    """The path of the plotly package's bundled ``plotly.min.js`` and the package version."""
    import plotly

    path = Path(plotly.__file__).resolve().parent / "package_data" / "plotly.min.js"
    if not path.is_file():
        raise RuntimeError(f"plotly.min.js is missing from the plotly package ({path})")
    return path, plotly.__version__


def _index_html() -> str:
    text = (frontend_dir() / "index.html").read_text(encoding="utf-8")
    # The version in Plotly's URL lets it be cached for a year and still change on upgrade.
    return text.replace("__PLOTLY_VERSION__", plotly_js()[1])


@router.api_route("/", methods=["GET", "HEAD"])
def index() -> HTMLResponse:
    """The dashboard (a single page; the views live behind ``#/`` routes)."""
    return HTMLResponse(_index_html(), headers=NO_CACHE)


@router.api_route("/static/plotly.min.js", methods=["GET", "HEAD"])
def plotly_bundle() -> FileResponse:
    path, _version = plotly_js()
    return FileResponse(path, media_type=MEDIA_TYPES[".js"], headers=LONG_CACHE)


def resolve_static(path: str, root: Path | None = None) -> Path | None:
    """The file under ``frontend/`` that ``path`` names, or None (outside, hidden, unknown type)."""
    if not path or "\\" in path or "\x00" in path:
        return None
    parts = path.split("/")
    if any(p in ("", ".", "..") or p.startswith(".") for p in parts):
        return None
    root = (root or frontend_dir()).resolve()
    candidate = (root / path).resolve()
    if not candidate.is_relative_to(root) or not candidate.is_file():
        return None
    if candidate.suffix not in MEDIA_TYPES:
        return None
    return candidate


@router.api_route("/static/{path:path}", methods=["GET", "HEAD"])
def static_file(path: str) -> Response:
    """A file of ``frontend/``; anything outside it, hidden, or of an unknown type is a 404."""
    found = resolve_static(path)
    if found is None:
        raise NotFound(f"no static file {path[:200]!r}")
    return FileResponse(found, media_type=MEDIA_TYPES[found.suffix], headers=NO_CACHE)

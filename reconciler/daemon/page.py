"""The status page's files: `static/` beside this module, shipped in the package and read once.

Nothing is fetched from anywhere else (no CDN, no web fonts): the page works offline and on hosts that
reach no network but their own.
"""

from __future__ import annotations

from functools import cache
from importlib import resources

FILES = {
    "/": ("index.html", b"text/html; charset=utf-8"),
    "/static/status.js": ("status.js", b"text/javascript; charset=utf-8"),
    "/static/status.css": ("status.css", b"text/css; charset=utf-8"),
}
ASSETS = frozenset(path for path in FILES if path != "/")


@cache
def asset(path: str) -> tuple[bytes, bytes]:
    """The body and content type of one of the page's files (`path` is one of `FILES`)."""
    name, content_type = FILES[path]
    return resources.files("reconciler.daemon").joinpath("static", name).read_bytes(), content_type

"""``GET /ui``: the dashboard's page and its static files, shipped in the package.

The files live in ``src/octoroute/ui/`` (plain HTML, CSS and JavaScript, no build step) and are
read once, when the application is built, into a fixed table: a request can only ever be
answered one of those files, so no path it sends (``..``, encoded slashes, absolute paths) can
reach anything else on disk. The page itself carries no data; everything it shows it fetches
from ``GET /admin/state``, ``GET /admin/events`` and ``POST /route`` with the admin key the user
typed, which is why ``api.auth`` lets the shell (``UI_SHELL_PATHS``) through without a key.

Caching: the page is ``no-cache`` (revalidated by its ``ETag``, so a new version shows at once);
it names each static file with its content hash (``static/app.js?v=...``), and a file asked for
with its current hash is cached for a year (``immutable``). Every answer has a strict
``Content-Security-Policy``: scripts, styles, images and connections from the router's own origin
only, so the page cannot load or send anything elsewhere even if a value it shows were hostile.

``[ui] enabled = false`` makes every ``/ui`` path a 404 in the OpenAI error shape; the flag is
read per request, so a reload applies to the next one.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from typing import Final

from aiohttp import web

from octoroute.api.common import RUNTIME
from octoroute.errors import RouteNotFound

UI_PACKAGE_DIR: Final = "ui"
"""The folder of the ``octoroute`` package that holds the page's files."""
PAGE: Final = "index.html"
CONTENT_TYPES: Final = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".png": "image/png",
    ".txt": "text/plain; charset=utf-8",
}
"""The only kinds of file served; a file of any other kind in the folder is not."""
ASSET_MARK: Final = "{{asset:"
"""In the page, ``{{asset:app.js}}`` becomes ``static/app.js?v=<hash>``."""
CONTENT_SECURITY_POLICY: Final = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)
PAGE_CACHE: Final = "no-cache"
VERSIONED_CACHE: Final = "private, max-age=31536000, immutable"
UNVERSIONED_CACHE: Final = "no-cache"
_COMMON_HEADERS: Final = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@dataclass(frozen=True, slots=True)
class Asset:
    """One file as it is served: its bytes, type, validator and cache version."""

    body: bytes
    content_type: str
    etag: str
    version: str


def _asset(body: bytes, content_type: str) -> Asset:
    version = hashlib.sha256(body).hexdigest()[:16]
    return Asset(body, content_type, f'"{version}"', version)


def _suffix(name: str) -> str:
    dot = name.rfind(".")
    return name[dot:] if dot > 0 else ""


def load_assets(folder: Traversable | None = None) -> tuple[Asset, dict[str, Asset]]:
    """The page and the static files by name, read from ``folder`` (the package's ``ui/``).

    The page's ``{{asset:NAME}}`` marks are replaced by each file's versioned URL here, once."""
    root = folder if folder is not None else files("octoroute").joinpath(UI_PACKAGE_DIR)
    static: dict[str, Asset] = {}
    for entry in root.iterdir():
        content_type = CONTENT_TYPES.get(_suffix(entry.name))
        if entry.is_file() and entry.name != PAGE and content_type is not None:
            static[entry.name] = _asset(entry.read_bytes(), content_type)
    html = root.joinpath(PAGE).read_text(encoding="utf-8")
    for name, asset in static.items():
        html = html.replace(f"{ASSET_MARK}{name}}}}}", f"static/{name}?v={asset.version}")
    if ASSET_MARK in html:
        start = html.index(ASSET_MARK)
        raise RuntimeError(
            f"the dashboard page names a file that is not shipped: {html[start:][:60]}"
        )
    return _asset(html.encode("utf-8"), CONTENT_TYPES[".html"]), static


def _switched_off(path: str) -> RouteNotFound:
    return RouteNotFound(
        f"There is no dashboard at {path[:100]}: it is switched off on this router "
        "([ui] enabled = false). Set [ui] enabled = true and reload to use it."
    )


def _answer(request: web.Request, asset: Asset, cache_control: str) -> web.Response:
    headers = {**_COMMON_HEADERS, "ETag": asset.etag, "Cache-Control": cache_control}
    if asset.etag in request.headers.get("If-None-Match", ""):
        return web.Response(status=304, headers=headers)
    headers["Content-Type"] = asset.content_type
    return web.Response(body=asset.body, headers=headers)


def add_routes(app: web.Application) -> None:
    """Register ``GET /ui`` (a redirect to ``/ui/``), ``GET /ui/`` and ``GET /ui/static/{name}``.

    The page is served at ``/ui/`` so that its relative URLs (``static/...``, ``../admin/state``)
    also work behind a proxy that mounts the router under a path prefix."""
    page, static = load_assets()

    def check(request: web.Request) -> None:
        if not request.app[RUNTIME].config.ui.enabled:
            raise _switched_off(request.path)

    async def redirect(request: web.Request) -> web.Response:
        check(request)
        # Relative, so a path prefix added by a proxy is kept.
        location = "ui/" + (f"?{request.query_string}" if request.query_string else "")
        return web.Response(status=308, headers={**_COMMON_HEADERS, "Location": location})

    async def index(request: web.Request) -> web.Response:
        check(request)
        return _answer(request, page, PAGE_CACHE)

    async def asset(request: web.Request) -> web.Response:
        check(request)
        found = static.get(request.match_info["name"])
        if found is None:
            raise RouteNotFound(
                f"The dashboard has no file {request.path[:100]}; its files are "
                f"{', '.join('/ui/static/' + name for name in sorted(static))}."
            )
        versioned = request.query.get("v") == found.version
        return _answer(request, found, VERSIONED_CACHE if versioned else UNVERSIONED_CACHE)

    app.router.add_get("/ui", redirect)
    app.router.add_get("/ui/", index)
    app.router.add_get("/ui/static/{name}", asset)

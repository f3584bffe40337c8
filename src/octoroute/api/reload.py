"""``POST /admin/reload``: reload the configuration file now and answer what it did.

200 with what changed when the file was applied (or nothing needed to be), 422 with every
problem when it was not (the router keeps its previous configuration); the body is
``ReloadReport.body`` (``docs/api.md``). With ``serve --workers`` the other workers are asked to
reload too (``octoroute.reload``). Access control is by path, like every ``/admin/`` route.
"""

from __future__ import annotations

from typing import Final

import orjson
from aiohttp import web

from octoroute.reload import ADMIN_TRIGGER, Reloader

RELOADER: Final = web.AppKey("octoroute_reloader", Reloader)
"""The application's reloader, set by ``create_app``."""

REJECTED_STATUS: Final = 422
"""The file was read and checked, and is wrong: the request was understood, its object is not."""


async def reload(request: web.Request) -> web.Response:
    """Reload the configuration file; every worker, with ``--workers``."""
    report = await request.app[RELOADER].reload(ADMIN_TRIGGER, everywhere=True)
    return web.Response(
        status=REJECTED_STATUS if report.rejected else 200,
        body=orjson.dumps(report.body()),
        content_type="application/json",
    )


def add_routes(app: web.Application) -> None:
    """Register this module's routes."""
    app.router.add_post("/admin/reload", reload)

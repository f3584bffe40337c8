"""The floor: the least an aiohttp pass-through can do, the reference for every router number.

It does only what any router must do per request: read the body, ``orjson.loads`` it to see
``model`` and ``stream``, forward the original bytes over one keep-alive ``ClientSession`` to the
upstream fixed for that model, and relay status and body (streams chunk by chunk with
``iter_any``). No validation, routing, retries, metrics or logs: whatever the router costs above
this is the price of its features.

``python -m bench.floor --port 18090 --route bench-model=http://127.0.0.1:18081/v1``
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
from collections.abc import AsyncIterator

import aiohttp
import orjson
import uvloop
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
ROUTES = web.AppKey("routes", dict[str, str])


async def chat(request: web.Request) -> web.StreamResponse:
    """Forward one chat completion to the upstream fixed for its ``model``; relay the answer."""
    body = await request.read()
    peek = orjson.loads(body)
    routes = request.app[ROUTES]
    url = routes.get(peek.get("model"), routes["*"])
    headers = {"Content-Type": "application/json"}
    async with request.app[SESSION].post(url, data=body, headers=headers) as upstream:
        if not peek.get("stream"):
            answer = await upstream.read()
            return web.Response(
                status=upstream.status, body=answer, content_type="application/json"
            )
        response = web.StreamResponse(status=upstream.status)
        response.content_type = "text/event-stream"
        await response.prepare(request)
        async for chunk in upstream.content.iter_any():
            await response.write(chunk)
        await response.write_eof()
        return response


async def health(_request: web.Request) -> web.Response:
    """Liveness, so the harness can poll for readiness."""
    return web.json_response({"ok": True})


async def session_ctx(app: web.Application) -> AsyncIterator[None]:
    """One client session per process, configured as the research recommends for the router."""
    async with aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=512, keepalive_timeout=60),
        timeout=aiohttp.ClientTimeout(total=None, sock_read=30),
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("User-Agent", "Accept-Encoding"),
    ) as session:
        app[SESSION] = session
        yield


async def _lifetime(_app: web.Application, *, seconds: float) -> None:
    # The harness stops the floor itself; this only bounds a forgotten one (SIGINT: graceful).
    asyncio.get_running_loop().call_later(seconds, os.kill, os.getpid(), signal.SIGINT)


def main() -> None:
    """Serve until SIGTERM."""
    parser = argparse.ArgumentParser(prog="python -m bench.floor")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=1200.0, help="exit after this long")
    parser.add_argument(
        "--route", action="append", default=[], help="MODEL=BASE_URL ('*': default)"
    )
    args = parser.parse_args()
    app = web.Application()
    pairs = (item.split("=", 1) for item in args.route)
    app[ROUTES] = {model: f"{base}/chat/completions" for model, base in pairs}
    app.cleanup_ctx.append(session_ctx)
    app.on_startup.append(functools.partial(_lifetime, seconds=args.max_seconds))
    app.router.add_post("/v1/chat/completions", chat)
    app.router.add_get("/health", health)
    web.run_app(
        app,
        host="127.0.0.1",
        port=args.port,
        print=None,
        access_log=None,
        handler_cancellation=True,
        loop=uvloop.new_event_loop(),
    )


if __name__ == "__main__":
    main()

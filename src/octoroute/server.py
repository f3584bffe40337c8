"""Running the application on a socket until SIGINT or SIGTERM, then shutting down gracefully.

Shutdown order: stop accepting connections, let in-flight requests finish (at most
``SHUTDOWN_GRACE_SECONDS``), then stop the prober and close the upstream pool.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Callable
from typing import Final

import msgspec
from aiohttp import web

from octoroute.app import create_app
from octoroute.config.schema import Config
from octoroute.fdlimit import fit_fd_limit, in_flight_that_fits
from octoroute.observability.logging import get_logger
from octoroute.observability.tracing import Tracing
from octoroute.serving import make_runner

SHUTDOWN_GRACE_SECONDS: Final = 30.0

log = get_logger("octoroute.server")


def _bound_url(runner: web.AppRunner) -> str:
    host, port = runner.addresses[0][:2]
    if ":" in host:
        host = f"[{host}]"
    return f"http://{host}:{port}"


def _fit_fd_limit(config: Config) -> Config:
    """``config`` with ``max_in_flight`` lowered to what the open-file limit can hold, after
    raising the soft limit as far as the hard one allows; each step is logged."""
    wanted = config.server.max_in_flight
    limit = fit_fd_limit(wanted)
    if limit.raised:
        log.info("raised the open-file limit", before=limit.before, after=limit.after)
    if limit.enough:
        return config
    fitting = in_flight_that_fits(limit, wanted)
    log.warning(
        "the open-file limit is too low for server.max_in_flight; it is lowered to fit, and "
        "requests past it get 503 server_overloaded. Raise the limit (ulimit -n, systemd "
        "LimitNOFILE=) to serve more at once",
        limit=limit.after,
        max_in_flight=wanted,
        lowered_to=fitting,
        needed=limit.wanted,
    )
    server = msgspec.structs.replace(config.server, max_in_flight=fitting)
    return msgspec.structs.replace(config, server=server)


async def serve(
    config: Config,
    *,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    reuse_port: bool = False,
    multiprocess_dir: str | None = None,
    shutdown_grace: float = SHUTDOWN_GRACE_SECONDS,
    tracing: Tracing | None = None,
) -> None:
    """Serve ``config`` until SIGINT/SIGTERM (or ``stop`` is set), then shut down gracefully.

    ``on_ready`` receives the bound URL (port 0 binds an ephemeral port) once requests are
    accepted. ``tracing`` is the caller's to shut down once the event loop has ended.
    """
    config = _fit_fd_limit(config)
    app = create_app(config, multiprocess_dir=multiprocess_dir, tracing=tracing)
    runner = make_runner(app, config.server, shutdown_timeout=shutdown_grace)
    await runner.setup()
    stopping = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stopping.set()

    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    try:
        site = web.TCPSite(
            runner, config.server.host, config.server.port, reuse_port=reuse_port or None
        )
        try:
            await site.start()
        except OSError as error:
            raise SystemExit(
                f"octoroute: cannot listen on {config.server.host}:{config.server.port}: "
                f"{error.strerror or error}"
            ) from None
        url = _bound_url(runner)
        log.info("listening", url=url, port=runner.addresses[0][1])
        if on_ready is not None:
            on_ready(url)
        await stopping.wait()
        log.info(
            "shutting down",
            signal=received[0] if received else None,
            grace_seconds=shutdown_grace,
        )
    finally:
        await runner.cleanup()
        for sig in installed:
            loop.remove_signal_handler(sig)
        log.info("stopped")

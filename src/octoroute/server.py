"""Running the application on a socket until SIGINT or SIGTERM, then shutting down gracefully.

Shutdown order: stop accepting connections, let in-flight requests finish (at most
``SHUTDOWN_GRACE_SECONDS``), then stop the prober and close the upstream pool.

``SIGHUP`` reloads the configuration file (``octoroute.reload``). A worker of
``serve --workers`` gets it from its parent, and asks its parent for one for every worker when
``POST /admin/reload`` reloaded it.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from typing import Final

import msgspec
from aiohttp import web

from octoroute.api.reload import RELOADER
from octoroute.app import create_app
from octoroute.config.overrides import NO_OVERRIDES, Overrides
from octoroute.config.schema import Config
from octoroute.fdlimit import fit_fd_limit, in_flight_that_fits
from octoroute.observability.logging import get_logger
from octoroute.observability.tracing import Tracing
from octoroute.reload import SIGNAL_TRIGGER, ReloadOptions
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


def _tell_parent(parent: int) -> Callable[[], None]:
    """Ask the supervising parent (``workers.py``) to pass a ``SIGHUP`` to every worker; a
    no-op once the parent is gone (an orphan's parent is another process)."""

    def fan_out() -> None:
        if os.getppid() == parent:
            os.kill(parent, signal.SIGHUP)

    return fan_out


async def serve(
    config: Config,
    *,
    on_ready: Callable[[str], None] | None = None,
    stop: asyncio.Event | None = None,
    reuse_port: bool = False,
    multiprocess_dir: str | None = None,
    shutdown_grace: float = SHUTDOWN_GRACE_SECONDS,
    overrides: Overrides = NO_OVERRIDES,
    listen: tuple[str, int] | None = None,
    parent: int | None = None,
    tracing: Tracing | None = None,
) -> None:
    """Serve ``config`` until SIGINT/SIGTERM (or ``stop`` is set), then shut down gracefully;
    reload its file on SIGHUP.

    ``on_ready`` receives the bound URL (port 0 binds an ephemeral port) once requests are
    accepted. ``overrides`` are the command line's values, applied again to a reloaded file;
    ``listen`` is the address to bind instead of the config's (a worker's, chosen by its
    parent), and ``parent`` the pid of a worker's supervising parent. ``tracing`` is the
    caller's to shut down once the event loop has ended.
    """
    config = _fit_fd_limit(config)
    options = ReloadOptions(
        overrides=overrides,
        prepare=_fit_fd_limit,
        fan_out=None if parent is None else _tell_parent(parent),
    )
    app = create_app(
        config,
        multiprocess_dir=multiprocess_dir,
        reload_options=options,
        tracing=tracing,
    )
    reloader = app[RELOADER]
    runner = make_runner(app, config.server, shutdown_timeout=shutdown_grace)
    await runner.setup()
    stopping = stop if stop is not None else asyncio.Event()
    loop = asyncio.get_running_loop()
    received: list[str] = []

    def on_signal(sig: signal.Signals) -> None:
        received.append(sig.name)
        stopping.set()

    def on_hangup() -> None:
        reloader.reload_soon(SIGNAL_TRIGGER)

    installed: list[signal.Signals] = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, on_signal, sig)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    try:
        loop.add_signal_handler(signal.SIGHUP, on_hangup)
        installed.append(signal.SIGHUP)
        # A worker starts with SIGHUP blocked (workers.py), so that one sent before this
        # handler existed waits instead of killing it: let it through now.
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGHUP})
    except (NotImplementedError, RuntimeError, AttributeError):  # not the main thread, Windows
        pass
    host, port = listen if listen is not None else (config.server.host, config.server.port)
    try:
        site = web.TCPSite(runner, host, port, reuse_port=reuse_port or None)
        try:
            await site.start()
        except OSError as error:
            raise SystemExit(
                f"octoroute: cannot listen on {host}:{port}: {error.strerror or error}"
            ) from None
        url = _bound_url(runner)
        log.info("listening", url=url, port=runner.addresses[0][1], pid=os.getpid())
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

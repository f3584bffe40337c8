"""``octoroute simulate --config FILE``: simulated model servers at every endpoint of a config
that is on this machine, so a user can run the router on their own file before it points at
real servers.

Each address (host and port) the file names on loopback (``127.0.0.1`` and the rest of
``127.0.0.0/8``, ``::1``, ``localhost``) gets one ``MultiModelServer`` answering for every model
name the file gives it, tiers and embedding models alike, playing the endpoint's ``kind``
(Ollama's ``/api/ps``, llama-server's ``/props``, vLLM's ``/metrics``) with its
``context_window`` and ``max_concurrent``, and the timing of its tier (bigger is slower).
Endpoints elsewhere, over https, or under a path other than ``/v1`` are listed as not
simulated, with the reason. An address already in use (a real server running there) is
reported and left to that server. Runs until SIGINT (Ctrl-C) or SIGTERM, then stops every
server.

``localhost`` is served on ``127.0.0.1``, which every client tries after ``::1``.
"""

from __future__ import annotations

import asyncio
import ipaddress
import signal
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import TYPE_CHECKING, Final, NamedTuple
from urllib.parse import urlsplit

from octoroute.enums import Kind
from octoroute.simulator import MultiModelServer, SimulatedModel, pool_behaviour

if TYPE_CHECKING:
    from octoroute.config.schema import Config, EndpointConfig

LOCAL_NAMES: Final = frozenset({"localhost"})
UNSIMULATED_NATIVE: Final = ("messages", "ollama")
"""``native`` APIs the simulator does not speak: requests passed through to them get a 404."""
PLACEHOLDER_KEY: Final = "simulated-key"
"""The value of an ``api_key_env`` variable that is not set: the simulator checks no key."""


class ModelPlan(NamedTuple):
    """One model name a simulated server answers for, and what its endpoints configure."""

    name: str
    pool: str
    """The pool of its first endpoint, which its answers name (``[fast · llama3.1:8b]``)."""
    endpoints: tuple[str, ...]
    """The key paths of the endpoints naming it here (``models.fast[0]``)."""
    context_window: int | None
    max_concurrent: int | None
    native_responses: bool


class ServerPlan(NamedTuple):
    """One address to serve and the models it answers for."""

    host: str
    port: int
    kind: Kind
    models: tuple[ModelPlan, ...]
    unsimulated: tuple[str, ...]
    """``native`` APIs its endpoints pass requests to that the simulator does not speak."""

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"


class Skipped(NamedTuple):
    """An endpoint that is not simulated, and why."""

    endpoint: EndpointConfig
    reason: str


def lenient_environ(environ: Mapping[str, str]) -> Mapping[str, str]:
    """``environ``, with :data:`PLACEHOLDER_KEY` for any variable it lacks: a config's
    ``api_key_env`` need not be set to try it against simulated servers."""
    return _Lenient(environ)


class _Lenient(Mapping[str, str]):
    def __init__(self, environ: Mapping[str, str]) -> None:
        self._environ = environ

    def __getitem__(self, key: str) -> str:
        return self._environ.get(key, PLACEHOLDER_KEY)

    def __iter__(self) -> Iterator[str]:
        return iter(self._environ)

    def __len__(self) -> int:
        return len(self._environ)


def bind_host(host: str) -> str | None:
    """The address to listen on for an endpoint whose ``base_url`` names ``host``; ``None`` when
    ``host`` is not this machine."""
    if host in LOCAL_NAMES:
        return "127.0.0.1"
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:127.0.0.1 reaches 127.0.0.1: listen there
    return str(address) if address.is_loopback else None


def _where(endpoint: EndpointConfig) -> tuple[str, int] | str:
    """The ``(host, port)`` to serve ``endpoint`` on, or why it is not simulated."""
    parts = urlsplit(endpoint.base_url)
    host = (parts.hostname or "").lower()
    bound = bind_host(host)
    if bound is None:
        return f"{host} is not this machine (only 127.0.0.1, ::1 and localhost are simulated)"
    if parts.scheme != "http":
        return "https: the simulated servers speak plain http; use http:// to try it"
    if parts.path.rstrip("/") != "/v1":
        return f"its API is under {parts.path}; a simulated server serves /v1 at its root"
    return bound, parts.port or 80


def plan(config: Config) -> tuple[list[ServerPlan], list[Skipped]]:
    """The servers to start for ``config`` (one per address, in the file's order) and the
    endpoints left out."""
    by_address: dict[tuple[str, int], list[EndpointConfig]] = {}
    skipped: list[Skipped] = []
    for endpoint in config.all_endpoints():
        where = _where(endpoint)
        if isinstance(where, str):
            skipped.append(Skipped(endpoint, where))
        else:
            by_address.setdefault(where, []).append(endpoint)
    servers = [_server(host, port, endpoints) for (host, port), endpoints in by_address.items()]
    return servers, skipped


def _server(host: str, port: int, endpoints: list[EndpointConfig]) -> ServerPlan:
    kinds = [endpoint.kind for endpoint in endpoints if endpoint.kind is not Kind.OPENAI]
    by_name: dict[str, list[EndpointConfig]] = {}
    for endpoint in endpoints:
        by_name.setdefault(endpoint.name, []).append(endpoint)
    models = tuple(
        ModelPlan(
            name=name,
            pool=str(same[0].pool),
            endpoints=tuple(endpoint.key_path for endpoint in same),
            context_window=_first(endpoint.context_window for endpoint in same),
            max_concurrent=_first(endpoint.max_concurrent for endpoint in same),
            native_responses=any("responses" in endpoint.native for endpoint in same),
        )
        for name, same in by_name.items()
    )
    unsimulated = tuple(
        sorted({api for e in endpoints for api in e.native if api in UNSIMULATED_NATIVE})
    )
    return ServerPlan(host, port, kinds[0] if kinds else Kind.OPENAI, models, unsimulated)


def _first(values: Iterable[int | None]) -> int | None:
    return next((value for value in values if value is not None), None)


def build(server: ServerPlan) -> MultiModelServer:
    """The simulated server for ``server``, not started."""
    models = []
    for model in server.models:
        behaviour = pool_behaviour(model.pool)
        behaviour.kind = server.kind
        behaviour.context_window = model.context_window
        behaviour.slots = model.max_concurrent
        behaviour.native_responses = model.native_responses
        models.append(SimulatedModel(model.name, label=model.pool, behaviour=behaviour))
    return MultiModelServer(models, kind=server.kind)


def describe(server: ServerPlan) -> str:
    """One line for a served address: its URL, kind and the models with their endpoints."""
    models = ", ".join(f"{m.name} ({', '.join(m.endpoints)})" for m in server.models)
    line = f"  {server.url}  {server.kind}  {models}"
    if server.unsimulated:
        apis = " and ".join(f'"{api}"' for api in server.unsimulated)
        line += f"\n      (native {apis} is not simulated: requests passed through to it get 404)"
    return line


async def run_simulate(
    config: Config,
    *,
    out: Callable[[str], None] = print,
    stop: asyncio.Event | None = None,
) -> int:
    """Serve ``config``'s local endpoints until SIGINT/SIGTERM (or ``stop`` is set); the exit
    code: 0 after a clean stop, 1 when there was nothing this machine could serve."""
    servers, skipped = plan(config)
    stopping = stop if stop is not None else asyncio.Event()
    with _signals_set(stopping):
        started, lines = await _start(servers)
        try:
            lines = [f"Simulated model servers for {config.source}:", *lines]
            if skipped:
                lines += ["", "Not simulated:"]
                lines += [
                    f"  {s.endpoint.key_path}  {s.endpoint.base_url}: {s.reason}" for s in skipped
                ]
            if not started:
                lines += [
                    "",
                    "Nothing to simulate: no endpoint of this file is on this machine. Point the "
                    "base_url of those to try at 127.0.0.1 (any free port: http://127.0.0.1:8001/v1) "
                    "and run simulate again.",
                ]
                out("\n".join(lines))
                return 1
            lines += [
                "",
                f"Run the router on this file in another terminal:  octoroute --config {config.source}",
                "Press Ctrl-C to stop the simulated servers.",
            ]
            out("\n".join(lines))
            await stopping.wait()
        finally:
            await asyncio.gather(*(server.stop() for server in started))
    out("Stopped.")
    return 0


async def _start(servers: list[ServerPlan]) -> tuple[list[MultiModelServer], list[str]]:
    """Start a simulated server for each plan that can listen; those running, and a line each."""
    started: list[MultiModelServer] = []
    lines: list[str] = []
    try:
        for server in servers:
            simulated = build(server)
            try:
                await simulated.start(server.host, server.port)
            except OSError as error:
                reason = error.strerror or str(error)
                lines.append(
                    f"  {server.url}  not simulated: cannot listen ({reason}); if a real server "
                    "runs there, it answers instead"
                )
                continue
            started.append(simulated)
            lines.append(describe(server))
    except BaseException:
        await asyncio.gather(*(server.stop() for server in started))
        raise
    return started, lines


@contextmanager
def _signals_set(stopping: asyncio.Event) -> Iterator[None]:
    """SIGINT and SIGTERM set ``stopping`` within the block, from before the first server
    starts: a signal that arrives as soon as the ready line is printed stops them cleanly."""
    loop = asyncio.get_running_loop()
    installed = []
    for sig in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(sig, stopping.set)
            installed.append(sig)
        except (NotImplementedError, RuntimeError):  # not the main thread, or Windows
            pass
    try:
        yield
    finally:
        for sig in installed:
            loop.remove_signal_handler(sig)

"""Status reads over the router's connection pool: the fetch behind ``fleet/kinds``.

The prober calls :meth:`StatusReader.observe` after each probe. For an endpoint whose kind is
not ``openai`` it asks the server's own status paths (``fleet/kinds`` says which and how to read
them) and records the result with ``Endpoint.observe``. The rules:

* **One answer per server per round.** Endpoints on one server (several Ollama models on one
  host, say) share each status request of a probe round: the first asks, the others wait for
  its answer. A server is its root URL and credentials.
* **Bounded.** The whole read of one endpoint (its two or three requests) must finish within the
  probe timeout and reads at most ``STATUS_MAX_BODY_BYTES`` per answer; its requests use the
  endpoint's own status connection (``Target.status_slots``), never one of the
  ``max_connections`` real traffic needs, so a saturated server is still read.
* **Never a health verdict.** A read that fails (refused, timed out, an answer that is not the
  kind's) leaves health alone; the facts of the moment become unknown and the context window and
  slot count are kept (``fleet.kinds.merge``). A server that did not answer its probe in time is
  not asked more.
* **Said once.** A read that starts learning nothing is logged as one warning (usually a wrong
  ``kind``, or a proxy that hides the status paths; a timeout says what it usually means for the
  kind, ``fleet.kinds.SLOW_READ_HINTS``), and its recovery as one info line. An endpoint that
  waited for another's shared request which ran out of time ran out of time too.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from octoroute.enums import Kind
from octoroute.errors import OctorouteError
from octoroute.fleet import kinds
from octoroute.fleet.facts import UNKNOWN
from octoroute.observability.logging import get_logger
from octoroute.observability.metrics import instance_label

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

    from octoroute.fleet.endpoint import Endpoint
    from octoroute.fleet.kinds import Fetch
    from octoroute.upstream.client import Target, UpstreamClient

log = get_logger("octoroute.fleet")

_Key = tuple[Any, ...]
_Answer = tuple[int, bytes] | BaseException


class SharedReadFailed(Exception):
    """The request another endpoint's read made for this server failed; its reason is kept."""


class StatusReader:
    """Per-kind status reads for the prober's ``observe`` step.

    Each endpoint's kind is its config's ``kind``; ``round_of`` is the prober's round counter,
    which scopes the sharing of answers.
    """

    def __init__(
        self,
        client: UpstreamClient,
        target_of: Callable[[Endpoint], Target],
        *,
        timeout: float,
        round_of: Callable[[], int],
    ) -> None:
        self._client = client
        self._target_of = target_of
        self.timeout = timeout
        """Seconds one endpoint's whole read may take (``health.probe_timeout_seconds``; a
        reload may change it)."""
        self._round_of = round_of
        self._round = -1
        self._shared: dict[_Key, asyncio.Future[_Answer]] = {}
        self._silent: set[Endpoint] = set()
        """Endpoints whose last read learned nothing (warned once)."""

    async def observe(self, endpoint: Endpoint, answered: bool) -> None:
        """Read ``endpoint``'s facts and record them; a no-op for ``openai`` endpoints."""
        kind = endpoint.config.kind
        if kind is Kind.OPENAI or endpoint.retired:
            return
        if not answered:  # health already says so; asking more would only wait out a timeout
            endpoint.observe(kinds.merge(endpoint.facts, UNKNOWN))
            return
        new = UNKNOWN
        reason = f"its status paths gave nothing a {kind} server gives"
        try:
            async with asyncio.timeout(self.timeout):
                new = await kinds.read(kind, self.fetcher(endpoint), endpoint.name, endpoint.facts)
        except TimeoutError:
            reason = f"the status read took longer than {self.timeout:g} s"
            hint = kinds.SLOW_READ_HINTS.get(kind)
            if hint is not None:
                reason += f" ({hint})"
        except (OctorouteError, SharedReadFailed) as error:
            reason = str(error)
        endpoint.observe(kinds.merge(endpoint.facts, new))
        self._tell(endpoint, kind, learned=new != UNKNOWN, reason=reason)

    def fetcher(self, endpoint: Endpoint) -> Fetch:
        """A :class:`~octoroute.fleet.kinds.Fetch` on ``endpoint``'s server, sharing answers with
        the other endpoints of that server within the current round."""
        target = self._target_of(endpoint)
        server = (target.root, endpoint.config.api_key)

        async def fetch(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
            return await self._shared_answer(
                (*server, method, path, body),
                lambda: self._client.status(target, method, path, body, timeout=self.timeout),
            )

        return fetch

    async def _shared_answer(
        self, key: _Key, ask: Callable[[], Awaitable[tuple[int, bytes]]]
    ) -> tuple[int, bytes]:
        current = self._round_of()
        if current != self._round:
            self._round = current
            self._shared = {}
        pending = self._shared.get(key)
        if pending is not None:
            shared = await asyncio.shield(pending)
            if isinstance(shared, asyncio.CancelledError | TimeoutError):
                # The asker ran out of its time (it started first, so its deadline came first):
                # for this endpoint that is the same slow server, said the same way.
                raise TimeoutError
            if isinstance(shared, BaseException):
                raise SharedReadFailed(str(shared) or type(shared).__name__)
            return shared
        pending = asyncio.get_running_loop().create_future()
        self._shared[key] = pending
        try:
            answer = await ask()
        except BaseException as error:
            # Waiters get the failure as a value (a future's unretrieved exception would be
            # logged), and the next endpoint of this round asks again rather than inherit it.
            pending.set_result(error)
            if self._shared.get(key) is pending:
                del self._shared[key]
            raise
        pending.set_result(answer)
        return answer

    def forget(self, endpoint: Endpoint) -> None:
        """``endpoint`` is gone (a reload removed it and it drained)."""
        self._silent.discard(endpoint)

    def _tell(self, endpoint: Endpoint, kind: Kind, *, learned: bool, reason: str) -> None:
        if learned:
            if endpoint in self._silent:
                self._silent.discard(endpoint)
                log.info("status read works again", **_where(endpoint, kind))
            return
        if endpoint not in self._silent:
            self._silent.add(endpoint)
            log.warning(
                "status read learned nothing; placement treats the instance as unknown",
                **_where(endpoint, kind),
                reason=reason,
            )


def _where(endpoint: Endpoint, kind: Kind) -> dict[str, str]:
    """The fields that say which instance a status log line is about (as the fleet's lines)."""
    return {
        "endpoint": endpoint.name,
        "instance": instance_label(endpoint.config),
        "id": endpoint.id,
        "tier": endpoint.pool.value,
        "kind": kind.value,
    }

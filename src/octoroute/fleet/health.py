"""The background prober: checks every endpoint on a timer and feeds the health state machine.

Differences from v1 (§3.5 of the v1 spec), all deliberate:

* the first round runs at start-up, not one interval later, so a dead host is known early;
* all endpoints are probed concurrently, each bounded by its own timeout, so one hanging host
  delays nobody and a round takes at most ``timeout``;
* the supervisor never gives up: a crashed loop is restarted after 1, 2, 4, 8, 8, ... seconds
  (v1 stopped probing for good after its fifth failure, leaving health frozen).

The probe itself is injected (the upstream client does ``GET {base_url}/models``), so this module
needs asyncio only; it raises on failure and any ``Exception`` counts as one.

An optional ``observe`` step runs after each probe, outside the probe's timeout: the per-kind
status read (``upstream/status.py``) that tells placement what the server is doing. It is told
whether the server answered the probe in time (not worth asking it more when it did not), bounds
its own time, and can never change health: whatever it raises is reported, not counted. It runs
after an inconclusive probe too: a saturated endpoint is exactly the one whose load must not be
remembered as it was before the burst.

An optional ``on_first_round`` hook hears how the first completed round went, endpoint by
endpoint, so start-up can say at once which endpoints did not answer instead of leaving that to
the failure threshold, ``interval`` times ``failure_threshold`` seconds later.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Literal, NamedTuple, Protocol

if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable, Sequence

    from octoroute.fleet.endpoint import Endpoint

TASK_NAME = "octoroute-health-prober"


class ProbeInconclusive(Exception):
    """Raised by a probe that could not be made for reasons of our own (every connection slot
    busy, no file descriptor left): neither a success nor a failure of the endpoint."""


class ProbeOutcome(NamedTuple):
    """How one endpoint's probe went in a round."""

    endpoint: Endpoint
    problem: str | None
    """Why the probe failed (as ``last_error`` reads); ``None`` when the endpoint answered,
    including an inconclusive "busy" answer, which shows it is there."""


class ProbeTargets(Protocol):
    """What the prober needs from the fleet; :class:`~octoroute.fleet.selector.Fleet` fits."""

    def all(self) -> tuple[Endpoint, ...]:
        """Every endpoint to probe."""
        ...

    def mark_success(self, endpoint: Endpoint) -> None:
        """Record a passed probe."""
        ...

    def mark_failure(self, endpoint: Endpoint, reason: str) -> None:
        """Record a failed probe."""
        ...


def default_backoff(crashes: int) -> float:
    """Seconds to wait before restart number ``crashes`` (1-based): 1, 2, 4, 8, then 8 for ever.

    Capped rather than growing, because probing must come back within seconds of whatever
    transient fault killed the loop.
    """
    return float(2 ** (min(max(crashes, 1), 4) - 1))


def describe_failure(exc: BaseException) -> str:
    """A short reason for ``last_error``: the exception type, and its message when it has one."""
    message = str(exc)
    name = type(exc).__name__
    return f"{name}: {message}" if message else name


class HealthProber:
    """Probes every endpoint of ``fleet`` every ``interval`` seconds, supervised.

    ``interval`` is the pause between the end of one round and the start of the next, so slow
    probes never make rounds overlap. Each probe is cut after ``timeout`` seconds, which counts as
    a failure. If the loop itself dies (a listener raising, a bug), the exception goes to
    ``on_task_failure`` (to the event loop's exception handler when there is none), ``failures``
    grows, ``status`` turns ``"degraded"`` for good, and the loop restarts after
    ``backoff(n)`` seconds for the ``n``-th crash in a row; a completed round resets ``n``.
    ``backoff`` and ``sleep`` are injectable so tests need not wait seconds.
    """

    def __init__(
        self,
        fleet: ProbeTargets,
        probe: Callable[[Endpoint], Awaitable[None]],
        *,
        interval: float,
        timeout: float,
        on_task_failure: Callable[[BaseException], None] | None = None,
        backoff: Callable[[int], float] = default_backoff,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        observe: Callable[[Endpoint, bool], Awaitable[None]] | None = None,
        on_first_round: Callable[[Sequence[ProbeOutcome]], None] | None = None,
    ) -> None:
        self.retarget(fleet, interval=interval, timeout=timeout)
        self._probe = probe
        self._on_task_failure = on_task_failure
        self._backoff = backoff
        self._sleep = sleep
        self._observe = observe
        self._on_first_round = on_first_round
        self._task: asyncio.Task[None] | None = None
        self._extra: set[asyncio.Task[list[ProbeOutcome]]] = set()
        """Probes of instances a reload added, run at once, outside the rounds."""
        self._failures = 0
        self._crash_streak = 0
        self._rounds = 0
        self._round_done = asyncio.Event()
        self._shortened: asyncio.Future[None] | None = None
        """Resolved by :meth:`retarget` when it shortens the interval during a wait."""

    @property
    def failures(self) -> int:
        """How many times the probe loop has crashed since construction (never reset)."""
        return self._failures

    @property
    def status(self) -> Literal["operational", "degraded"]:
        """``"degraded"`` once the loop has crashed at least once, as v1's ``/health`` reports."""
        return "degraded" if self._failures else "operational"

    @property
    def rounds(self) -> int:
        """Completed rounds (every endpoint probed, marked and observed) since construction."""
        return self._rounds

    @property
    def running(self) -> bool:
        """Whether :meth:`start` was called and :meth:`stop` has not been yet."""
        return self._task is not None and not self._task.done()

    def retarget(self, fleet: ProbeTargets, *, interval: float, timeout: float) -> None:
        """Probe ``fleet`` (a reload's) from the next round on, with these settings; a round
        under way finishes with the instances it started with (at construction: the first). A
        shorter ``interval`` also shortens the wait under way, to that much after the last
        round (a reload from 300 s to 10 s does not wait out the 300)."""
        if not interval > 0:
            raise ValueError(f"interval must be > 0, got {interval}")
        if not timeout > 0:
            raise ValueError(f"timeout must be > 0, got {timeout}")
        shorter = interval < getattr(self, "_interval", interval)
        self._fleet = fleet
        self._interval = interval
        self._timeout = timeout
        waiting: asyncio.Future[None] | None = getattr(self, "_shortened", None)
        if shorter and waiting is not None and not waiting.done():
            waiting.set_result(None)

    def probe_now(
        self,
        endpoints: Sequence[Endpoint],
        then: Callable[[Sequence[ProbeOutcome]], None] | None = None,
    ) -> None:
        """Probe ``endpoints`` (instances a reload added) at once, concurrently, without
        waiting for the next round, and tell ``then`` how each went; a no-op when the prober
        is not running."""
        if not endpoints or not self.running:
            return
        task = asyncio.create_task(self._probe_all(endpoints), name=f"{TASK_NAME}-added")
        self._extra.add(task)
        task.add_done_callback(lambda done: self._extra_done(done, then))

    async def _probe_all(self, endpoints: Sequence[Endpoint]) -> list[ProbeOutcome]:
        """Probe ``endpoints`` concurrently; how each went, in their order."""
        async with asyncio.TaskGroup() as group:
            probes = [group.create_task(self._probe_one(endpoint)) for endpoint in endpoints]
        return [probe.result() for probe in probes]

    def _extra_done(
        self,
        task: asyncio.Task[list[ProbeOutcome]],
        then: Callable[[Sequence[ProbeOutcome]], None] | None,
    ) -> None:
        self._extra.discard(task)
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            self._failures += 1
            self._report(error)
        elif then is not None:
            then(task.result())

    async def start(self) -> None:
        """Start probing in the background; the first round begins on the next loop iteration.

        It does not wait for that round, so start-up is never held up by a slow upstream; use
        :meth:`wait_rounds` to wait for it.
        """
        if self.running:
            raise RuntimeError("HealthProber is already running")
        self._task = asyncio.create_task(self._supervise(), name=TASK_NAME)

    async def stop(self) -> None:
        """Cancel the background task and wait for it to finish; a no-op when not running.

        In-flight probes are cancelled and leave health untouched. If the caller itself is being
        cancelled, that cancellation is propagated rather than swallowed.
        """
        extra, self._extra = self._extra, set()
        for probe in extra:
            probe.cancel()
        await asyncio.gather(*extra, return_exceptions=True)
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise

    async def wait_rounds(self, n: int) -> None:
        """Return once at least ``n`` rounds have completed in total (not ``n`` more).

        Meant for tests and start-up code that want the first results; bound it with
        ``asyncio.timeout`` (a stopped prober completes no more rounds).
        """
        while self._rounds < n:
            await self._round_done.wait()

    async def _supervise(self) -> None:
        while True:
            try:
                await self._run_rounds()
                error: BaseException = RuntimeError("health probe loop ended unexpectedly")
            except Exception as exc:
                # A TaskGroup wraps a crashing probe task; the one inner error is the useful one.
                error = exc
                if isinstance(exc, ExceptionGroup) and len(exc.exceptions) == 1:
                    error = exc.exceptions[0]
            self._failures += 1
            self._crash_streak += 1
            self._report(error)
            await self._sleep(self._backoff(self._crash_streak))

    def _report(self, error: BaseException) -> None:
        loop = asyncio.get_running_loop()
        context = {"message": "health probe loop crashed; restarting", "exception": error}
        if self._on_task_failure is None:
            loop.call_exception_handler(context)
            return
        try:
            self._on_task_failure(error)
        except Exception as exc:
            # The supervisor must outlive a faulty metrics hook, but the fault must not vanish.
            loop.call_exception_handler(
                {"message": "health prober on_task_failure hook raised", "exception": exc}
            )

    async def _run_rounds(self) -> None:
        while True:
            outcomes = await self._probe_all(self._fleet.all())
            self._crash_streak = 0
            if self._rounds == 0 and self._on_first_round is not None:
                self._first_round_done(outcomes)
            self._rounds += 1
            # Swap before setting, so a waiter woken now waits on the next round's event.
            done, self._round_done = self._round_done, asyncio.Event()
            done.set()
            await self._pause()

    async def _pause(self) -> None:
        """Wait ``interval`` after a round, or what is left of a shorter one set meanwhile."""
        loop = asyncio.get_running_loop()
        ended = loop.time()
        delay = self._interval
        while True:
            self._shortened = shortened = loop.create_future()
            sleeping = asyncio.ensure_future(self._sleep(delay))
            try:
                await asyncio.wait((sleeping, shortened), return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._shortened = None
                shortened.cancel()
                if not sleeping.done():
                    sleeping.cancel()
            if not shortened.done() or shortened.cancelled():
                return  # slept the whole delay
            delay = max(0.0, ended + self._interval - loop.time())

    def _first_round_done(self, outcomes: list[ProbeOutcome]) -> None:
        assert self._on_first_round is not None
        try:
            self._on_first_round(outcomes)
        except Exception as exc:
            # A faulty report must not cost the prober its loop, nor vanish.
            asyncio.get_running_loop().call_exception_handler(
                {"message": "health prober on_first_round hook raised", "exception": exc}
            )

    async def _probe_one(self, endpoint: Endpoint) -> ProbeOutcome:
        answered = True
        problem: str | None = None
        try:
            async with asyncio.timeout(self._timeout) as deadline:
                await self._probe(endpoint)
        except ProbeInconclusive:
            # Health stays as it was, but the status read still runs: every connection slot busy
            # is when placement most needs to hear how busy the server is, and status reads
            # have a connection budget of their own.
            pass
        except Exception as exc:
            if isinstance(exc, TimeoutError) and deadline.expired():
                reason = f"probe timed out after {self._timeout:g} s"
                answered = False
            else:
                reason = describe_failure(exc)
            problem = reason
            self._fleet.mark_failure(endpoint, reason)
        else:
            self._fleet.mark_success(endpoint)
        if self._observe is not None:
            await self._observe_one(endpoint, answered)
        return ProbeOutcome(endpoint, problem)

    async def _observe_one(self, endpoint: Endpoint, answered: bool) -> None:
        assert self._observe is not None
        try:
            await self._observe(endpoint, answered)
        except Exception as exc:
            # A status read must never decide health nor kill the round; a raise is a bug.
            asyncio.get_running_loop().call_exception_handler(
                {"message": "health prober observe step raised", "exception": exc}
            )

"""The server-side state of one simulated model: slots and their queue, whether the model is
loaded, and its prefix cache; what real servers do between a request's arrival and its first
token.

Each mechanism is off by default (no slot limit, always loaded, no prefill cost), and then costs
not even a yield, so tests that do not ask for it run exactly as before. Times come from
``Behaviour`` in seconds and are meant to be scaled down by tests (a "90 s" load as 0.09 s).

* **Slots**: at most ``behaviour.slots`` requests are served at once; later ones wait in
  arrival order inside the server, as vLLM, llama.cpp and Ollama queue them. More than
  ``behaviour.queue_limit`` waiting is refused (:class:`ServerFull`).
* **Residency**: a cold model is loaded by the first request that needs it, in
  ``behaviour.load_seconds``; requests arriving meanwhile wait for the same load. With
  ``behaviour.unload_after`` an idle model (nothing in flight) unloads after that many seconds,
  as Ollama's ``keep_alive`` does; unloading drops the prefix cache.
* **Prefix cache**: the prompt's leading messages already seen on this server are not
  prefilled again: only the rest costs ``behaviour.prefill_seconds_per_1k_tokens``.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections import OrderedDict, deque
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING, NamedTuple

import orjson

from octoroute.simulator.replies import message_text, tokenize

if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable

    from octoroute.simulator.behaviour import Behaviour

PROMPT_OVERHEAD_TOKENS = 3
"""Per message, as ``replies.prompt_tokens`` counts chat templates' framing."""


class ServerFull(Exception):
    """Every slot is busy and ``queue_limit`` requests already wait."""


class Snapshot(NamedTuple):
    """What the status endpoints report, read at one instant."""

    loaded: bool
    loading: bool
    running: int
    waiting: int
    slots: int | None


class Prefill(NamedTuple):
    """A prompt's size and how much of it the prefix cache already held."""

    prompt_tokens: int
    cached_tokens: int


def prefixes(messages: list[object]) -> list[tuple[bytes, int]]:
    """For each leading run of messages, a digest of it and its token count."""
    digest = hashlib.blake2b(digest_size=16)
    found = []
    tokens = 0
    for message in messages:
        role = message.get("role") if isinstance(message, dict) else None
        text = message_text(message)
        digest.update(orjson.dumps([role, text]))
        tokens += len(tokenize(text)) + PROMPT_OVERHEAD_TOKENS
        found.append((digest.copy().digest(), tokens))
    return found


class Engine:
    """Slots, residency and prefix cache of one simulated model; counters for tests and
    benchmarks. ``clock`` is ``time.monotonic`` unless a test injects another."""

    def __init__(self, *, loaded: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._loaded = loaded
        self._loading_until: float | None = None
        self._last_active = clock()
        self._queue: deque[asyncio.Future[None]] = deque()
        self._cache: OrderedDict[bytes, None] = OrderedDict()
        self.running = 0
        """Requests holding a slot (loading, prefilling or generating)."""
        self.cold_loads = 0
        """Loads started by a request that found the model cold."""
        self.cache_hits = 0
        """Requests at least half of whose prompt was in the prefix cache."""
        self.refused = 0
        """Requests refused because the queue was full."""

    # -- residency ----------------------------------------------------------------------------

    def loaded(self, behaviour: Behaviour) -> bool:
        """Whether the model is in memory now (a finished load counts; an idle one may have
        just been unloaded)."""
        now = self._clock()
        if self._loading_until is not None and now >= self._loading_until:
            self._last_active = self._loading_until
            self._loading_until = None
            self._loaded = True
        idle_limit = behaviour.unload_after
        if (
            self._loaded
            and idle_limit is not None
            and self.running == 0
            and now - self._last_active >= idle_limit
        ):
            self.unload()
        return self._loaded

    def loading(self) -> bool:
        """Whether a load is under way."""
        return self._loading_until is not None and self._clock() < self._loading_until

    def unload(self) -> None:
        """Drop the model from memory now (and with it the prefix cache)."""
        self._loaded = False
        self._cache.clear()

    def load(self) -> None:
        """Have the model in memory now, as if it had been loaded a moment ago."""
        self._loaded = True
        self._loading_until = None
        self._last_active = self._clock()

    async def ensure_loaded(self, behaviour: Behaviour) -> bool:
        """Wait until the model is loaded; ``True`` when this request found it cold."""
        if self.loaded(behaviour):
            return False
        now = self._clock()
        if self._loading_until is None:
            self._loading_until = now + behaviour.load_seconds
            self.cold_loads += 1
        wait = self._loading_until - now
        if wait > 0:
            await asyncio.sleep(wait)
        self.loaded(behaviour)
        if not self._loaded:  # a zero-length load, or the clock did not move
            self.load()
        return True

    # -- slots --------------------------------------------------------------------------------

    @asynccontextmanager
    async def slot(self, behaviour: Behaviour) -> AsyncIterator[None]:
        """Hold one slot for the block, waiting for one in arrival order when all are busy."""
        limit = behaviour.slots
        if limit is not None and (self.running >= limit or self._queue):
            if behaviour.queue_limit is not None and len(self._queue) >= behaviour.queue_limit:
                self.refused += 1
                raise ServerFull
            turn = asyncio.get_running_loop().create_future()
            self._queue.append(turn)
            try:
                await turn
            except asyncio.CancelledError:
                if turn in self._queue:
                    self._queue.remove(turn)
                elif turn.done() and not turn.cancelled():
                    self._release()  # the slot was handed over just as we left
                raise
        else:
            self.running += 1
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        self._last_active = self._clock()
        while self._queue:
            turn = self._queue.popleft()
            if not turn.done():
                turn.set_result(None)  # the slot passes on; running stays the same
                return
        self.running -= 1

    @property
    def waiting(self) -> int:
        """Requests queued for a slot."""
        return len(self._queue)

    def snapshot(self, behaviour: Behaviour) -> Snapshot:
        """The state the status endpoints report."""
        return Snapshot(
            self.loaded(behaviour), self.loading(), self.running, self.waiting, behaviour.slots
        )

    # -- prefix cache -------------------------------------------------------------------------

    def prefill(self, messages: list[object], behaviour: Behaviour) -> Prefill:
        """Look the prompt up in the prefix cache and remember it; counts a hit when at least
        half of it was cached."""
        runs = prefixes(messages)
        if not runs:
            return Prefill(0, 0)
        cached = 0
        for digest, tokens in runs:
            if digest in self._cache:
                cached = tokens
                self._cache.move_to_end(digest)
        for digest, _ in runs:
            self._cache[digest] = None
            self._cache.move_to_end(digest)
        while len(self._cache) > behaviour.prefix_cache_entries:
            self._cache.popitem(last=False)
        total = runs[-1][1]
        if cached * 2 >= total and cached > 0:
            self.cache_hits += 1
        return Prefill(total, cached)

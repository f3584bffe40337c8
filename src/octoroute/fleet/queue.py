"""The order in which requests waiting for a slot are served: one bounded line per tier.

FIFO, except that ``high``-importance requests go before every other waiting request (``normal``
and ``low`` share one line). Bounded by ``limits.max_queue``: a request that finds the line full
is refused at once rather than joining it. A request leaves the line when it is served, when it
gives up (queue timeout) or when its client goes away; leaving is O(1) (the entry is marked and
skipped later), so a client disconnect never scans the line. Marked entries are dropped when they
reach the head, and the whole line is compacted only when one joins and the marked outnumber the
living: walking the line never copies it, and entries may leave while it is walked.

Pure: it orders entries and counts them; waking, timing and futures are ``fleet.dispatch``'s.
"""

from __future__ import annotations

from collections import deque
from typing import TYPE_CHECKING, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Iterator


class Queued(Protocol):
    """What the line needs of an entry: its class, and a flag the line keeps."""

    urgent: bool
    """A ``high``-importance request: served before every non-urgent one."""
    queued: bool
    """Set while the entry is in a line; cleared by :meth:`WaitQueue.remove`."""


Q = TypeVar("Q", bound=Queued)


class WaitQueue(Generic[Q]):
    """One tier's waiting requests, urgent first, each class in arrival order."""

    __slots__ = ("_dead", "_lines", "capacity", "depth")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        """``limits.max_queue``: at most this many entries at once."""
        self.depth = 0
        """Entries waiting now."""
        self._lines: tuple[deque[Q], deque[Q]] = (deque(), deque())
        self._dead = 0

    @property
    def full(self) -> bool:
        """No entry may join."""
        return self.depth >= self.capacity

    def push(self, entry: Q) -> bool:
        """Add ``entry`` at the end of its class; ``False`` (nothing added) when full.

        Not while the line is being walked (it may compact the line)."""
        if self.depth >= self.capacity:
            return False
        if self._dead > 32 and self._dead > self.depth:
            self._compact()
        entry.queued = True
        self._lines[0 if entry.urgent else 1].append(entry)
        self.depth += 1
        return True

    def remove(self, entry: Q) -> bool:
        """Take ``entry`` out of the line; ``False`` when it was not in it (already served)."""
        if not entry.queued:
            return False
        entry.queued = False
        self.depth -= 1
        self._dead += 1
        return True

    def __iter__(self) -> Iterator[Q]:
        """The waiting entries in serving order. Entries may be removed (never added) while
        iterating; a walk that stops at the head costs O(1)."""
        for line in self._lines:
            while line and not line[0].queued:
                line.popleft()
                self._dead -= 1
            for entry in line:
                if entry.queued:
                    yield entry

    def _compact(self) -> None:
        """Drop marked entries, so a line whose head stays put cannot accumulate them."""
        for line in self._lines:
            alive = [entry for entry in line if entry.queued]
            line.clear()
            line.extend(alive)
        self._dead = 0

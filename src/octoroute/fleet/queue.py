"""The order in which requests waiting for a slot are served: one bounded queue per tier.

FIFO, except that ``high``-importance requests go before every other waiting request (``normal``
and ``low`` share one class). Bounded by ``limits.max_queue``: a request that finds the queue
full is refused at once rather than joining it. A request leaves when it is served, when it gives
up (queue timeout) or when its client goes away; leaving is O(1) (the entry is marked and skipped
later), so a client disconnect never scans the queue.

Inside, a tier's queue keeps one line per *scope* (the instances a request may use: the whole
tier, or one named model's replicas), each urgent first and in arrival order, and serves them
merged by that order. A slot that frees on an instance is offered by walking only the lines whose
scope holds it (:meth:`WaitQueue.walk`), so requests for another model ahead in the queue cost
nothing; one scope (the common case) is walked directly.

Marked entries are dropped when they reach the head of their line, and a line is compacted only
when one joins it and the marked outnumber the living: walking never copies a line, and entries
may leave while it is walked (not join).

Pure: it orders entries and counts them; waking, timing and futures are ``fleet.dispatch``'s.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Hashable
from typing import TYPE_CHECKING, Any, Generic, Protocol, TypeVar

if TYPE_CHECKING:
    from collections.abc import Callable, Collection, Iterable, Iterator

COMPACT_AFTER = 32
"""A line is compacted when more than this many marked entries (and more than living ones)
remain in it."""


S = TypeVar("S", bound=Hashable)


class Queued(Protocol[S]):
    """What the queue needs of an entry: its class and scope, and what the queue keeps on it."""

    urgent: bool
    """A ``high``-importance request: served before every non-urgent one."""
    scope: S
    """The entries of one scope share a line."""
    queued: bool
    """Set while the entry waits; cleared by :meth:`WaitQueue.remove`."""
    order: int
    """Its place in the queue's arrival order; set by :meth:`WaitQueue.push`."""


Q = TypeVar("Q", bound="Queued[Any]")


class _Line(Generic[Q]):
    """The waiting entries of one scope: urgent, then the others, each in arrival order."""

    __slots__ = ("classes", "dead", "depth")

    def __init__(self) -> None:
        self.classes: tuple[deque[Q], deque[Q]] = (deque(), deque())
        self.depth = 0
        self.dead = 0

    def walk(self, urgent: bool) -> Iterator[Q]:
        line = self.classes[0 if urgent else 1]
        while line and not line[0].queued:
            line.popleft()
            self.dead -= 1
        for entry in line:
            if entry.queued:
                yield entry

    def compact(self) -> None:
        for line in self.classes:
            alive = [entry for entry in line if entry.queued]
            line.clear()
            line.extend(alive)
        self.dead = 0


def _order(entry: Queued[Any]) -> int:
    return entry.order


class WaitQueue(Generic[Q, S]):
    """One tier's waiting requests, urgent first, each class in arrival order; ``S`` is the
    type of their scopes."""

    __slots__ = ("_lines", "_next", "capacity", "depth")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        """``limits.max_queue``: at most this many entries at once."""
        self.depth = 0
        """Entries waiting now."""
        self._lines: dict[S, _Line[Q]] = {}
        self._next = 0

    @property
    def full(self) -> bool:
        """No entry may join."""
        return self.depth >= self.capacity

    def push(self, entry: Q) -> bool:
        """Add ``entry`` at the end of its class; ``False`` (nothing added) when full.

        Not while the queue is being walked (it may compact a line)."""
        if self.depth >= self.capacity:
            return False
        line = self._lines.get(entry.scope)
        if line is None:
            line = self._lines[entry.scope] = _Line()
        elif line.dead > COMPACT_AFTER and line.dead > line.depth:
            line.compact()
        entry.queued = True
        entry.order = self._next
        self._next += 1
        line.classes[0 if entry.urgent else 1].append(entry)
        line.depth += 1
        self.depth += 1
        return True

    def remove(self, entry: Q) -> bool:
        """Take ``entry`` out of the queue; ``False`` when it was not in it (already served)."""
        if not entry.queued:
            return False
        entry.queued = False
        self.depth -= 1
        line = self._lines[entry.scope]
        line.depth -= 1
        line.dead += 1
        if not line.depth:
            del self._lines[entry.scope]  # a walk holds on to the line object, not the key
        return True

    def regroup(self, scope: S, scope_of: Callable[[Q], S]) -> None:
        """Give each entry waiting with scope ``scope`` the scope ``scope_of(entry)`` from now
        on, in its place in the arrival order. Scopes are dict keys, so two equal ones (a tier
        that is one model's replicas, and that model) share a line; after a reload those
        entries may wait for different instances (a reload's fleet has new scope objects)."""
        line = self._lines.pop(scope, None)
        if line is None:
            return
        parts: dict[S, _Line[Q]] = {}
        for urgency, waiting in enumerate(line.classes):
            for entry in waiting:
                if not entry.queued:
                    continue  # left already: dropped here rather than at the head of a line
                entry.scope = scope_of(entry)
                part = parts.get(entry.scope)
                if part is None:
                    part = parts[entry.scope] = _Line()
                part.classes[urgency].append(entry)
                part.depth += 1
        for new, part in parts.items():
            there = self._lines.get(new)
            if there is None:
                self._lines[new] = part
                continue
            for mine, theirs in zip(part.classes, there.classes, strict=True):
                merged = list(heapq.merge(theirs, mine, key=_order))
                theirs.clear()
                theirs.extend(merged)
            there.depth += part.depth

    def scopes(self) -> Collection[S]:
        """The scopes that have entries waiting (a live view: read it before walking)."""
        return self._lines.keys()

    def __iter__(self) -> Iterator[Q]:
        """Every waiting entry in serving order."""
        return self.walk(self._lines)

    def walk(self, scopes: Iterable[S]) -> Iterator[Q]:
        """The waiting entries of ``scopes`` in serving order. Entries may be removed (never
        added) meanwhile; a walk that stops at the head costs O(1) per scope."""
        lines = [line for scope in scopes if (line := self._lines.get(scope)) is not None]
        if len(lines) == 1:  # one scope, the common case
            line = lines[0]
            yield from line.walk(True)
            yield from line.walk(False)
            return
        for urgent in (True, False):
            # The merge holds each line's next entry while it yields another: look again.
            for entry in heapq.merge(*(line.walk(urgent) for line in lines), key=_order):
                if entry.queued:
                    yield entry

"""The waiting line: high importance first, otherwise first come first served, bounded."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from octoroute.fleet.queue import WaitQueue


@dataclass(eq=False)
class Entry:
    name: str
    urgent: bool = False
    queued: bool = False


def names(queue: WaitQueue[Entry]) -> list[str]:
    return [entry.name for entry in queue]


def test_urgent_entries_go_first_and_each_class_keeps_arrival_order() -> None:
    queue: WaitQueue[Entry] = WaitQueue(10)
    for entry in (Entry("a"), Entry("b"), Entry("H1", True), Entry("c"), Entry("H2", True)):
        assert queue.push(entry)

    assert names(queue) == ["H1", "H2", "a", "b", "c"]
    assert queue.depth == 5


def test_a_full_line_refuses_and_counts_nothing() -> None:
    queue: WaitQueue[Entry] = WaitQueue(2)
    assert queue.push(Entry("a"))
    assert queue.push(Entry("b"))

    late = Entry("c", True)
    assert not queue.push(late)
    assert not late.queued
    assert queue.full
    assert queue.depth == 2
    assert names(queue) == ["a", "b"]


def test_a_zero_capacity_line_never_takes_anyone() -> None:
    queue: WaitQueue[Entry] = WaitQueue(0)

    assert not queue.push(Entry("a"))


def test_removing_an_entry_frees_its_place_and_is_idempotent() -> None:
    queue: WaitQueue[Entry] = WaitQueue(2)
    a, b = Entry("a"), Entry("b")
    queue.push(a)
    queue.push(b)

    assert queue.remove(a)
    assert not queue.remove(a)
    assert queue.depth == 1
    assert not queue.full
    assert queue.push(Entry("c"))
    assert names(queue) == ["b", "c"]


def test_entries_may_leave_while_the_line_is_walked() -> None:
    queue: WaitQueue[Entry] = WaitQueue(10)
    entries = [Entry(str(i)) for i in range(5)]
    for entry in entries:
        queue.push(entry)

    seen = []
    for entry in queue:
        seen.append(entry.name)
        queue.remove(entry)
        if entry.name == "1":
            queue.remove(entries[3])

    assert seen == ["0", "1", "2", "4"]
    assert queue.depth == 0


@given(st.lists(st.tuples(st.booleans(), st.booleans()), max_size=200))
def test_the_line_is_always_urgent_first_then_fifo_whatever_leaves(
    steps: list[tuple[bool, bool]],
) -> None:
    queue: WaitQueue[Entry] = WaitQueue(1000)
    alive: list[Entry] = []
    for number, (urgent, leave) in enumerate(steps):
        entry = Entry(str(number), urgent)
        queue.push(entry)
        alive.append(entry)
        if leave and alive:
            gone = alive.pop(len(alive) // 2)
            queue.remove(gone)

    expected = [e.name for e in alive if e.urgent] + [e.name for e in alive if not e.urgent]
    assert names(queue) == expected
    assert queue.depth == len(alive)


@given(st.lists(st.tuples(st.booleans(), st.integers(0, 5)), max_size=400))
def test_entries_that_left_never_pile_up_past_twice_the_line(
    steps: list[tuple[bool, int]],
) -> None:
    capacity = 20
    queue: WaitQueue[Entry] = WaitQueue(capacity)
    alive: list[Entry] = []
    for number, (urgent, leave) in enumerate(steps):
        entry = Entry(str(number), urgent)
        if queue.push(entry):
            alive.append(entry)
        for _ in range(min(leave, len(alive))):
            queue.remove(alive.pop(len(alive) // 2))
        stored = sum(len(line) for line in queue._lines)
        assert stored <= 2 * capacity + 33

    assert names(queue) == [e.name for e in alive if e.urgent] + [
        e.name for e in alive if not e.urgent
    ]

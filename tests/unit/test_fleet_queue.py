"""The waiting line: high importance first, otherwise first come first served, bounded; one line
per scope inside, served merged in that order."""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import given
from hypothesis import strategies as st

from octoroute.fleet.queue import WaitQueue


@dataclass(eq=False)
class Entry:
    name: str
    urgent: bool = False
    scope: str = "tier"
    queued: bool = False
    order: int = 0


Line = WaitQueue[Entry, str]


def names(queue: Line) -> list[str]:
    return [entry.name for entry in queue]


def test_urgent_entries_go_first_and_each_class_keeps_arrival_order() -> None:
    queue: Line = WaitQueue(10)
    for entry in (Entry("a"), Entry("b"), Entry("H1", True), Entry("c"), Entry("H2", True)):
        assert queue.push(entry)

    assert names(queue) == ["H1", "H2", "a", "b", "c"]
    assert queue.depth == 5


def test_a_full_line_refuses_and_counts_nothing() -> None:
    queue: Line = WaitQueue(2)
    assert queue.push(Entry("a"))
    assert queue.push(Entry("b"))

    late = Entry("c", True)
    assert not queue.push(late)
    assert not late.queued
    assert queue.full
    assert queue.depth == 2
    assert names(queue) == ["a", "b"]


def test_a_zero_capacity_line_never_takes_anyone() -> None:
    queue: Line = WaitQueue(0)

    assert not queue.push(Entry("a"))


def test_removing_an_entry_frees_its_place_and_is_idempotent() -> None:
    queue: Line = WaitQueue(2)
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
    queue: Line = WaitQueue(10)
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
    queue: Line = WaitQueue(1000)
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
    queue: Line = WaitQueue(capacity)
    alive: list[Entry] = []
    for number, (urgent, leave) in enumerate(steps):
        entry = Entry(str(number), urgent)
        if queue.push(entry):
            alive.append(entry)
        for _ in range(min(leave, len(alive))):
            queue.remove(alive.pop(len(alive) // 2))
        stored = sum(len(entries) for line in queue._lines.values() for entries in line.classes)
        assert stored <= 2 * capacity + 33

    assert names(queue) == [e.name for e in alive if e.urgent] + [
        e.name for e in alive if not e.urgent
    ]


def test_scopes_are_served_merged_in_arrival_order_and_walked_alone_on_demand() -> None:
    queue: Line = WaitQueue(10)
    for entry in (
        Entry("a"),
        Entry("x1", scope="x"),
        Entry("b"),
        Entry("X1", True, scope="x"),
        Entry("x2", scope="x"),
        Entry("H1", True),
    ):
        queue.push(entry)

    assert names(queue) == ["X1", "H1", "a", "x1", "b", "x2"]
    assert [entry.name for entry in queue.walk(["x"])] == ["X1", "x1", "x2"]
    assert [entry.name for entry in queue.walk(["tier"])] == ["H1", "a", "b"]
    assert [entry.name for entry in queue.walk([])] == []
    assert sorted(queue.scopes()) == ["tier", "x"]


def test_a_scope_whose_last_entry_left_is_forgotten() -> None:
    queue: Line = WaitQueue(10)
    only = Entry("x1", scope="x")
    queue.push(only)
    queue.push(Entry("a"))

    queue.remove(only)

    assert list(queue.scopes()) == ["tier"]
    assert names(queue) == ["a"]


@given(
    st.lists(
        st.tuples(st.booleans(), st.sampled_from(["tier", "x", "y"]), st.booleans()),
        max_size=200,
    )
)
def test_a_merged_walk_keeps_the_order_whatever_leaves_during_it(
    steps: list[tuple[bool, str, bool]],
) -> None:
    queue: Line = WaitQueue(1000)
    entries = []
    for number, (urgent, scope, _) in enumerate(steps):
        entry = Entry(str(number), urgent, scope)
        queue.push(entry)
        entries.append(entry)
    leaving = {entry.name for entry, (_, _, leave) in zip(entries, steps, strict=True) if leave}

    seen = []
    for entry in queue:
        seen.append(entry.name)
        queue.remove(entry)
        if len(seen) == 1:  # others leave while the walk holds their lines' next entries
            for other in entries:
                if other.name in leaving:
                    queue.remove(other)

    order = [e.name for e in entries if e.urgent] + [e.name for e in entries if not e.urgent]
    assert seen == order[:1] + [name for name in order[1:] if name not in leaving]
    assert queue.depth == 0


def test_regrouping_a_line_gives_each_entry_its_own_new_scope_in_its_old_place() -> None:
    queue: Line = WaitQueue(10)
    entries = [Entry("a"), Entry("b"), Entry("H", True), Entry("c"), Entry("d")]
    for entry in entries:
        queue.push(entry)
    queue.push(Entry("x", scope="model-x"))
    queue.remove(entries[3])
    moved_to = {"a": "new-tier", "b": "model-x", "H": "model-x", "d": "new-tier"}

    queue.regroup("tier", lambda entry: moved_to[entry.name])

    assert sorted(queue.scopes()) == ["model-x", "new-tier"]
    assert [e.name for e in queue.walk(["model-x"])] == ["H", "b", "x"]
    assert [e.name for e in queue.walk(["new-tier"])] == ["a", "d"]
    assert names(queue) == ["H", "a", "b", "d", "x"]
    assert queue.depth == 5
    assert queue.remove(entries[0])
    assert queue.depth == 4

"""``RateLimitedWarning``: one line per interval however often a client misbehaves."""

from __future__ import annotations

from octoroute.observability.logging import RateLimitedWarning


class _Lines:
    """A logger stand-in that keeps what it was asked to write."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, object]]] = []

    def warning(self, event: str, **fields: object) -> None:
        self.lines.append((event, fields))


class _Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_first_occurrence_is_logged_and_repeats_within_the_interval_are_only_counted() -> None:
    lines, clock = _Lines(), _Clock()
    warning = RateLimitedWarning(lines, "bad client", 10.0, clock=clock)
    assert warning.warn(detail="first") is True
    for _ in range(500):
        clock.now += 0.01
        assert warning.warn(detail="again") is False
    assert lines.lines == [("bad client", {"suppressed": 0, "detail": "first"})]


def test_the_next_line_after_the_interval_says_how_many_were_suppressed() -> None:
    lines, clock = _Lines(), _Clock()
    warning = RateLimitedWarning(lines, "bad client", 10.0, clock=clock)
    warning.warn()
    for _ in range(7):
        warning.warn()
    clock.now += 10.0
    assert warning.warn(detail="later") is True
    clock.now += 10.0
    warning.warn()
    assert [fields["suppressed"] for _, fields in lines.lines] == [0, 7, 0]

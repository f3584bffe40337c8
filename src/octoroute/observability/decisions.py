"""The dashboard's recorder: the traffic windows, the last N decisions, and who listens for them.

One :class:`Dashboard` per process, owned by the runtime and kept across reloads (a reload
hands it the new ``[ui]`` with :meth:`Dashboard.configure`: the windows carry on, the ring keeps
the newest decisions that fit). ``api.common.log_request``, where every request ends, feeds it
only while ``[ui] enabled``; with the dashboard off nothing is recorded at all.

A decision is kept as the request's log fields (the dictionary ``log_request`` builds for its
log line anyway), so recording one costs a tuple and a deque append; ``api.dashboard_state``
turns it into the documented JSON only when someone reads.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Generic, TypeVar

from octoroute.config.schema import UiConfig
from octoroute.observability.window import TrafficWindow

T = TypeVar("T")

Decided = tuple[float, str, dict[str, object], str | None]
"""One recorded decision: the wall-clock time it ended, its request id, its log line's fields
and, with ``[ui] show_prompts``, the preview of its latest user turn."""
Listener = Callable[[Decided], None]
"""Told about each decision as it is recorded; must be cheap and must not raise."""


class DecisionRing(Generic[T]):
    """The last ``size`` decisions, oldest dropped first."""

    __slots__ = ("_items", "append")

    def __init__(self, size: int) -> None:
        self._items: deque[T] = deque(maxlen=size)
        self.append = self._items.append
        """Keep an item as the newest decision (the deque's own method: no call in between)."""

    def newest(self) -> list[T]:
        """Every kept decision, newest first."""
        return list(reversed(self._items))

    def resize(self, size: int) -> None:
        """Keep at most ``size`` decisions from now on: the newest that fit stay."""
        if size != self._items.maxlen:
            self._items = deque(self._items, maxlen=size)
            self.append = self._items.append

    def __len__(self) -> int:
        return len(self._items)

    def replace_all(self, change: Callable[[T], T]) -> None:
        """Replace every kept item by ``change(item)``, in place and in order."""
        items = self._items
        for index in range(len(items)):
            items[index] = change(items[index])


class Dashboard:
    """What ``GET /admin/state`` and ``GET /admin/events`` read: one process's traffic windows,
    its last decisions and the current ``[ui]`` settings."""

    __slots__ = ("decisions", "listeners", "preview_chars", "show_prompts", "traffic")

    def __init__(self, ui: UiConfig, now: float) -> None:
        self.traffic = TrafficWindow(now)
        self.decisions: DecisionRing[Decided] = DecisionRing(ui.decisions)
        self.listeners: list[Listener] = []
        """The event streams open now; each is told every decision (``api.dashboard_events``)."""
        self.show_prompts = ui.show_prompts
        self.preview_chars = ui.prompt_preview_chars
        self.configure(ui)

    def configure(self, ui: UiConfig) -> None:
        """Apply a (reloaded) ``[ui]``; the windows and the kept decisions carry on, without
        their previews once ``show_prompts`` is off (prompts are not kept longer than asked)."""
        self.decisions.resize(ui.decisions)
        if self.show_prompts and not ui.show_prompts:
            self.forget_previews()
        self.show_prompts = ui.show_prompts
        self.preview_chars = ui.prompt_preview_chars

    def decided(self, item: Decided) -> None:
        """Keep ``item`` and tell the listeners (``log_request`` does the same inline)."""
        self.decisions.append(item)
        if self.listeners:
            self.tell(item)

    def forget_previews(self) -> None:
        """Drop the prompt preview of every kept decision."""
        self.decisions.replace_all(lambda item: (item[0], item[1], item[2], None))

    def tell(self, item: Decided) -> None:
        """Tell every listener about ``item``."""
        for listener in self.listeners:
            listener(item)

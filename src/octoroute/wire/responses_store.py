"""The bounded store of recent Responses answers behind ``previous_response_id``.

Per process and in memory: with ``serve --workers N`` a continuation must reach the worker that
answered the previous turn (or the client sends the full ``input``). Least recently used entries
go first once ``[limits].responses_store`` are held.

Each entry belongs to the client key that made it (its ``name``; ``None`` with ``[auth]`` off or
on a public path): another key asking for it is told what an unknown id is told, so a key can
neither read nor probe for another key's conversations.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

__all__ = ["ResponseStore"]

Item = dict[str, Any]


class ResponseStore:
    """Response id -> the key that made it, and the conversation it ended: its input items,
    then its output items."""

    __slots__ = ("_capacity", "_entries")

    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[str | None, list[Item]]] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def resize(self, capacity: int) -> None:
        """Keep at most ``capacity`` answers from now on (a reload changed
        ``[limits].responses_store``): the least recently used go first."""
        self._capacity = capacity
        while len(self._entries) > max(capacity, 0):
            self._entries.popitem(last=False)

    def get(self, response_id: str, owner: str | None = None) -> list[Item] | None:
        """The conversation stored by ``owner`` (a fresh list), or ``None`` (unknown, or
        another key's); marks the entry recently used."""
        entry = self._entries.get(response_id)
        if entry is None or entry[0] != owner:
            return None
        self._entries.move_to_end(response_id)
        return list(entry[1])

    def put(
        self,
        response_id: str,
        input_items: list[Item],
        response: dict[str, Any],
        owner: str | None = None,
    ) -> None:
        """Keep ``response``'s output after ``input_items``, as ``owner``'s (a client key's
        name); drop the least recently used past the capacity (a capacity of 0 keeps
        nothing)."""
        if self._capacity <= 0:
            return
        output = response.get("output")
        items = [*input_items, *(output if isinstance(output, list) else [])]
        self._entries[response_id] = (owner, items)
        self._entries.move_to_end(response_id)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)

"""Reject request bodies that send the same JSON key twice where the router reads it.

JSON leaves duplicate keys undefined: msgspec (and Python) keep the last value, other parsers the
first or refuse. ``{"role": "user", "content": "<3 MB>", "content": "hi"}`` would pass the size
limit on ``"hi"`` while a model server that keeps the first value reads 3 MB. So a duplicate is a
400 wherever it could make the router and the model server disagree about what was validated:
the top-level keys the router peeks at (``model``, ``messages``, ``stream``, the sampling
numbers), every key of every ``messages`` entry, and every key of a content part. Other
top-level keys are rebuilt from one value (``render_upstream_body``), so the upstream sees only
the one the router kept; deeper objects (tool arguments, image URLs) are not read by the router.

**The fast path counts colons.** In an object's raw bytes every ``key: value`` pair contributes
one structural colon, and every other colon lies inside a key or a value. So
``colons(object) - sum(colons(value) for value in decoded)`` is at least the number of pairs, and
equals the number of distinct keys only when no key repeats: a repeated pair adds its colon
(and its dropped value's colons) to the left side but nothing to the right. Counting one byte is
a ``memchr``-speed pass and the values are the raw slices msgspec already cut, so the exact check
(``find_duplicate``: the standard library's parser with an ``object_pairs_hook``) runs only when
the counts differ: a real duplicate, or a colon inside a key. ``tests/unit/test_wire_duplicates.py``
checks by property that the fast path never passes a body the exact check rejects.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final

import msgspec

from octoroute.errors import InvalidRequest

__all__ = ["check_duplicate_keys", "duplicate_possible", "find_duplicate"]

_OBJECTS: Final = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])


def _colons(raw: bytes | msgspec.Raw) -> int:
    return bytes(raw).count(b":")


def _repeats_possible(
    raw: bytes | msgspec.Raw, objects: Iterable[dict[str, msgspec.Raw]], colons: int | None = None
) -> bool:
    """Whether the objects whose raw text is ``raw`` (one object, or an array of them) may repeat
    a key: their structural colons are not exactly their distinct keys. ``colons``: the count
    for ``raw`` when the caller has it already."""
    inner = 0
    distinct = 0
    for fields in objects:
        distinct += len(fields)
        for value in fields.values():
            inner += _colons(value)
    return (_colons(raw) if colons is None else colons) - inner != distinct


def _entries(raw: msgspec.Raw | None) -> list[dict[str, msgspec.Raw]] | None:
    """``raw`` as an array of objects, or ``None`` when it is not one (validation says why)."""
    if raw is None or memoryview(raw)[:1].tobytes() != b"[":  # raw values start at the value
        return None
    try:
        return _OBJECTS.decode(raw)
    except (msgspec.DecodeError, msgspec.ValidationError, RecursionError):
        return None


def duplicate_possible(
    body: bytes, fields: dict[str, msgspec.Raw], *, messages_key: str | None = "messages"
) -> bool:
    """The fast check: False guarantees ``find_duplicate`` finds nothing. ``fields`` is
    ``body`` decoded as ``{key: raw value}``; ``messages_key`` names the array whose entries and
    content parts are checked too (``None``: top level only)."""
    counts = {key: _colons(value) for key, value in fields.items()}
    if _colons(body) - sum(counts.values()) != len(counts):
        return True
    if messages_key is None:
        return False
    messages_raw = fields.get(messages_key)
    messages = _entries(messages_raw)
    if messages is None or messages_raw is None:
        return False
    if _repeats_possible(messages_raw, messages, counts[messages_key]):
        return True
    for message in messages:
        content = message.get("content")
        parts = _entries(content)
        if parts is not None and content is not None and _repeats_possible(content, parts):
            return True
    return False


class _Pairs(list[tuple[str, object]]):
    """A JSON object as the parser saw it: every pair, repeats included."""


def _repeated(pairs: _Pairs, keys: frozenset[str] | None = None) -> str | None:
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen and (keys is None or key in keys):
            return key
        seen.add(key)
    return None


def find_duplicate(
    body: bytes, checked: frozenset[str], *, messages_key: str | None = "messages"
) -> tuple[str, str] | None:
    """The exact check: ``(param, key)`` of the first repeated key among the top-level keys in
    ``checked``, any key of a ``messages_key`` entry, or any key of a content part; else None."""
    try:
        document = json.loads(body, object_pairs_hook=_Pairs)
    except (ValueError, RecursionError):
        return None  # msgspec accepted the body; what the stdlib refuses is not ours to judge
    if not isinstance(document, _Pairs):
        return None
    key = _repeated(document, checked)
    if key is not None:
        return key, key
    if messages_key is None:
        return None
    messages = [value for name, value in document if name == messages_key]
    if not messages or not isinstance(messages[-1], list):
        return None
    for index, message in enumerate(messages[-1]):
        if not isinstance(message, _Pairs):
            continue
        key = _repeated(message)
        if key is not None:
            return f"{messages_key}[{index}].{key}", key
        contents = [value for name, value in message if name == "content"]
        if not contents or not isinstance(contents[-1], list):
            continue
        for position, part in enumerate(contents[-1]):
            if isinstance(part, _Pairs):
                key = _repeated(part)
                if key is not None:
                    return f"{messages_key}[{index}].content[{position}].{key}", key
    return None


def check_duplicate_keys(
    body: bytes,
    fields: dict[str, msgspec.Raw],
    checked: frozenset[str],
    *,
    messages_key: str | None = "messages",
) -> None:
    """Raise ``InvalidRequest`` (``param`` the place, e.g. ``messages[0].content``) if a key the
    router reads appears twice; the exact parse runs only when the fast count allows a repeat."""
    if not duplicate_possible(body, fields, messages_key=messages_key):
        return
    found = find_duplicate(body, checked, messages_key=messages_key)
    if found is None:
        return
    param, key = found
    raise InvalidRequest(
        f'{param}: the key "{key}" appears twice in the same object; JSON parsers disagree on '
        "which value counts, so send each key once",
        param=param,
    )

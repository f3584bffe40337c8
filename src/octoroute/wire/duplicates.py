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
a fast pass and the values are the raw slices msgspec already cut, so the exact check
(``find_duplicate``: the standard library's parser with an ``object_pairs_hook``) runs only when
the counts differ: a real duplicate, or a colon inside a key. ``tests/unit/test_wire_duplicates.py``
checks by property that the fast path never passes a body the exact check rejects.
"""

from __future__ import annotations

import json
from typing import Final

import msgspec

from octoroute.errors import InvalidRequest

__all__ = ["check_duplicate_keys", "duplicate_possible", "find_duplicate"]

_OBJECTS: Final = msgspec.json.Decoder(list[dict[str, msgspec.Raw]])
_OPEN_ARRAY: Final = ord("[")


def _entries(raw: msgspec.Raw | None) -> list[dict[str, msgspec.Raw]] | None:
    """``raw`` as an array of objects, or ``None`` when it is not one (validation says why)."""
    if raw is None or memoryview(raw)[0] != _OPEN_ARRAY:  # raw values start at the value
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
    content parts are checked too (``None``: top level only).

    One equation covers every level: the body's colons minus those inside the values that are
    not opened further (the leaves) must equal the number of distinct keys of every object that
    is. A repeated key at any level adds its colon (and its dropped value's) to the left side
    only. The leaves are joined and counted once, the cheapest way to count a byte across many
    ``msgspec.Raw`` slices (``bytes.join`` takes buffers; a copy per slice costs 5x more). The
    loops are written for the common body (a few messages of string content): a message's
    values are taken whole unless its ``content`` is an array of objects.
    """
    messages = None if messages_key is None else _entries(fields.get(messages_key))
    if messages is None:
        return body.count(b":") - b"".join(fields.values()).count(b":") != len(fields)
    pairs = len(fields)
    leaves = [value for key, value in fields.items() if key != messages_key]
    for message in messages:
        pairs += len(message)
        parts = _entries(message.get("content"))
        if parts is None:
            leaves += message.values()
            continue
        leaves += [value for key, value in message.items() if key != "content"]
        for part in parts:
            pairs += len(part)
            leaves += part.values()
    return body.count(b":") - b"".join(leaves).count(b":") != pairs


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

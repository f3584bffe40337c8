"""Tolerant reads of the values status endpoints return: anything odd is ``None``, never raised.

Servers differ by version, proxies answer HTML, fields come and go; a reader that raised on any
of that would turn a cosmetic difference into a failed read. These helpers decode once and
check types, so the per-kind parsers say only which field means what.
"""

from __future__ import annotations

import math
from typing import Any

import orjson

MAX_TOKENS_WINDOW = 1 << 24
"""Above this a "context length" is junk (no model has 16M tokens of context)."""


def json_value(body: bytes) -> Any:
    """The decoded JSON of ``body``, or ``None`` when it is not JSON."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        return None


def json_object(body: bytes) -> dict[str, Any] | None:
    """``body`` decoded when it is a JSON object, else ``None``."""
    value = json_value(body)
    return value if isinstance(value, dict) else None


def field(value: Any, *path: str) -> Any:
    """``value[path[0]][path[1]]...`` through nested objects, ``None`` where one is missing."""
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


def count(value: Any) -> int | None:
    """A non-negative whole number (``3`` or ``3.0``), else ``None``; ``bool`` is not a number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, float) and math.isfinite(value) and value >= 0 and value.is_integer():
        return int(value)
    return None


def window(value: Any) -> int | None:
    """A plausible context length in tokens: a positive whole number not absurdly large."""
    tokens = count(value)
    if tokens is None or tokens == 0 or tokens > MAX_TOKENS_WINDOW:
        return None
    return tokens

"""The body of v1's ``POST /chat``: one message plus optional routing hints.

Kept for clients of octoroute v1. The bounds are v1's (a non-blank message of at most 100,000
characters; ``null`` is not a valid hint); every violation is a 400 whose ``param`` names the
field, where v1 answered 422 in plain text.
"""

from __future__ import annotations

from typing import Final, TypeVar

import msgspec

from octoroute.enums import Importance, TaskType
from octoroute.errors import InvalidRequest
from octoroute.wire.duplicates import check_duplicate_keys
from octoroute.wire.requests import decode_json_object, shown_value

__all__ = ["MAX_MESSAGE_CHARS", "LegacyChatRequest", "parse_legacy_chat"]

MAX_MESSAGE_CHARS: Final = 100_000
"""The longest ``message`` accepted, in code points (v1's limit)."""


class LegacyChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A validated ``/chat`` body. A hint is ``None`` when the client left it out, so the router
    can apply its configured default (v1 hard-coded ``normal`` and ``question_answer``)."""

    message: str
    importance: Importance | None = None
    task_type: TaskType | None = None


_STRING: Final = msgspec.json.Decoder(str)
_READ_KEYS: Final = frozenset({"message", "importance", "task_type"})
_Member = TypeVar("_Member", Importance, TaskType)
_IMPORTANCE: Final = {member.value: member for member in Importance}
_TASK_TYPES: Final = {member.value: member for member in TaskType}


def parse_legacy_chat(body: bytes) -> LegacyChatRequest:
    """Decode and validate a ``/chat`` body; unknown fields are ignored, as in v1.

    Raises ``InvalidRequest`` for a body that is not a JSON object, a missing, non-string, blank
    or over-long ``message``, or an ``importance``/``task_type`` outside its vocabulary (``null``
    included); ``param`` names the field and the message lists the allowed values.
    """
    fields = decode_json_object(body)

    raw = fields.get("message")
    if raw is None:
        raise InvalidRequest("message is required", param="message")
    try:
        message = _STRING.decode(raw)
    except msgspec.ValidationError:
        raise InvalidRequest(
            f"message must be a string, got {shown_value(raw)}", param="message"
        ) from None
    if not message.strip():
        raise InvalidRequest(
            "message must not be empty or contain only whitespace", param="message"
        )
    if len(message) > MAX_MESSAGE_CHARS:
        raise InvalidRequest(
            f"message must be at most {MAX_MESSAGE_CHARS} characters, got {len(message)}",
            param="message",
        )

    check_duplicate_keys(body, fields, _READ_KEYS, messages_key=None)
    return LegacyChatRequest(
        message=message,
        importance=_choice(fields.get("importance"), "importance", _IMPORTANCE),
        task_type=_choice(fields.get("task_type"), "task_type", _TASK_TYPES),
    )


def _choice(raw: msgspec.Raw | None, name: str, allowed: dict[str, _Member]) -> _Member | None:
    """The vocabulary member named by ``raw``; ``None`` when the field is absent."""
    if raw is None:
        return None
    try:
        value = allowed.get(_STRING.decode(raw))
    except msgspec.ValidationError:
        value = None
    if value is None:
        raise InvalidRequest(
            f"{name} must be one of {', '.join(allowed)} (or left out), got {shown_value(raw)}",
            param=name,
        )
    return value

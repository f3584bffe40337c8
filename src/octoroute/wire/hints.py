"""What a request tells placement beyond its messages: the output it asks for and the key that
keeps its conversation on one replica.

Every dialect reads these from its own body (chat's ``max_completion_tokens``, Responses'
``max_output_tokens``, Anthropic's ``metadata.user_id``, ...) into one :class:`RequestHints`,
so placement never learns a dialect. The affinity key is derived here once per request, from
the headers and the hints, in the order the placement docs give (docs/configuration.md).
"""

from __future__ import annotations

from hashlib import blake2b
from typing import TYPE_CHECKING, Final, NamedTuple

import msgspec

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

    from octoroute.wire.messages import Message

__all__ = [
    "DEFAULT_HINTS",
    "SESSION_HEADERS",
    "RequestHints",
    "affinity_key",
    "optional_int",
    "optional_str",
]


class RequestHints(NamedTuple):
    """A request's placement inputs that are not its messages."""

    output_tokens: int | None = None
    """The client's own limit on generated tokens (``max_tokens``, ``max_completion_tokens``,
    ``max_output_tokens``); ``None`` when it set none."""
    fills_default: bool = False
    """With no limit of the client's, the router sends the endpoint's ``max_tokens`` (chat and
    translated dialects do, completions do not): the context check then counts it."""
    cache_key: str | None = None
    """The body's conversation or user key: ``prompt_cache_key``, else ``user`` (Anthropic:
    ``metadata.user_id``)."""


DEFAULT_HINTS: Final = RequestHints()
"""What a dialect that supplies no hints is taken to say: no output limit, no default filled,
no body key (placement still estimates the prompt and hashes the conversation)."""

SESSION_HEADERS: Final = (
    "x-session-id",
    "x-claude-code-session-id",
    "x-openwebui-chat-id",
    "session_id",
)
"""Request headers naming a conversation, first match wins: our own, then Claude Code's,
Open WebUI's (with ENABLE_FORWARD_USER_INFO_HEADERS) and Codex CLI's."""

MAX_KEY_CHARS: Final = 512
"""A header or body key is cut to this before hashing: ids are short, and a client must not
make the router hash megabytes."""

_STRING: Final = msgspec.json.Decoder(str)
_INT: Final = msgspec.json.Decoder(int)


def optional_str(raw: msgspec.Raw | None) -> str | None:
    """A raw body value as a non-empty string, else ``None`` (the server judges other types)."""
    if raw is None:
        return None
    try:
        value = _STRING.decode(raw)
    except msgspec.ValidationError:
        return None
    return value or None


def optional_int(raw: msgspec.Raw | None) -> int | None:
    """A raw body value as an integer, else ``None`` (validated by the dialect's parser)."""
    if raw is None:
        return None
    try:
        return _INT.decode(raw)
    except msgspec.ValidationError:
        return None


def _digest(prefix: bytes, text: str) -> int:
    """A 64-bit hash stable across processes (``hash(str)`` is salted per process, so workers
    would disagree on a conversation's replica)."""
    data = prefix + text.encode("utf-8", "surrogatepass")
    return int.from_bytes(blake2b(data, digest_size=8).digest(), "little")


def affinity_key(
    headers: Mapping[str, str], hints: RequestHints, messages: Sequence[Message]
) -> int | None:
    """The conversation's affinity key as a 64-bit integer, or ``None`` for no affinity.

    In order: a session header (:data:`SESSION_HEADERS`); the body's key
    (:attr:`RequestHints.cache_key`); else, once the conversation has history (an assistant
    turn), a hash of its first system (or developer) message and its first user message. A lone
    first turn has no key, so identical openers from many users ("hi") spread by load and weight.
    """
    for name in SESSION_HEADERS:
        value = headers.get(name)
        if value:
            return _digest(b"s\x00", value[:MAX_KEY_CHARS])
    if hints.cache_key:
        return _digest(b"b\x00", hints.cache_key[:MAX_KEY_CHARS])
    system: str | None = None
    first_user: str | None = None
    history = False
    for message in messages:
        role = message.role
        if role == "assistant":
            history = True
            break
        if role == "user":
            if first_user is None:
                first_user = message.text()
        elif system is None and role in ("system", "developer"):
            system = message.text()
    if not history or first_user is None:
        return None
    return _digest(b"c\x00", f"{system or ''}\x00{first_user}")

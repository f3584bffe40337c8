"""What every dialect with native endpoints shares: an endpoint that speaks the client's dialect
itself (``native = [...]``) gets the client's body with only ``model`` replaced, and its events
(or NDJSON lines) are relayed as it sent them; any other endpoint gets the translation.

``NativeOrChat`` is the request side: which body an endpoint gets, and the refusal, before
anything is sent, of a request the translation cannot carry when its scope needs it.
``NativeRelay`` is the stream side: the part of a ``StreamTranslator`` that writes nothing of its
own. A dialect's subclass says only what the relay adds to a native stream, in the dialect's own
way: the filler while the server is quiet, the end of a stream that broke, and the stream of a
whole answer from a server that ignored ``stream``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, ClassVar

import msgspec

from octoroute.wire.compat import translated_chat_body
from octoroute.wire.requests import rebuild_with_model

if TYPE_CHECKING:
    from octoroute.config.schema import EndpointConfig
    from octoroute.enums import Native
    from octoroute.errors import InvalidRequest

__all__ = ["NativeOrChat", "NativeRelay"]


class NativeOrChat:
    """A validated request of a dialect some endpoints speak natively (subclassed per dialect,
    which sets ``dialect`` and fills the three fields)."""

    __slots__ = ()
    dialect: ClassVar[Native]
    """The ``native`` entry of an endpoint that speaks this dialect."""
    fields: dict[str, msgspec.Raw]
    """The client's body, every top-level field raw, in the order sent."""
    chat: dict[str, Any]
    """The translated body without ``model``."""
    problem: InvalidRequest | None
    """Why the request cannot be translated, if it cannot."""

    def body_for(self, endpoint: EndpointConfig) -> bytes:
        """The client's body (native endpoint) or the translated body, for ``endpoint``."""
        if self.dialect in endpoint.native:
            return rebuild_with_model(self.fields, endpoint.name)
        return translated_chat_body(self.chat, endpoint)

    def check_scope(self, endpoints: Sequence[EndpointConfig]) -> None:
        """Refuse, before anything is sent, a request that cannot be translated when any
        endpoint it may go to would need the translation."""
        if self.problem is not None and any(
            self.dialect not in endpoint.native for endpoint in endpoints
        ):
            raise self.problem


class NativeRelay:
    """Passes a native server's stream through unchanged (subclassed per dialect)."""

    __slots__ = ()

    def opening(self) -> bytes:
        """Nothing: the server sends its own start."""
        return b""

    def translate(self, events: list[bytes]) -> bytes:
        """The events (or lines) as they came."""
        return b"".join(events)

    def closing(self) -> bytes:
        """Nothing: the server ended its own stream."""
        return b""

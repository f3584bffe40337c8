"""The one view of a chat message that routing needs: its role and its text.

Decoded with msgspec from the ``messages`` array; every other field of a message (``tool_calls``,
``name``, ``tool_call_id``, vendor extensions) is ignored here because the original bytes are what
get forwarded upstream, untouched.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import msgspec

from octoroute.errors import InvalidRequest

if TYPE_CHECKING:
    from octoroute.config.schema import LimitsConfig


class ContentPart(msgspec.Struct):
    """One element of a content-part array; only text parts carry routable text."""

    type: str = ""
    text: str | None = None


class Message(msgspec.Struct):
    """A chat message as routing sees it."""

    role: str
    content: str | list[ContentPart] | None = None

    def text(self) -> str:
        """The message's text: the string content, or its text parts joined by newlines."""
        content = self.content
        if content is None:
            return ""
        if isinstance(content, str):
            return content
        return "\n".join(part.text for part in content if part.text is not None)


def latest_user_index(messages: Sequence[Message]) -> int | None:
    """The index of the last user message (the request routing decides on), ``None`` without
    one; one definition for the metadata, the features, the offered request and the prompt."""
    for index in range(len(messages) - 1, -1, -1):
        if messages[index].role == "user":
            return index
    return None


def check_conversation(messages: list[Message], limits: LimitsConfig, param: str) -> None:
    """Refuse a translated conversation past ``[limits]``: more than ``max_messages`` messages
    or ``max_content_chars`` characters of text in total (``param`` names the field)."""
    if len(messages) > limits.max_messages:
        raise InvalidRequest(
            f"{param} has {len(messages)} messages, more than the limit of "
            f"{limits.max_messages} (configurable as [limits].max_messages)",
            param=param,
        )
    chars = sum(len(message.text()) for message in messages)
    if chars > limits.max_content_chars:
        raise InvalidRequest(
            f"{param} contains {chars} characters of text in total, more than the limit of "
            f"{limits.max_content_chars} (configurable as [limits].max_content_chars)",
            param=param,
        )

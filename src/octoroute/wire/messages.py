"""The one view of a chat message that routing needs: its role and its text.

Decoded with msgspec from the ``messages`` array; every other field of a message (``tool_calls``,
``name``, ``tool_call_id``, vendor extensions) is ignored here because the original bytes are what
get forwarded upstream, untouched.
"""

from __future__ import annotations

import msgspec


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

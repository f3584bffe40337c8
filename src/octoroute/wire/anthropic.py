"""Peek at a ``/v1/messages`` body (Anthropic's Messages API) and translate it to chat.

Validated whatever the endpoint: ``model``, ``stream``, ``max_tokens`` (required, as Anthropic
requires it), ``messages`` and the sampling numbers. The chat body is built at parse time; a
native endpoint (``native = ["messages"]``) gets the client's own body with only ``model``
replaced instead.

Translated: ``system`` (string or text blocks) becomes the first ``system`` message; content
blocks ``text``, ``image`` (base64 or URL source, as ``image_url`` parts), ``tool_use`` (an
assistant's ``tool_calls``), ``tool_result`` (a ``tool`` message; ``is_error`` is said in its
text) and ``thinking``/``redacted_thinking`` (dropped, as chat has no place for them);
``tools``, ``tool_choice``, ``stop_sequences`` (``stop``), ``temperature``, ``top_p``,
``top_k`` (forwarded as the extra field vLLM and llama.cpp read), ``metadata.user_id``
(``user``) and ``stream``. Anything else that would change the answer is a 400 naming it.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import msgspec
import orjson

from octoroute.enums import Native
from octoroute.errors import InvalidRequest
from octoroute.wire.compat import translated_chat_body
from octoroute.wire.hints import RequestHints
from octoroute.wire.messages import Message
from octoroute.wire.requests import (
    check_sampling,
    decode_json_object,
    read_model,
    read_stream,
    rebuild_with_model,
    shown_value,
)

if TYPE_CHECKING:
    from octoroute.config.schema import EndpointConfig, LimitsConfig

__all__ = ["MessagesRequest", "error_type_for", "parse_count_request", "parse_messages_request"]

Block = dict[str, Any]

_IGNORED: Final = frozenset(
    {
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "cache_control",
        "inference_geo",
        "speed",
        "diagnostics",
    }
)
"""Accepted and not forwarded: settings about Anthropic's own service (placement, caching,
priority), meaningless in front of a self-hosted fleet."""
_HANDLED: Final = frozenset(
    {
        "model",
        "max_tokens",
        "system",
        "messages",
        "tools",
        "tool_choice",
        "stop_sequences",
        "temperature",
        "top_p",
        "top_k",
        "metadata",
        "stream",
        "thinking",
        *_IGNORED,
    }
)
_ERROR_TYPES: Final = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    503: "overloaded_error",
    529: "overloaded_error",
}


def error_type_for(status: int) -> str:
    """Anthropic's error ``type`` for an HTTP status: ``api_error`` for any other 5xx,
    ``invalid_request_error`` for any other 4xx."""
    known = _ERROR_TYPES.get(status)
    if known is not None:
        return known
    return "api_error" if status >= 500 else "invalid_request_error"


def shown(value: Any) -> str:
    """A short JSON rendering of a decoded value for a message."""
    return shown_value(msgspec.Raw(orjson.dumps(value)))


class MessagesRequest:
    """A validated Messages request: routing's view, and the bodies for native and translated
    endpoints."""

    __slots__ = ("chat", "fields", "hints", "messages", "model", "stop_sequences", "stream")

    def __init__(
        self,
        *,
        model: str,
        stream: bool,
        fields: dict[str, msgspec.Raw],
        chat: dict[str, Any],
        messages: list[Message],
        stop_sequences: tuple[str, ...],
        hints: RequestHints,
    ) -> None:
        self.model = model
        self.stream = stream
        self.fields = fields
        self.chat = chat
        """The translated chat body without ``model``."""
        self.messages = messages
        self.stop_sequences = stop_sequences
        self.hints = hints
        """``max_tokens`` and ``metadata.user_id``, for placement."""

    def path_for(self, endpoint: EndpointConfig) -> str:
        """``messages`` for a native endpoint, else ``chat/completions``."""
        return "messages" if Native.MESSAGES in endpoint.native else "chat/completions"

    def body_for(self, endpoint: EndpointConfig) -> bytes:
        """The client's body (native endpoint) or the translated chat body, for ``endpoint``."""
        if Native.MESSAGES in endpoint.native:
            return rebuild_with_model(self.fields, endpoint.name)
        return translated_chat_body(self.chat, endpoint)

    def check_scope(self, endpoints: Sequence[EndpointConfig]) -> None:
        """Nothing to refuse: every problem is found at parse time."""


def parse_messages_request(body: bytes, limits: LimitsConfig) -> MessagesRequest:
    """Decode, validate and translate a Messages body.

    Raises ``InvalidRequest`` naming the field for anything invalid or untranslatable.
    """
    fields = decode_json_object(body)
    model = read_model(fields)
    stream = read_stream(fields)
    check_sampling(fields)
    values: dict[str, Any] = orjson.loads(body)
    max_tokens = values.get("max_tokens")
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequest(
            "max_tokens is required: an integer >= 1"
            + ("" if max_tokens is None else f", got {shown(max_tokens)}"),
            param="max_tokens",
        )
    for key in values:
        if key not in _HANDLED:
            raise InvalidRequest(
                f"{key} is not supported by this router's Messages API (it translates to chat "
                "completions and cannot carry it)",
                param=key,
            )
    system = _system(values.get("system"))
    raw_messages = values.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise InvalidRequest("messages must be a non-empty array of messages", param="messages")
    chat_messages = [] if system is None else [{"role": "system", "content": system}]
    for index, message in enumerate(raw_messages):
        chat_messages.extend(_message(message, f"messages[{index}]"))
    chat: dict[str, Any] = {"messages": chat_messages, "max_tokens": max_tokens}
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    for key in ("temperature", "top_p", "top_k"):
        if values.get(key) is not None:
            chat[key] = values[key]
    stops = values.get("stop_sequences")
    stop_sequences: tuple[str, ...] = ()
    if stops is not None:
        if not isinstance(stops, list) or not all(isinstance(stop, str) for stop in stops):
            raise InvalidRequest(
                "stop_sequences must be an array of strings", param="stop_sequences"
            )
        stop_sequences = tuple(stops)
        if stops:
            chat["stop"] = stops
    metadata = values.get("metadata")
    user_id: str | None = None
    if isinstance(metadata, dict) and isinstance(metadata.get("user_id"), str):
        user_id = chat["user"] = metadata["user_id"]
    if values.get("tools"):
        chat["tools"] = _tools(values["tools"])
    if values.get("tool_choice") is not None:
        _tool_choice(values["tool_choice"], chat)
    messages = _routing_view(chat_messages)
    _check_limits(messages, limits)
    return MessagesRequest(
        model=model,
        stream=stream,
        fields=fields,
        chat=chat,
        messages=messages,
        stop_sequences=stop_sequences,
        hints=RequestHints(max_tokens, True, user_id or None),
    )


def parse_count_request(body: bytes, limits: LimitsConfig) -> MessagesRequest:
    """A ``/v1/messages/count_tokens`` body, validated as ``/v1/messages`` would be except that
    ``max_tokens`` is not asked for."""
    fields = decode_json_object(body)
    if "max_tokens" not in fields:
        fields["max_tokens"] = msgspec.Raw(b"1")
        body = rebuild_with_model(fields, read_model(fields))
    return parse_messages_request(body, limits)


def _text_blocks(value: Any, where: str) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        texts = []
        for index, block in enumerate(value):
            if not (isinstance(block, dict) and block.get("type") == "text"):
                raise InvalidRequest(
                    f"{where}[{index}] must be a text block", param=f"{where}[{index}]"
                )
            text = block.get("text")
            if not isinstance(text, str):
                raise InvalidRequest(
                    f"{where}[{index}].text must be a string", param=f"{where}[{index}].text"
                )
            texts.append(text)
        return "\n".join(texts)
    raise InvalidRequest(f"{where} must be a string or an array of text blocks", param=where)


def _system(system: Any) -> str | None:
    if system is None:
        return None
    return _text_blocks(system, "system")


def _image(block: Block, where: str) -> Block:
    source = block.get("source")
    kind = source.get("type") if isinstance(source, dict) else None
    if kind == "base64" and isinstance(source, dict):
        media = source.get("media_type")
        data = source.get("data")
        if not isinstance(media, str) or not isinstance(data, str):
            raise InvalidRequest(
                f"{where}.source needs media_type and data strings", param=f"{where}.source"
            )
        url = f"data:{media};base64,{data}"
    elif kind == "url" and isinstance(source, dict) and isinstance(source.get("url"), str):
        url = source["url"]
    else:
        raise InvalidRequest(
            f"{where}.source.type must be 'base64' or 'url' (with its fields), got {shown(kind)}",
            param=f"{where}.source",
        )
    return {"type": "image_url", "image_url": {"url": url}}


def _message(message: Any, where: str) -> list[Block]:
    if not isinstance(message, dict):
        raise InvalidRequest(f"{where} must be an object", param=where)
    role = message.get("role")
    if role not in ("user", "assistant"):
        raise InvalidRequest(
            f"{where}.role must be 'user' or 'assistant', got {shown(role)}", param=f"{where}.role"
        )
    content = message.get("content")
    if isinstance(content, str):
        return [{"role": role, "content": content}]
    if not isinstance(content, list):
        raise InvalidRequest(
            f"{where}.content must be a string or an array of content blocks",
            param=f"{where}.content",
        )
    out: list[Block] = []
    parts: list[Block] = []
    calls: list[Block] = []
    for index, block in enumerate(content):
        at = f"{where}.content[{index}]"
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block, dict):
            if not isinstance(block.get("text"), str):
                raise InvalidRequest(f"{at}.text must be a string", param=f"{at}.text")
            parts.append({"type": "text", "text": block["text"]})
        elif kind == "image" and isinstance(block, dict):
            parts.append(_image(block, at))
        elif kind == "tool_use" and isinstance(block, dict) and role == "assistant":
            if not isinstance(block.get("id"), str) or not isinstance(block.get("name"), str):
                raise InvalidRequest(f"{at} needs id and name strings", param=at)
            arguments = orjson.dumps(block.get("input") or {}).decode()
            calls.append(
                {
                    "id": block["id"],
                    "type": "function",
                    "function": {"name": block["name"], "arguments": arguments},
                }
            )
        elif kind == "tool_result" and isinstance(block, dict) and role == "user":
            if not isinstance(block.get("tool_use_id"), str):
                raise InvalidRequest(
                    f"{at}.tool_use_id must be a string", param=f"{at}.tool_use_id"
                )
            result = block.get("content")
            text = "" if result is None else _result_text(result, f"{at}.content")
            if block.get("is_error") is True:
                text = f"Error: {text}"
            out.append({"role": "tool", "tool_call_id": block["tool_use_id"], "content": text})
        elif kind in ("thinking", "redacted_thinking"):
            continue
        else:
            raise InvalidRequest(
                f"{at}.type {shown(kind)} is not supported in a {role} message here",
                param=f"{at}.type",
            )
    if role == "assistant":
        text = "".join(part["text"] for part in parts if part["type"] == "text")
        if len(parts) != sum(part["type"] == "text" for part in parts):
            raise InvalidRequest(f"{where}: an assistant message cannot hold images", param=where)
        assistant: Block = {"role": "assistant", "content": text or None}
        if calls:
            assistant["tool_calls"] = calls
        out.append(assistant)
    elif parts:
        # Tool results first: chat wants them right after the assistant's calls.
        if all(part["type"] == "text" for part in parts):
            out.append({"role": "user", "content": "\n".join(part["text"] for part in parts)})
        else:
            out.append({"role": "user", "content": parts})
    return out


def _result_text(result: Any, where: str) -> str:
    if isinstance(result, str):
        return result
    if isinstance(result, list):
        texts = [
            block["text"]
            for block in result
            if isinstance(block, dict) and isinstance(block.get("text"), str)
        ]
        return "\n".join(texts)
    raise InvalidRequest(f"{where} must be a string or an array of blocks", param=where)


def _tools(tools: Any) -> list[Block]:
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be an array of tools", param="tools")
    translated = []
    for index, tool in enumerate(tools):
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or not isinstance(name, str):
            raise InvalidRequest(f"tools[{index}].name must be a string", param=f"tools[{index}]")
        if tool.get("type") not in (None, "custom"):
            raise InvalidRequest(
                f"tools[{index}].type {shown(tool.get('type'))} is a server tool of Anthropic's; "
                "only client tools (with input_schema) can be offered to a chat model",
                param=f"tools[{index}].type",
            )
        function: Block = {"name": name, "parameters": tool.get("input_schema") or {}}
        if isinstance(tool.get("description"), str):
            function["description"] = tool["description"]
        translated.append({"type": "function", "function": function})
    return translated


def _tool_choice(choice: Any, chat: dict[str, Any]) -> None:
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("auto", "none"):
        chat["tool_choice"] = kind
    elif kind == "any":
        chat["tool_choice"] = "required"
    elif kind == "tool" and isinstance(choice.get("name"), str):
        chat["tool_choice"] = {"type": "function", "function": {"name": choice["name"]}}
    else:
        raise InvalidRequest(
            "tool_choice.type must be 'auto', 'any', 'tool' (with name) or 'none', "
            f"got {shown(choice)}",
            param="tool_choice",
        )
    if isinstance(choice, dict) and choice.get("disable_parallel_tool_use") is True:
        chat["parallel_tool_calls"] = False


def _routing_view(chat_messages: list[Block]) -> list[Message]:
    messages = []
    for message in chat_messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(part["text"] for part in content if part["type"] == "text")
        messages.append(Message(role=message["role"], content=content or ""))
    return messages


def _check_limits(messages: list[Message], limits: LimitsConfig) -> None:
    if len(messages) > limits.max_messages:
        raise InvalidRequest(
            f"messages has {len(messages)} messages, more than the limit of "
            f"{limits.max_messages} (configurable as [limits].max_messages)",
            param="messages",
        )
    chars = sum(len(message.text()) for message in messages)
    if chars > limits.max_content_chars:
        raise InvalidRequest(
            f"messages contain {chars} characters of text in total, more than the limit of "
            f"{limits.max_content_chars} (configurable as [limits].max_content_chars)",
            param="messages",
        )

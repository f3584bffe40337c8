"""Peek at a ``/v1/messages`` body (Anthropic's Messages API) and translate it to chat.

Validated whatever the endpoint: ``model``, ``stream``, ``max_tokens`` (required, as Anthropic
requires it), ``messages`` and the sampling numbers. The chat body is built at parse time; a
native endpoint (``native = ["messages"]``) gets the client's own body with only ``model``
replaced instead.

Translated: ``system`` (string or text blocks) becomes the first ``system`` message and each
message its chat messages (``wire.anthropic_content``); ``tools`` (``strict`` kept),
``tool_choice``, ``stop_sequences`` (``stop``), ``temperature``, ``top_p``, ``top_k`` (forwarded
as the extra field vLLM and llama.cpp read), ``metadata.user_id`` (``user``),
``output_config.format`` (``response_format``) and ``stream``. Reasoning controls (``thinking``,
``output_config.effort``) are checked (``thinking`` is an object) and not forwarded: servers
differ on them, and some refuse a model that cannot reason; with ``thinking`` on, the server's
reasoning comes back as ``thinking`` blocks. Anything else that would change the answer is a 400
naming it, as is a ``tools`` that is not an array and a message that would vanish in translation
(``wire.anthropic_content``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final

import msgspec

from octoroute.enums import Native
from octoroute.errors import InvalidRequest
from octoroute.wire.anthropic_content import Block, chat_messages, text_of
from octoroute.wire.duplicates import check_duplicate_keys
from octoroute.wire.hints import RequestHints
from octoroute.wire.messages import Message, check_conversation
from octoroute.wire.native import NativeOrChat
from octoroute.wire.requests import (
    check_sampling,
    decode_json_object,
    decode_json_values,
    read_model,
    read_stream,
    shown,
)

if TYPE_CHECKING:
    from octoroute.config.schema import EndpointConfig, LimitsConfig

__all__ = [
    "SERVICE_SETTINGS",
    "MessagesRequest",
    "error_type_for",
    "parse_count_request",
    "parse_messages_request",
]

SERVICE_SETTINGS: Final = frozenset(
    {
        "service_tier",
        "container",
        "mcp_servers",
        "context_management",
        "cache_control",
        "inference_geo",
        "speed",
        "diagnostics",
        "user_profile_id",
        "workspace_id",
    }
)
"""Accepted and not forwarded: settings about Anthropic's own service (placement, caching,
priority, attribution), meaningless in front of a self-hosted fleet."""
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
        "output_config",
        *SERVICE_SETTINGS,
    }
)
_READ_KEYS: Final = frozenset(
    {"model", "max_tokens", "messages", "system", "stream", "temperature", "top_p", "top_k"}
)
"""Keys the router reads whatever the endpoint: refused when sent twice (``wire.duplicates``)."""
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


class MessagesRequest(NativeOrChat):
    """A validated Messages request: routing's view, and the bodies for native and translated
    endpoints."""

    __slots__ = (
        "chat",
        "fields",
        "hints",
        "messages",
        "model",
        "problem",
        "stop_sequences",
        "stream",
        "thinking",
    )
    dialect = Native.MESSAGES

    def __init__(
        self,
        *,
        model: str,
        stream: bool,
        fields: dict[str, msgspec.Raw],
        chat: dict[str, Any],
        problem: InvalidRequest | None,
        messages: list[Message],
        stop_sequences: tuple[str, ...],
        hints: RequestHints,
        thinking: bool = False,
    ) -> None:
        self.model = model
        self.stream = stream
        self.fields = fields
        self.chat = chat
        """The translated chat body without ``model`` (empty when ``problem`` is set)."""
        self.problem = problem
        """Why the body cannot be translated to chat, if it cannot: raised by ``check_scope``."""
        self.messages = messages
        self.stop_sequences = stop_sequences
        self.hints = hints
        """``max_tokens`` and ``metadata.user_id``, for placement."""
        self.thinking = thinking
        """The client turned thinking on (``enabled`` or ``adaptive``): a chat server's
        reasoning comes back as ``thinking`` blocks, as Anthropic's would."""

    def path_for(self, endpoint: EndpointConfig) -> str:
        """``messages`` for a native endpoint, else ``chat/completions``."""
        return "messages" if Native.MESSAGES in endpoint.native else "chat/completions"


def parse_messages_request(body: bytes, limits: LimitsConfig) -> MessagesRequest:
    """Decode and validate a Messages body, and translate it to a chat body.

    Raises ``InvalidRequest`` naming the field for a bad ``model``, ``stream``, ``max_tokens``,
    sampling number, ``messages`` array or a key sent twice; what only the translation cannot
    carry is kept in ``problem`` (a native endpoint takes the body as sent).
    """
    return _parse(body, limits, counting=False)


def parse_count_request(body: bytes, limits: LimitsConfig) -> MessagesRequest:
    """A ``/v1/messages/count_tokens`` body, validated as ``/v1/messages`` would be except that
    ``max_tokens`` is not asked for (it is checked when sent)."""
    return _parse(body, limits, counting=True)


def _parse(body: bytes, limits: LimitsConfig, *, counting: bool) -> MessagesRequest:
    """Both parsers in one, so ``count_tokens`` checks what ``/v1/messages`` checks on the very
    bytes sent (rebuilding the body first would hide a key sent twice)."""
    fields = decode_json_object(body)
    model = read_model(fields)
    stream = read_stream(fields)
    values: dict[str, Any] = decode_json_values(body)
    max_tokens = values.get("max_tokens", 1 if counting else None)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        raise InvalidRequest(
            "max_tokens is required: an integer >= 1"
            + ("" if max_tokens is None else f", got {shown(max_tokens)}"),
            param="max_tokens",
        )
    check_sampling(fields)
    raw_messages = values.get("messages")
    if not isinstance(raw_messages, list) or not raw_messages:
        raise InvalidRequest("messages must be a non-empty array of messages", param="messages")
    messages = _routing_view(values.get("system"), raw_messages)
    check_conversation(messages, limits, "messages")
    check_duplicate_keys(body, fields, _READ_KEYS)
    problem: InvalidRequest | None = None
    chat: dict[str, Any] = {}
    stop_sequences: tuple[str, ...] = ()
    try:
        chat, stop_sequences = _chat_body(values, raw_messages, max_tokens, stream)
    except InvalidRequest as error:
        problem = error
    return MessagesRequest(
        model=model,
        stream=stream,
        fields=fields,
        chat=chat,
        problem=problem,
        messages=messages,
        stop_sequences=stop_sequences,
        hints=RequestHints(max_tokens, True, _user_key(values.get("metadata"))),
        thinking=_wants_thinking(values.get("thinking")),
    )


def _user_key(metadata: Any) -> str | None:
    """``metadata.user_id`` when it is a non-empty string: the body's affinity key."""
    if isinstance(metadata, dict):
        user_id = metadata.get("user_id")
        if isinstance(user_id, str) and user_id:
            return user_id
    return None


def _chat_body(
    values: dict[str, Any], raw_messages: list[Any], max_tokens: int, stream: bool
) -> tuple[dict[str, Any], tuple[str, ...]]:
    """The chat body (without ``model``) and the stop sequences; ``InvalidRequest`` naming the
    first field the translation cannot carry."""
    for key in values:
        if key not in _HANDLED:
            raise InvalidRequest(
                f"{key} is not supported by this router's Messages API (it translates to chat "
                "completions and cannot carry it)",
                param=key,
            )
    system = _system(values.get("system"))
    translated = [] if system is None else [{"role": "system", "content": system}]
    last = len(raw_messages) - 1
    for index, message in enumerate(raw_messages):
        translated.extend(chat_messages(message, f"messages[{index}]", final=index == last))
    chat: dict[str, Any] = {"messages": translated, "max_tokens": max_tokens}
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    for key in ("temperature", "top_p"):
        if values.get(key) is not None:
            chat[key] = values[key]
    top_k = values.get("top_k")
    if top_k is not None:
        if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 0:
            raise InvalidRequest(
                f"top_k must be an integer >= 0 (or null), got {shown(top_k)}", param="top_k"
            )
        chat["top_k"] = top_k
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
    user = _user(values.get("metadata"))
    if user is not None:
        chat["user"] = user
    if values.get("tools") is not None:
        tools = _tools(values["tools"])
        if tools:  # [] is no tools; chat servers (and OpenAI) may refuse an empty array
            chat["tools"] = tools
    _check_thinking(values.get("thinking"))
    if values.get("tool_choice") is not None:
        _tool_choice(values["tool_choice"], chat)
    response_format = _output_format(values.get("output_config"))
    if response_format is not None:
        chat["response_format"] = response_format
    return chat, stop_sequences


def _check_thinking(thinking: Any) -> None:
    """``thinking`` is an object (or null), as Anthropic's API requires: it is not forwarded to
    a chat server, so a malformed value would otherwise be dropped without a word."""
    if thinking is not None and not isinstance(thinking, dict):
        raise InvalidRequest(
            'thinking must be an object, e.g. {"type": "enabled", "budget_tokens": 1024}, '
            f'{{"type": "adaptive"}} or {{"type": "disabled"}}; got {shown(thinking)}',
            param="thinking",
        )


def _wants_thinking(thinking: Any) -> bool:
    """Whether ``thinking`` turns it on; anything else (``disabled``, absent, a type this router
    does not know) is taken as off, since it is not forwarded to a chat server either."""
    return isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive")


def _system(system: Any) -> str | None:
    if system is None:
        return None
    return text_of(system, "system")


_TOOL_KEYS_IGNORED: Final = frozenset(
    {"cache_control", "defer_loading", "eager_input_streaming", "allowed_callers", "input_examples"}
)
"""Tool keys about Anthropic's own tool machinery (caching, tool search, programmatic calls):
accepted and not forwarded."""


def _tools(tools: Any) -> list[Block]:
    """The function tools for ``tools``; anything but an array (``{}``, ``false`` and ``""``
    too, which a falsy check would have let through unsent) is a 400."""
    if not isinstance(tools, list):
        raise InvalidRequest(
            f"tools must be an array of tools (or null), got {shown(tools)}", param="tools"
        )
    translated = []
    for index, tool in enumerate(tools):
        at = f"tools[{index}]"
        name = tool.get("name") if isinstance(tool, dict) else None
        if not isinstance(tool, dict) or not isinstance(name, str):
            raise InvalidRequest(f"{at}.name must be a string", param=at)
        if tool.get("type") not in (None, "custom"):
            raise InvalidRequest(
                f"{at}.type {shown(tool.get('type'))} is a server tool of Anthropic's; "
                "only client tools (with input_schema) can be offered to a chat model",
                param=f"{at}.type",
            )
        schema = tool.get("input_schema")
        if not isinstance(schema, dict):
            raise InvalidRequest(f"{at}.input_schema must be an object", param=f"{at}.input_schema")
        function: Block = {"name": name, "parameters": schema}
        for key, value in tool.items():
            if key == "description" and isinstance(value, str):
                function["description"] = value
            elif key == "strict" and isinstance(value, bool):
                function["strict"] = value
            elif key not in ("name", "type", "input_schema") and key not in _TOOL_KEYS_IGNORED:
                raise InvalidRequest(
                    f"{at}.{key} is not supported by this router's Messages API",
                    param=f"{at}.{key}",
                )
        translated.append({"type": "function", "function": function})
    return translated


def _user(metadata: Any) -> str | None:
    """``metadata.user_id``, chat's ``user``; ``metadata`` has no other key."""
    if metadata is None:
        return None
    if not isinstance(metadata, dict):
        raise InvalidRequest("metadata must be an object", param="metadata")
    for key in metadata:
        if key != "user_id":
            raise InvalidRequest(
                f"metadata.{key} is not supported (metadata holds user_id only)",
                param=f"metadata.{key}",
            )
    user_id = metadata.get("user_id")
    if user_id is not None and not isinstance(user_id, str):
        raise InvalidRequest(
            f"metadata.user_id must be a string (or null), got {shown(user_id)}",
            param="metadata.user_id",
        )
    return user_id


_EFFORTS: Final = frozenset({"low", "medium", "high", "xhigh", "max"})


def _output_format(config: Any) -> Block | None:
    """``output_config.format`` (a JSON schema) as chat's ``response_format``; ``effort`` is
    checked and not forwarded."""
    if config is None:
        return None
    if not isinstance(config, dict):
        raise InvalidRequest("output_config must be an object", param="output_config")
    for key in config:
        if key not in ("effort", "format"):
            raise InvalidRequest(
                f"output_config.{key} is not supported by this router's Messages API",
                param=f"output_config.{key}",
            )
    effort = config.get("effort")
    if effort is not None and effort not in _EFFORTS:
        raise InvalidRequest(
            "output_config.effort must be 'low', 'medium', 'high', 'xhigh' or 'max', "
            f"got {shown(effort)}",
            param="output_config.effort",
        )
    output = config.get("format")
    if output is None:
        return None
    schema = output.get("schema") if isinstance(output, dict) else None
    if (
        not isinstance(output, dict)
        or output.get("type") != "json_schema"
        or not isinstance(schema, dict)
    ):
        raise InvalidRequest(
            'output_config.format must be {"type": "json_schema", "schema": {...}}',
            param="output_config.format",
        )
    return {"type": "json_schema", "json_schema": {"name": "output", "schema": schema}}


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


def _text(content: Any) -> str:
    """The text of a string or of the text blocks among ``content``, for routing: lenient, as
    validation is the translation's (or a native server's) job."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list):
        return ""
    return "\n".join(
        block["text"]
        for block in content
        if isinstance(block, dict)
        and block.get("type") == "text"
        and isinstance(block.get("text"), str)
    )


def _routing_view(system: Any, raw_messages: list[Any]) -> list[Message]:
    """The conversation as routing reads it, as the chat translation would give it: the system
    prompt, each tool result as a ``tool`` message, then the message's own text."""
    messages = [] if system is None else [Message(role="system", content=_text(system))]
    for message in raw_messages:
        if not isinstance(message, dict):
            continue
        role = message.get("role")
        content = message.get("content")
        if isinstance(content, list):
            for block in content:
                if isinstance(block, dict) and block.get("type") == "tool_result":
                    messages.append(Message(role="tool", content=_text(block.get("content"))))
        text = _text(content)
        if role == "assistant" or text or not isinstance(content, list):
            messages.append(Message(role=role if isinstance(role, str) else "user", content=text))
    return messages

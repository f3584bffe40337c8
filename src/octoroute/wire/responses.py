"""Peek at a ``/v1/responses`` body (the OpenAI Responses API) and translate it to chat.

The body is decoded once into ``{key: raw bytes}`` as for chat. What the router needs whatever
the endpoint (``model``, ``stream``, ``input``, ``previous_response_id``) is validated here; the
translation to a chat-completions body is made at parse time too, but a field that cannot be
translated is not refused yet: it is kept as ``problem`` and raised only when the request's
scope holds an endpoint without ``native = ["responses"]`` (``check_scope``). A native
endpoint gets the client's own body with ``model`` replaced and, after ``previous_response_id``,
the stored conversation spelled out in ``input`` (the router keeps the history, so a stateless
server can continue it).

Translated, nothing the client sent is dropped silently: a field with no chat equivalent is a
400 naming it, except ``reasoning`` (and ``include`` entries about reasoning), which is dropped
as the reasoning itself is, and ``store``/``metadata``, which the router handles itself.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import msgspec
import orjson

from octoroute.enums import Native
from octoroute.errors import InvalidRequest
from octoroute.wire.duplicates import check_duplicate_keys
from octoroute.wire.hints import RequestHints
from octoroute.wire.messages import Message
from octoroute.wire.native import NativeOrChat
from octoroute.wire.requests import (
    check_sampling,
    decode_json_object,
    decode_json_values,
    read_model,
    read_stream,
    rebuild_with_model,
    shown,
    shown_value,
)

if TYPE_CHECKING:
    from octoroute.config.schema import EndpointConfig, LimitsConfig

__all__ = ["History", "ResponsesRequest", "parse_responses_request"]

Item = dict[str, Any]
History = Callable[[str], "list[Item] | None"]
"""The conversation stored under a response id (its input items, then its output), or ``None``."""

_SAME_NAME: Final = (
    "temperature",
    "top_p",
    "parallel_tool_calls",
    "user",
    "prompt_cache_key",
    "safety_identifier",
    "service_tier",
)
"""Fields chat completions knows under the same name and meaning: copied as sent."""
_HANDLED: Final = frozenset(
    {
        "model",
        "input",
        "instructions",
        "stream",
        "store",
        "metadata",
        "previous_response_id",
        "tools",
        "tool_choice",
        "text",
        "max_output_tokens",
        "reasoning",
        "include",
        "truncation",
        "background",
        "stream_options",
        *_SAME_NAME,
    }
)
_ROLES: Final = {
    "user": "user",
    "assistant": "assistant",
    "system": "system",
    "developer": "system",
}
"""Responses roles to chat roles: ``developer`` becomes ``system``, which every chat template
reads (several local ones refuse ``developer``)."""
_TOOL_CHOICE_WORDS: Final = frozenset({"auto", "none", "required"})


class ResponsesRequest(NativeOrChat):
    """A validated Responses request: routing's view, the echo fields of the answer, and the
    bodies for native and translated endpoints."""

    __slots__ = (
        "chat",
        "created_at",
        "echo",
        "fields",
        "hints",
        "input_items",
        "messages",
        "model",
        "native_input",
        "problem",
        "store",
        "stream",
    )
    dialect = Native.RESPONSES

    def __init__(
        self,
        *,
        model: str,
        stream: bool,
        fields: dict[str, msgspec.Raw],
        input_items: list[Item],
        native_input: bytes | None,
        chat: dict[str, Any],
        problem: InvalidRequest | None,
        messages: list[Message],
        echo: dict[str, Any],
        store: bool,
        created_at: int,
        hints: RequestHints,
    ) -> None:
        self.model = model
        self.stream = stream
        self.fields = fields
        self.input_items = input_items
        """The whole conversation so far as items: the stored one, then this request's input."""
        self.native_input = native_input
        """``input`` for a native endpoint when it differs from the client's (a continuation)."""
        self.chat = chat
        """The translated chat body without ``model``."""
        self.problem = problem
        """Why the request cannot be translated to chat, if it cannot."""
        self.messages = messages
        self.echo = echo
        """The request's settings as a ``response`` object repeats them."""
        self.store = store
        self.created_at = created_at
        self.hints = hints
        """``max_output_tokens`` and ``prompt_cache_key`` (else ``user``), for placement."""

    def path_for(self, endpoint: EndpointConfig) -> str:
        """``responses`` for a native endpoint, else ``chat/completions``."""
        return "responses" if Native.RESPONSES in endpoint.native else "chat/completions"

    def body_for(self, endpoint: EndpointConfig) -> bytes:
        """The client's body (native endpoint; a continuation with the whole conversation as
        ``input``) or the translated chat body, for ``endpoint``."""
        if self.native_input is not None and Native.RESPONSES in endpoint.native:
            fields = {k: v for k, v in self.fields.items() if k != "previous_response_id"}
            fields["input"] = msgspec.Raw(self.native_input)
            return rebuild_with_model(fields, endpoint.name)
        return super().body_for(endpoint)


def parse_responses_request(
    body: bytes, limits: LimitsConfig, history: History, created_at: int
) -> ResponsesRequest:
    """Decode and validate a Responses body, and translate it to a chat body.

    Raises ``InvalidRequest`` naming the field for a bad ``model``, ``input``, ``stream``,
    sampling number, ``max_output_tokens`` or an unknown ``previous_response_id``; a field that
    only the translation cannot carry is kept in ``problem`` (see the module docstring).
    """
    fields = decode_json_object(body)
    model = read_model(fields)
    stream = read_stream(fields)
    check_sampling(fields)
    # One C pass over the whole body: a call per field cost more than the fields' own decoding.
    values: dict[str, Any] = decode_json_values(body)
    values.pop("model", None)
    raw_input = values.get("input")
    if isinstance(raw_input, str):
        new_items: list[Item] = [{"type": "message", "role": "user", "content": raw_input}]
    elif isinstance(raw_input, list) and all(isinstance(item, dict) for item in raw_input):
        new_items = raw_input
    elif raw_input is None:
        raise InvalidRequest("input is required: a string or an array of items", param="input")
    else:
        raise InvalidRequest(
            f"input must be a string or an array of item objects, got {shown_value(fields['input'])}",
            param="input",
        )
    previous = values.get("previous_response_id")
    prior: list[Item] = []
    native_input: bytes | None = None
    if previous is not None:
        if not isinstance(previous, str):
            raise InvalidRequest(
                "previous_response_id must be the id of an earlier response (a string), got "
                f"{shown_value(fields['previous_response_id'])}",
                param="previous_response_id",
            )
        stored = history(previous)
        if stored is None:
            raise InvalidRequest(
                f"previous_response_id {shown_value(fields['previous_response_id'])} is not a "
                "response this router remembers (it keeps the last [limits].responses_store "
                "responses of each process, and none made with store: false)",
                param="previous_response_id",
            )
        prior = stored
        native_input = orjson.dumps([*prior, *new_items])
    max_output = values.get("max_output_tokens")
    if max_output is not None and (
        isinstance(max_output, bool) or not isinstance(max_output, int) or max_output < 1
    ):
        raise InvalidRequest(
            f"max_output_tokens must be an integer >= 1 (or null), got {shown_value(fields['max_output_tokens'])}",
            param="max_output_tokens",
        )
    store = values.get("store")
    if store is not None and not isinstance(store, bool):
        raise InvalidRequest(
            f"store must be true or false, got {shown_value(fields['store'])}", param="store"
        )
    _check_metadata(values.get("metadata"))
    items = [*prior, *new_items]
    if not items:
        raise InvalidRequest(
            "input is an empty array: send at least one item (a message), or a string",
            param="input",
        )
    messages = _routing_view(values.get("instructions"), items)
    _check_limits(messages, limits)
    # Every top-level key: the translation reads them all (one it cannot carry is a 400). The
    # items' keys too: a native endpoint gets them as sent, so a repeated "content" would let
    # the limit above judge one value while the server reads the other.
    check_duplicate_keys(body, fields, frozenset(fields), messages_key="input")
    problem: InvalidRequest | None = None
    chat: dict[str, Any] = {}
    try:
        chat = _chat_body(values, items)
    except InvalidRequest as error:
        problem = error
    return ResponsesRequest(
        model=model,
        stream=stream,
        fields=fields,
        input_items=items,
        native_input=native_input,
        chat=chat,
        problem=problem,
        messages=messages,
        echo=_echo(values),
        store=store is not False,
        created_at=created_at,
        hints=RequestHints(max_output, True, _key(values)),
    )


METADATA_KEYS: Final = 16
METADATA_VALUE_CHARS: Final = 512


def _check_metadata(metadata: Any) -> None:
    """``metadata`` is echoed in the response, whose type (and OpenAI's API) says: an object of
    at most 16 string values of at most 512 characters; anything else would reach the client
    as a response its SDK cannot type."""
    if metadata is None:
        return
    if not isinstance(metadata, dict):
        raise InvalidRequest(
            f"metadata must be an object of string values, got {shown(metadata)}",
            param="metadata",
        )
    if len(metadata) > METADATA_KEYS:
        raise InvalidRequest(
            f"metadata has {len(metadata)} keys, more than the {METADATA_KEYS} allowed",
            param="metadata",
        )
    for key, value in metadata.items():
        if not isinstance(value, str) or len(value) > METADATA_VALUE_CHARS:
            raise InvalidRequest(
                f"metadata.{key} must be a string of at most {METADATA_VALUE_CHARS} characters, "
                f"got {shown(value)}",
                param=f"metadata.{key}",
            )


def _key(values: dict[str, Any]) -> str | None:
    for name in ("prompt_cache_key", "user"):
        value = values.get(name)
        if isinstance(value, str) and value:
            return value
    return None


def _text_of(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return "\n".join(
            part["text"]
            for part in content
            if isinstance(part, dict) and isinstance(part.get("text"), str)
        )
    return ""


def _routing_view(instructions: Any, items: list[Item]) -> list[Message]:
    """The conversation as routing reads it: lenient, since the translation judges items."""
    messages: list[Message] = []
    if isinstance(instructions, str):
        messages.append(Message(role="system", content=instructions))
    for item in items:
        kind = item.get("type", "message")
        if kind == "message" and isinstance(item.get("role"), str):
            messages.append(Message(role=item["role"], content=_text_of(item.get("content"))))
        elif kind == "function_call_output":
            messages.append(Message(role="tool", content=_text_of(item.get("output"))))
    if not messages:
        messages.append(Message(role="user", content=""))
    return messages


def _check_limits(messages: list[Message], limits: LimitsConfig) -> None:
    if len(messages) > limits.max_messages:
        raise InvalidRequest(
            f"input has {len(messages)} messages, more than the limit of {limits.max_messages} "
            "(configurable as [limits].max_messages)",
            param="input",
        )
    chars = sum(len(message.text()) for message in messages)
    if chars > limits.max_content_chars:
        raise InvalidRequest(
            f"input contains {chars} characters of text in total, more than the limit of "
            f"{limits.max_content_chars} (configurable as [limits].max_content_chars)",
            param="input",
        )


def _echo(values: dict[str, Any]) -> dict[str, Any]:
    """The request's settings as the ``response`` object repeats them, with OpenAI's defaults."""
    text = values.get("text")
    return {
        "instructions": values.get("instructions"),
        "max_output_tokens": values.get("max_output_tokens"),
        "metadata": values.get("metadata") or {},
        "parallel_tool_calls": values.get("parallel_tool_calls", True),
        "previous_response_id": values.get("previous_response_id"),
        "reasoning": {"effort": None, "summary": None},
        "store": values.get("store", True) is not False,
        "temperature": values.get("temperature"),
        "text": text if isinstance(text, dict) else {"format": {"type": "text"}},
        "tool_choice": values.get("tool_choice", "auto"),
        "tools": values.get("tools") or [],
        "top_p": values.get("top_p"),
        "truncation": values.get("truncation") or "disabled",
        "user": values.get("user"),
    }


# --- the translation to chat completions ----------------------------------------------------


def _untranslatable(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f'{param} {why}; the endpoint speaks chat completions (not native = ["responses"]), '
        "so the router translates the request and cannot carry it",
        param=param,
    )


def _chat_body(values: dict[str, Any], items: list[Item]) -> dict[str, Any]:
    for key in values:
        if key not in _HANDLED:
            raise _untranslatable(key, "has no chat-completions equivalent")
    chat: dict[str, Any] = {"messages": _messages(values.get("instructions"), items)}
    if values.get("stream") is True:
        chat["stream"] = True
        # The usage chunk gives the final response its token counts.
        chat["stream_options"] = {"include_usage": True}
    for key in _SAME_NAME:
        if values.get(key) is not None:
            chat[key] = values[key]
    if values.get("max_output_tokens") is not None:
        chat["max_tokens"] = values["max_output_tokens"]
    tools = values.get("tools")
    if tools:
        chat["tools"] = _tools(tools)
    if values.get("tool_choice") is not None:
        chat["tool_choice"] = _tool_choice(values["tool_choice"])
    text = values.get("text")
    if text is not None:
        _text(text, chat)
    include = values.get("include") or []
    if not isinstance(include, list):
        raise InvalidRequest("include must be an array of strings", param="include")
    for index, entry in enumerate(include):
        if not (isinstance(entry, str) and entry.startswith("reasoning.")):
            raise _untranslatable(f"include[{index}]", f"asks for {shown(entry)}")
    if values.get("background") is True:
        raise _untranslatable("background", "is true (background responses)")
    truncation = values.get("truncation")
    if truncation not in (None, "auto", "disabled"):
        raise InvalidRequest("truncation must be 'auto' or 'disabled'", param="truncation")
    return chat


def _messages(instructions: Any, items: list[Item]) -> list[dict[str, Any]]:
    messages: list[dict[str, Any]] = []
    if instructions is not None:
        if not isinstance(instructions, str):
            raise InvalidRequest("instructions must be a string", param="instructions")
        messages.append({"role": "system", "content": instructions})
    for index, item in enumerate(items):
        kind = item.get("type", "message")
        where = f"input[{index}]"
        if kind == "message":
            messages.append(_message(item, where))
        elif kind == "function_call":
            call = {
                "id": _string(item, "call_id", where),
                "type": "function",
                "function": {
                    "name": _string(item, "name", where),
                    "arguments": _string(item, "arguments", where),
                },
            }
            last = messages[-1] if messages else None
            if last is not None and last["role"] == "assistant":
                last.setdefault("tool_calls", []).append(call)
            else:
                messages.append({"role": "assistant", "content": None, "tool_calls": [call]})
        elif kind == "function_call_output":
            output = item.get("output")
            if not isinstance(output, str | list):
                raise InvalidRequest(
                    f"{where}.output must be a string or an array of content parts",
                    param=f"{where}.output",
                )
            messages.append(
                {
                    "role": "tool",
                    "tool_call_id": _string(item, "call_id", where),
                    "content": _text_of(output),
                }
            )
        elif kind == "reasoning":
            continue  # reasoning is dropped when translated, as the request's own is
        else:
            raise _untranslatable(f"{where}.type", f"is {shown(kind)}, an item type")
    return messages


def _string(item: Item, key: str, where: str) -> str:
    value = item.get(key)
    if not isinstance(value, str):
        raise InvalidRequest(
            f"{where}.{key} must be a string, got {shown(value)}", param=f"{where}.{key}"
        )
    return value


def _message(item: Item, where: str) -> dict[str, Any]:
    role = item.get("role")
    if role not in _ROLES:
        raise InvalidRequest(
            f"{where}.role must be 'user', 'assistant', 'system' or 'developer', got {shown(role)}",
            param=f"{where}.role",
        )
    chat_role = _ROLES[role]
    content = item.get("content")
    if isinstance(content, str):
        return {"role": chat_role, "content": content}
    if not isinstance(content, list):
        raise InvalidRequest(
            f"{where}.content must be a string or an array of content parts",
            param=f"{where}.content",
        )
    parts: list[dict[str, Any]] = []
    texts: list[str] = []
    for number, part in enumerate(content):
        at = f"{where}.content[{number}]"
        kind = part.get("type") if isinstance(part, dict) else None
        if kind in ("input_text", "output_text", "text", "refusal"):
            text = part.get("refusal" if kind == "refusal" else "text")
            if not isinstance(text, str):
                raise InvalidRequest(f"{at}.text must be a string", param=f"{at}.text")
            texts.append(text)
            parts.append({"type": "text", "text": text})
        elif kind == "input_image":
            url = part.get("image_url")
            if not isinstance(url, str):
                raise _untranslatable(f"{at}.image_url", "is missing (a file_id image)")
            image: dict[str, Any] = {"url": url}
            if part.get("detail") is not None:
                image["detail"] = part["detail"]
            parts.append({"type": "image_url", "image_url": image})
        else:
            raise _untranslatable(f"{at}.type", f"is {shown(kind)}, a content part type")
    if len(texts) == len(parts):
        return {"role": chat_role, "content": "\n".join(texts)}
    return {"role": chat_role, "content": parts}


def _tools(tools: Any) -> list[dict[str, Any]]:
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be an array of tool objects", param="tools")
    translated: list[dict[str, Any]] = []
    for index, tool in enumerate(tools):
        kind = tool.get("type") if isinstance(tool, dict) else None
        if kind != "function":
            raise _untranslatable(
                f"tools[{index}].type",
                f"is {shown(kind)}: only function tools can be offered to a chat model",
            )
        name = tool.get("name")
        if not isinstance(name, str):
            raise InvalidRequest(
                f"tools[{index}].name must be a string", param=f"tools[{index}].name"
            )
        function = {
            key: tool[key]
            for key in ("name", "description", "parameters", "strict")
            if tool.get(key) is not None
        }
        translated.append({"type": "function", "function": function})
    return translated


def _tool_choice(choice: Any) -> Any:
    if isinstance(choice, str) and choice in _TOOL_CHOICE_WORDS:
        return choice
    if isinstance(choice, dict) and choice.get("type") == "function":
        name = choice.get("name")
        if isinstance(name, str):
            return {"type": "function", "function": {"name": name}}
    raise _untranslatable("tool_choice", f"is {shown(choice)}")


def _text(text: Any, chat: dict[str, Any]) -> None:
    if not isinstance(text, dict):
        raise InvalidRequest("text must be an object", param="text")
    for key, value in text.items():
        if key == "verbosity":
            if value is not None:
                chat["verbosity"] = value
        elif key != "format":
            raise _untranslatable(f"text.{key}", "has no chat-completions equivalent")
    form = text.get("format")
    if form is None:
        return
    kind = form.get("type") if isinstance(form, dict) else None
    if kind == "text":
        return
    if kind == "json_object":
        chat["response_format"] = {"type": "json_object"}
        return
    if kind == "json_schema":
        schema = {
            key: form[key]
            for key in ("name", "schema", "strict", "description")
            if form.get(key) is not None
        }
        chat["response_format"] = {"type": "json_schema", "json_schema": schema}
        return
    raise InvalidRequest(
        f"text.format.type must be 'text', 'json_object' or 'json_schema', got {shown(kind)}",
        param="text.format.type",
    )

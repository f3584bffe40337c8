"""Peek at Ollama API bodies (``/api/chat``, ``/api/generate``) and translate them.

Validated whatever the endpoint: ``model``, ``stream`` (``true`` unless ``false``, as in
Ollama), ``messages`` or ``prompt``, ``images``, ``tools``, ``format``, ``think`` and the types of
the ``options`` the router reads. The translated body is built at parse time; a field only the
translation cannot carry is kept as ``problem`` and raised by ``check_scope`` when the request
may reach an endpoint without ``native = ["ollama"]``, which gets the client's own body with
only ``model`` replaced instead.

Translated to a chat body: messages (``images`` as base64 ``image_url`` parts, ``tool_calls``
with object arguments as JSON strings, ``tool`` results matched to their call), ``tools``,
``format`` (``"json"`` or a JSON schema, as ``response_format``), ``think`` (``false`` or a
level, as ``reasoning_effort``), ``options`` (``OPTION_FIELDS``: the chat fields, the sampling
extras forwarded by name, the runner settings accepted and not forwarded). ``/api/generate``
becomes a chat body with ``system`` and ``prompt``, or, with ``raw`` or ``suffix``, a legacy
completions body that takes the prompt as written (no chat template). A request with no
messages (no prompt) only asks Ollama to load or, with ``keep_alive: 0``, unload the model:
``load`` says which, and the router answers it itself.

Keys Ollama's API does not have are ignored, as Ollama ignores them; keys it has that the
translation cannot carry (``template``, ``context``, ``logprobs``...) are refused by name.
"""

from __future__ import annotations

import binascii
import re
from typing import TYPE_CHECKING, Any, Final

import msgspec
import orjson

from octoroute.enums import Native
from octoroute.errors import InvalidRequest
from octoroute.wire.duplicates import check_duplicate_keys
from octoroute.wire.hints import RequestHints
from octoroute.wire.messages import Message, check_conversation
from octoroute.wire.native import NativeOrChat
from octoroute.wire.requests import decode_json_object, decode_json_values, read_model, shown

if TYPE_CHECKING:
    from octoroute.config.schema import EndpointConfig, LimitsConfig

__all__ = [
    "OPTION_FIELDS",
    "OllamaRequest",
    "parse_chat_request",
    "parse_generate_request",
    "read_stream",
]

Json = dict[str, Any]

CHAT_PATH: Final = "/api/chat"
GENERATE_PATH: Final = "/api/generate"

_CHAT_OPTIONS: Final = {
    "temperature": "temperature",
    "top_p": "top_p",
    "seed": "seed",
    "presence_penalty": "presence_penalty",
    "frequency_penalty": "frequency_penalty",
    "stop": "stop",
    "num_predict": "max_tokens",
}
"""Ollama options with a chat-completions field, and its name."""
_EXTRA_OPTIONS: Final = ("top_k", "min_p", "typical_p", "repeat_penalty", "repeat_last_n")
"""Sampling options chat has no field for: forwarded under their own name, which llama.cpp's
server reads (vLLM reads ``top_k`` and ``min_p``); a server that does not know one ignores it."""
_RUNNER_OPTIONS: Final = (
    "num_ctx",
    "num_batch",
    "num_gpu",
    "main_gpu",
    "use_mmap",
    "num_thread",
    "num_keep",
    "draft_num_predict",
)
"""How the server runs the model (context size, batching, GPUs, threads): its operator's
settings, accepted and not forwarded."""
OPTION_FIELDS: Final = {
    **_CHAT_OPTIONS,
    **{name: name for name in _EXTRA_OPTIONS},
    **dict.fromkeys(_RUNNER_OPTIONS),
}
"""Every option Ollama knows: the chat field it becomes, or ``None`` when it is not forwarded.
Any other key of ``options`` is ignored, as Ollama ignores it."""
_INTEGER_OPTIONS: Final = frozenset(
    {"seed", "num_predict", "top_k", "repeat_last_n", *_RUNNER_OPTIONS} - {"use_mmap"}
)

_THINK_LEVELS: Final = {"low": "low", "medium": "medium", "high": "high", "max": "xhigh"}
"""``think`` levels and the ``reasoning_effort`` each becomes (Ollama reads ``xhigh`` as
``max``)."""
_UNTRANSLATABLE: Final = {
    "template": "overrides the model's prompt template",
    "context": "continues from token ids of an earlier answer",
    "logprobs": "asks for log probabilities",
    "top_logprobs": "asks for log probabilities",
    "_debug_render_only": "asks for the rendered prompt template",
    "width": "is for image generation models",
    "height": "is for image generation models",
    "steps": "is for image generation models",
}
"""Ollama fields the translation cannot carry, and why, when set to anything but their default."""
_READ_KEYS: Final = frozenset({"model", "messages", "prompt", "system", "suffix", "stream"})
_PLAIN_ROLES: Final = frozenset({"system", "user"})
"""Roles whose two-key messages pass as they are (assistant and tool ones need a closer look)."""
_ZERO_DURATION: Final = re.compile(r"0+(\.0*)?(ns|us|µs|ms|s|m|h)?")
_IMAGE_MAGIC: Final = (
    (b"\x89PNG", "image/png"),
    (b"\xff\xd8\xff", "image/jpeg"),
    (b"GIF8", "image/gif"),
    (b"BM", "image/bmp"),
)


def read_stream(values: Json) -> bool:
    """``stream``: ``true`` unless ``false`` (Ollama streams by default; ``null`` is unset)."""
    stream = values.get("stream")
    if stream is None:
        return True
    if not isinstance(stream, bool):
        raise InvalidRequest(f"stream must be true or false, got {shown(stream)}", param="stream")
    return stream


class OllamaRequest(NativeOrChat):
    """A validated ``/api/chat`` or ``/api/generate`` request: routing's view, and the bodies
    for native and translated endpoints."""

    __slots__ = (
        "chat",
        "fields",
        "generate",
        "hints",
        "load",
        "messages",
        "model",
        "problem",
        "started_ns",
        "stream",
        "target",
    )
    dialect = Native.OLLAMA

    def __init__(
        self,
        *,
        model: str,
        stream: bool,
        fields: dict[str, msgspec.Raw],
        chat: Json,
        target: str,
        messages: list[Message],
        problem: InvalidRequest | None,
        generate: bool,
        load: str | None,
        started_ns: int,
    ) -> None:
        self.model = model
        self.stream = stream
        self.fields = fields
        self.chat = chat
        """The translated body without ``model``: chat, or legacy completions (``target``)."""
        self.target = target
        """Where a translated request goes: ``chat/completions`` or ``completions``."""
        self.messages = messages
        self.problem = problem
        """Why the request cannot be translated, if it cannot."""
        self.generate = generate
        """``/api/generate`` (answers carry ``response``) rather than ``/api/chat``."""
        self.load = load
        """``"load"`` or ``"unload"`` when the request asks nothing else; ``None`` otherwise."""
        self.started_ns = started_ns
        """When the request arrived (the caller's clock): Ollama's durations count from it."""
        limit = chat.get("max_tokens")
        self.hints = RequestHints(limit if isinstance(limit, int) else None, True, None)
        """``options.num_predict`` (when > 0), for placement's context check; the translation
        fills an endpoint's ``max_tokens`` in when the client set no limit. Ollama bodies carry
        no conversation key, so affinity comes from session headers or the conversation."""

    def path_for(self, endpoint: EndpointConfig) -> str:
        """Ollama's own path for a native endpoint, else the translation's target."""
        if Native.OLLAMA in endpoint.native:
            return GENERATE_PATH if self.generate else CHAT_PATH
        return self.target


def _decode(body: bytes) -> tuple[dict[str, msgspec.Raw], Json, str]:
    fields = decode_json_object(body)
    model = read_model(fields)
    # One C pass over the whole body: a call per field costs more than the fields' decoding.
    values: Json = decode_json_values(body)
    return fields, values, model


def parse_chat_request(body: bytes, limits: LimitsConfig, *, started_ns: int = 0) -> OllamaRequest:
    """Decode, validate and translate an ``/api/chat`` body.

    Raises ``InvalidRequest`` naming the field for anything invalid; what only the translation
    cannot carry is kept as the request's ``problem``.
    """
    fields, values, model = _decode(body)
    stream = read_stream(values)
    raw_messages = values.get("messages")
    if raw_messages is None:
        raw_messages = []
    if not isinstance(raw_messages, list):
        raise InvalidRequest("messages must be an array of messages", param="messages")
    problems: list[InvalidRequest] = []
    chat_messages = _messages(raw_messages, problems)
    messages = _routing_view(chat_messages)
    check_conversation(messages, limits, "messages")
    check_duplicate_keys(body, fields, _READ_KEYS)
    chat: Json = {"messages": chat_messages}
    _settings(values, chat, stream, problems)
    if values.get("tools") is not None:
        tools = _tools(values["tools"])
        if tools:  # the python client sends [] for none; servers may refuse an empty list
            chat["tools"] = tools
    return OllamaRequest(
        model=model,
        stream=stream,
        fields=fields,
        chat=chat,
        target="chat/completions",
        messages=messages,
        problem=problems[0] if problems else None,
        generate=False,
        load=_load(values) if not raw_messages else None,
        started_ns=started_ns,
    )


def parse_generate_request(
    body: bytes, limits: LimitsConfig, *, started_ns: int = 0
) -> OllamaRequest:
    """Decode, validate and translate an ``/api/generate`` body (see the module docstring).

    Raises ``InvalidRequest`` naming the field for anything invalid; what only the translation
    cannot carry is kept as the request's ``problem``.
    """
    fields, values, model = _decode(body)
    stream = read_stream(values)
    prompt = _string(values, "prompt")
    system = _string(values, "system")
    suffix = _string(values, "suffix")
    raw = values.get("raw")
    if raw is not None and not isinstance(raw, bool):
        raise InvalidRequest(f"raw must be true or false, got {shown(raw)}", param="raw")
    images = _images(values.get("images"), "images")
    problems: list[InvalidRequest] = []
    verbatim = raw is True or bool(suffix)
    routing = [Message(role="user", content=prompt)]
    if system and not raw:
        routing.insert(0, Message(role="system", content=system))
    check_conversation(routing, limits, "prompt")
    check_duplicate_keys(body, fields, _READ_KEYS, messages_key=None)
    chat: Json
    if verbatim:
        # The client wrote the whole prompt (raw), or asks for the text between a prefix and a
        # suffix: legacy completions take it as it is, where chat would wrap it in a template.
        chat = {"prompt": prompt}
        if suffix:
            chat["suffix"] = suffix
        why = "raw" if raw else "suffix"
        for key, present in (("system", bool(system)), ("images", bool(images))):
            if present:
                problems.append(_untranslatable(key, f"cannot be combined with {why}"))
        if values.get("format") not in (None, ""):
            problems.append(_untranslatable("format", f"cannot be combined with {why}"))
    else:
        content: str | list[Json] = prompt
        if images:
            content = [*images, {"type": "text", "text": prompt}]
        chat = {"messages": [{"role": "user", "content": content}]}
        if system:
            chat["messages"].insert(0, {"role": "system", "content": system})
    _settings(values, chat, stream, problems, completions=verbatim)
    return OllamaRequest(
        model=model,
        stream=stream,
        fields=fields,
        chat=chat,
        target="completions" if verbatim else "chat/completions",
        messages=routing,
        problem=problems[0] if problems else None,
        generate=True,
        load=_load(values) if not prompt and not images else None,
        started_ns=started_ns,
    )


def _untranslatable(param: str, why: str) -> InvalidRequest:
    return InvalidRequest(
        f'{param} {why}; the endpoint speaks the OpenAI API (not native = ["ollama"]), so the '
        "router translates the request and cannot carry it",
        param=param,
    )


def _string(values: Json, key: str) -> str:
    value = values.get(key)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidRequest(f"{key} must be a string, got {shown(value)}", param=key)
    return value


def _load(values: Json) -> str:
    """``unload`` for ``keep_alive: 0`` (any unit), else ``load``."""
    keep_alive = values.get("keep_alive")
    if keep_alive == 0 or (
        isinstance(keep_alive, str) and _ZERO_DURATION.fullmatch(keep_alive.strip())
    ):
        return "unload"
    return "load"


# --- settings shared by both endpoints ----------------------------------------------------


def _settings(
    values: Json,
    chat: Json,
    stream: bool,
    problems: list[InvalidRequest],
    *,
    completions: bool = False,
) -> None:
    """The fields ``/api/chat`` and ``/api/generate`` share, into ``chat``."""
    if stream:
        chat["stream"] = True
        chat["stream_options"] = {"include_usage": True}
    options = values.get("options")
    if options is not None:
        _options(options, chat)
    response_format = _format(values.get("format"))
    if response_format is not None and not completions:
        chat["response_format"] = response_format
    effort = _think(values.get("think"))
    if effort is not None and not completions:
        chat["reasoning_effort"] = effort
    check_keep_alive(values)
    for key in _UNTRANSLATABLE.keys() & values.keys():
        if values[key] not in (None, False, 0, "", []):
            problems.append(_untranslatable(key, _UNTRANSLATABLE[key]))


_INT64_MIN: Final = -(2**63)
_INT64_MAX: Final = 2**63 - 1
"""The integer options (``seed``, ``num_predict``, ``top_k``...) are 64-bit integers upstream."""


def check_keep_alive(values: Json) -> None:
    """``keep_alive``, which every route that runs a model takes, must be a duration: how long
    the server keeps the model loaded (a number of seconds or a string like ``"5m"``)."""
    keep_alive = values.get("keep_alive")
    if keep_alive is not None and (
        isinstance(keep_alive, bool) or not isinstance(keep_alive, int | float | str)
    ):
        raise InvalidRequest(
            f"keep_alive must be a duration (a number of seconds or a string like '5m'), got "
            f"{shown(keep_alive)}",
            param="keep_alive",
        )


def _options(options: Any, chat: Json) -> None:
    if not isinstance(options, dict):
        raise InvalidRequest(f"options must be an object, got {shown(options)}", param="options")
    for key, value in options.items():
        if key not in OPTION_FIELDS or value is None:
            continue
        field = OPTION_FIELDS[key]
        param = f"options.{key}"
        if key == "stop":
            if isinstance(value, str):
                value = [value]
            if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
                raise InvalidRequest(
                    f"{param} must be a string or an array of strings, got {shown(value)}",
                    param=param,
                )
        elif key == "use_mmap":
            if not isinstance(value, bool):
                raise InvalidRequest(f"{param} must be true or false", param=param)
        elif isinstance(value, bool) or not isinstance(value, int | float):
            raise InvalidRequest(f"{param} must be a number, got {shown(value)}", param=param)
        elif key in _INTEGER_OPTIONS:
            if not _INT64_MIN <= value <= _INT64_MAX:
                raise InvalidRequest(
                    f"{param} must be an integer that fits 64 bits, got {shown(value)}",
                    param=param,
                )
            value = int(value)
        if field is None:
            continue
        if key == "num_predict":
            # -1 (no limit) and -2 (fill the context): no limit of the client's own.
            if value > 0:
                chat["max_tokens"] = value
        elif key != "stop" or value:
            chat[field] = value


def _format(value: Any) -> Json | None:
    if value is None or value == "":
        return None
    if value == "json":
        return {"type": "json_object"}
    if isinstance(value, dict):
        return {"type": "json_schema", "json_schema": {"name": "response", "schema": value}}
    raise InvalidRequest(
        f'format must be "json" or a JSON schema object, got {shown(value)}', param="format"
    )


def _think(value: Any) -> str | None:
    if value is None or value is True:
        return None  # a thinking model thinks unless told not to
    if value is False:
        return "none"
    if isinstance(value, str) and value in _THINK_LEVELS:
        return _THINK_LEVELS[value]
    raise InvalidRequest(
        f'think must be true, false, "low", "medium", "high" or "max", got {shown(value)}',
        param="think",
    )


def _tools(tools: Any) -> list[Json]:
    if not isinstance(tools, list):
        raise InvalidRequest("tools must be an array of tools", param="tools")
    translated = []
    for index, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequest(
                f"tools[{index}] must be a function tool with a function.name string",
                param=f"tools[{index}]",
            )
        translated.append({**tool, "type": tool.get("type") or "function"})
    return translated


# --- messages -----------------------------------------------------------------------------


def _images(images: Any, where: str) -> list[Json]:
    """Ollama's base64 images as ``image_url`` parts with a data URL of their sniffed type."""
    if images is None:
        return []
    if not isinstance(images, list):
        raise InvalidRequest(f"{where} must be an array of base64 strings", param=where)
    parts = []
    for index, image in enumerate(images):
        at = f"{where}[{index}]"
        if isinstance(image, str) and image.startswith("data:"):
            url = image  # already a data URL: some clients send them so
        elif isinstance(image, str):
            url = f"data:{_image_type(image, at)};base64,{image}"
        else:
            raise InvalidRequest(f"{at} must be a base64 string, got {shown(image)}", param=at)
        parts.append({"type": "image_url", "image_url": {"url": url}})
    return parts


def _image_type(data: str, where: str) -> str:
    try:
        head = binascii.a2b_base64(data[:16].encode("ascii"), strict_mode=True)
    except (binascii.Error, UnicodeEncodeError):
        head = b""
    for magic, media_type in _IMAGE_MAGIC:
        if head.startswith(magic):
            return media_type
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "image/webp"
    raise InvalidRequest(f"{where} is not a base64 PNG, JPEG, GIF, WebP or BMP image", param=where)


def _messages(raw_messages: list[Any], problems: list[InvalidRequest]) -> list[Json]:
    """Ollama messages as chat messages; tool results get the id of the call they answer."""
    out: list[Json] = []
    unanswered: list[Json] = []
    """The calls of the latest assistant message no tool result has claimed yet."""
    for index, message in enumerate(raw_messages):
        where = f"messages[{index}]"
        if not isinstance(message, dict):
            raise InvalidRequest(f"{where} must be an object", param=where)
        role = message.get("role")
        content = message.get("content")
        if len(message) == 2 and isinstance(content, str) and role in _PLAIN_ROLES:
            # The common message, {"role", "content"} and nothing else: as it is.
            out.append({"role": role, "content": content})
            continue
        if not isinstance(role, str) or not role:
            raise InvalidRequest(
                f"{where}.role must be a non-empty string, got {shown(role)}",
                param=f"{where}.role",
            )
        role = role.lower()  # as Ollama reads it
        if content is None:
            content = ""
        if not isinstance(content, str):
            raise InvalidRequest(
                f"{where}.content must be a string, got {shown(content)}",
                param=f"{where}.content",
            )
        raw_images = message.get("images")
        images = [] if raw_images is None else _images(raw_images, f"{where}.images")
        if images and role != "user":
            problems.append(_untranslatable(f"{where}.images", f"in a {role} message"))
        calls = message.get("tool_calls")
        if calls and role != "assistant":
            problems.append(_untranslatable(f"{where}.tool_calls", f"in a {role} message"))
        if role == "assistant":
            translated: Json = {"role": "assistant", "content": content or None}
            if calls:
                unanswered = _calls(calls, f"{where}.tool_calls", index)
                translated["tool_calls"] = unanswered[:]
            elif not content:
                translated["content"] = ""
            out.append(translated)
        elif role == "tool":
            call_id = _answered(message, unanswered, index, where)
            out.append({"role": "tool", "tool_call_id": call_id, "content": content})
        elif images:
            out.append({"role": role, "content": [*images, {"type": "text", "text": content}]})
        else:
            out.append({"role": role, "content": content})
    return out


def _calls(calls: Any, where: str, position: int) -> list[Json]:
    if not isinstance(calls, list):
        raise InvalidRequest(f"{where} must be an array of tool calls", param=where)
    translated = []
    for index, call in enumerate(calls):
        at = f"{where}[{index}]"
        function = call.get("function") if isinstance(call, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise InvalidRequest(f"{at} needs a function with a name string", param=at)
        arguments = function.get("arguments")
        if arguments is None:
            arguments = {}
        if isinstance(arguments, dict):
            text = orjson.dumps(arguments).decode()
        elif isinstance(arguments, str):
            text = arguments
        else:
            raise InvalidRequest(
                f"{at}.function.arguments must be an object, got {shown(arguments)}",
                param=f"{at}.function.arguments",
            )
        call_id = call.get("id")
        translated.append(
            {
                # Ollama's clients often drop ids; chat needs one to pair the result with.
                "id": call_id
                if isinstance(call_id, str) and call_id
                else f"call_{position}_{index}",
                "type": "function",
                "function": {"name": function["name"], "arguments": text},
            }
        )
    return translated


def _answered(message: Json, unanswered: list[Json], index: int, where: str) -> str:
    """The id of the call a tool result answers: its ``tool_call_id``, else the first call not
    yet answered with its ``tool_name``, else the first call not yet answered."""
    call_id = message.get("tool_call_id")
    name = message.get("tool_name")
    for key, value in (("tool_call_id", call_id), ("tool_name", name)):
        if value is not None and not isinstance(value, str):
            raise InvalidRequest(f"{where}.{key} must be a string", param=f"{where}.{key}")
    chosen = next((c for c in unanswered if call_id and c["id"] == call_id), None)
    if chosen is None and not call_id:
        chosen = next((c for c in unanswered if c["function"]["name"] == name), None)
        if chosen is None:
            chosen = next(iter(unanswered), None)
    if chosen is not None:
        unanswered.remove(chosen)
        return str(chosen["id"])
    return call_id or f"call_{index}"


def _routing_view(chat_messages: list[Json]) -> list[Message]:
    messages = []
    for message in chat_messages:
        content = message.get("content")
        if isinstance(content, list):
            content = "\n".join(part["text"] for part in content if part["type"] == "text")
        messages.append(Message(role=message["role"], content=content or ""))
    if not messages:
        messages.append(Message(role="user", content=""))
    return messages

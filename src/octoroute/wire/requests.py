"""Peek at a ``/v1/chat/completions`` body, validate what we route on, and rebuild it for upstream.

The router must forward what it does not understand, so the body is never modelled as a whole:
the top-level object is decoded once into ``{key: msgspec.Raw}`` (a C pass that leaves each value
as the client's own bytes), then only the fields we route or validate on are decoded, each with a
typed decoder built at import. A bad field is therefore reported with its exact ``param``.

The upstream body is the same object rebuilt from those raw values in their original order; only
``model`` is replaced and absent defaults (``max_tokens``, ``temperature``) are filled in. Every
other byte of every value reaches the model server as the client sent it.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, Final

import msgspec
import orjson

from octoroute.errors import InvalidRequest
from octoroute.wire.compat import apply_compat
from octoroute.wire.duplicates import check_duplicate_keys
from octoroute.wire.hints import RequestHints, optional_int, optional_str
from octoroute.wire.messages import Message

if TYPE_CHECKING:
    from octoroute.config.schema import EndpointConfig, LimitsConfig

__all__ = [
    "ChatRequest",
    "chat_hints",
    "check_sampling",
    "decode_json_object",
    "parse_chat_request",
    "read_model",
    "read_stream",
    "rebuild_with_model",
    "render_upstream_body",
    "shown",
    "shown_value",
]


class ChatRequest(msgspec.Struct, frozen=True, kw_only=True):
    """A validated chat-completions request: what routing needs, plus the body's raw fields.

    Immutable in spirit: ``fields`` and ``messages`` are shared with every upstream attempt and
    must not be mutated.
    """

    model: str
    """``model`` exactly as sent (case and spaces kept); tier matching lowercases it itself."""
    stream: bool
    """``stream``; a JSON ``null`` counts as ``false``."""
    messages: list[Message]
    """The conversation as routing sees it (role and text only)."""
    fields: dict[str, msgspec.Raw]
    """Every top-level field, raw, in the order sent (a repeated key the router does not read
    keeps its last value; one it reads is refused)."""
    content_chars: int
    """Total code points of message text: the sum of ``len(message.text())``."""
    sets_max_tokens: bool
    """The client sent a non-null ``max_tokens`` or ``max_completion_tokens``."""
    sets_temperature: bool
    """The client sent a non-null ``temperature``."""
    hints: RequestHints = RequestHints(fills_default=True)
    """The output limit and conversation key placement reads."""

    def path_for(self, endpoint: EndpointConfig) -> str:
        """Where under any endpoint's ``base_url`` this request goes."""
        return "chat/completions"

    def body_for(self, endpoint: EndpointConfig) -> bytes:
        """The body for ``endpoint``: its model name and, where the client set none, its
        configured ``max_tokens`` and ``temperature``."""
        return render_upstream_body(
            self,
            model=endpoint.name,
            default_max_tokens=endpoint.max_tokens,
            default_temperature=endpoint.temperature,
            fields=apply_compat(self.fields, endpoint.compat) if endpoint.compat else None,
        )


_TOP_LEVEL: Final = msgspec.json.Decoder(dict[str, msgspec.Raw])
_STRING: Final = msgspec.json.Decoder(str)
_MESSAGES: Final = msgspec.json.Decoder(list[Message])
_OPTIONAL_BOOL: Final = msgspec.json.Decoder(bool | None)
# float accepts JSON integers but not booleans or strings; out-of-range literals such as 1e309
# fail here ("Number out of range") and JSON has no NaN/Infinity, so floats are always finite.
_OPTIONAL_FLOAT: Final = msgspec.json.Decoder(float | None)
# int rejects 1.0 and 1e3 as well as booleans: a token count is an integer literal.
_OPTIONAL_INT: Final = msgspec.json.Decoder(int | None)

_BYTE_POSITION: Final = re.compile(r"\s*\(byte (\d+)\)$")
_VALIDATION_PATH: Final = re.compile(r"^(.*?)(?: - at `\$(.*)`)?$", re.DOTALL)
_GOT_KIND: Final = re.compile(r"got `([a-z]+)`")
_KIND_NAMES: Final = {
    "int": "a number",
    "float": "a number",
    "str": "a string",
    "bool": "a boolean",
    "null": "null",
    "array": "an array",
    "object": "an object",
}
_MAX_SHOWN_CHARS: Final = 40
_READ_KEYS: Final = frozenset(
    {
        "model",
        "messages",
        "stream",
        "temperature",
        "top_p",
        "presence_penalty",
        "frequency_penalty",
        "max_tokens",
        "max_completion_tokens",
    }
)
"""The top-level keys ``parse_chat_request`` reads: each must appear once (``wire.duplicates``)."""

# (field, lower bound, lower bound excluded, upper bound, the allowed range in words)
_FLOAT_BOUNDS: Final = (
    ("temperature", 0.0, False, 2.0, "between 0 and 2"),
    ("top_p", 0.0, True, 1.0, "greater than 0 and at most 1"),
    ("presence_penalty", -2.0, False, 2.0, "between -2 and 2"),
    ("frequency_penalty", -2.0, False, 2.0, "between -2 and 2"),
)


def decode_json_object(body: bytes) -> dict[str, msgspec.Raw]:
    """The body's top-level JSON object as ``{key: raw value bytes}``, in the order sent.

    Raises ``InvalidRequest`` (no ``param``) for invalid UTF-8, invalid JSON, nesting deeper than
    msgspec can follow, or a top-level value that is not an object, with a message that says where
    the body went wrong.
    """
    # msgspec checks UTF-8 only in the strings it decodes, not in the values it keeps raw, and
    # those raw values are forwarded: check the whole body, at C speed for plain ASCII.
    if not body.isascii():
        try:
            body.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidRequest(
                f"Request body is not valid UTF-8: {exc.reason} (at byte {exc.start}); "
                "send JSON encoded as UTF-8"
            ) from None
    try:
        return _TOP_LEVEL.decode(body)
    except msgspec.ValidationError:
        raise InvalidRequest(
            f"Request body must be a JSON object, got {_json_kind(body)}"
        ) from None
    except msgspec.DecodeError as exc:
        raise InvalidRequest(_malformed_json_message(body, str(exc))) from None
    except RecursionError:
        raise InvalidRequest("Request body is nested too deeply to be decoded") from None


def decode_json_values(body: bytes) -> Any:
    """The whole body decoded to Python values, for the dialects that translate it (Anthropic,
    Ollama, Responses); call after :func:`decode_json_object`, which has checked its syntax.

    Raises ``InvalidRequest`` for what that check lets through but no translation can carry:
    a number beyond a 64-bit float (``1e400``), anywhere in the body."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidRequest(
            f"Request body holds a number too large to decode ({exc}); numbers must fit a "
            "64-bit floating-point value"
        ) from None


def parse_chat_request(body: bytes, limits: LimitsConfig) -> ChatRequest:
    """Decode and validate a chat-completions body; everything not validated is kept raw.

    Validated: ``model`` (a non-blank string), ``messages`` (1 to ``limits.max_messages`` objects
    with a string ``role`` and a string, null or content-part-array ``content``, at most
    ``limits.max_content_chars`` code points of text in total), ``stream`` (boolean; ``null`` is
    taken as ``false`` because it means "not set" everywhere else in the API), ``temperature``
    [0, 2], ``top_p`` (0, 1], ``presence_penalty`` and ``frequency_penalty`` [-2, 2],
    ``max_tokens`` and ``max_completion_tokens`` (integers >= 1). Each numeric field may be
    ``null``. None of those keys, no key of a message and no key of a content part may appear
    twice in its object (``wire.duplicates``). Roles are not checked against a list (``developer``, ``tool`` and ``function`` are
    all real) and empty content is allowed: the model server is the judge of those.

    Raises ``InvalidRequest`` whose ``param`` names the field (``messages[3].content``) and whose
    message says what is allowed and what was sent.
    """
    fields = decode_json_object(body)
    get = fields.get

    model = read_model(fields)

    raw = get("messages")
    if raw is None:
        raise InvalidRequest("messages is required", param="messages")
    try:
        messages = _MESSAGES.decode(raw)
    except msgspec.ValidationError as exc:
        param, problem = _message_error(str(exc))
        raise InvalidRequest(problem, param=param) from None
    except RecursionError:
        raise InvalidRequest("messages is nested too deeply", param="messages") from None
    count = len(messages)
    if count == 0:
        raise InvalidRequest("messages must contain at least one message", param="messages")
    if count > limits.max_messages:
        raise InvalidRequest(
            f"messages has {count} messages, more than the limit of {limits.max_messages} "
            "(configurable as [limits].max_messages)",
            param="messages",
        )
    content_chars = 0
    for message in messages:
        content = message.content
        if isinstance(content, str):
            content_chars += len(content)
        elif content is not None:
            content_chars += len(message.text())
    if content_chars > limits.max_content_chars:
        raise InvalidRequest(
            f"messages contain {content_chars} characters of text in total, more than the limit "
            f"of {limits.max_content_chars} (configurable as [limits].max_content_chars)",
            param="messages",
        )

    stream = read_stream(fields)
    sets_temperature, sets_max_tokens = check_sampling(fields)

    check_duplicate_keys(body, fields, _READ_KEYS)
    return ChatRequest(
        model=model,
        stream=stream,
        messages=messages,
        fields=fields,
        content_chars=content_chars,
        sets_max_tokens=sets_max_tokens,
        sets_temperature=sets_temperature,
        hints=chat_hints(fields, fills_default=True),
    )


def chat_hints(fields: dict[str, msgspec.Raw], *, fills_default: bool) -> RequestHints:
    """Placement's view of a chat-like body: ``max_completion_tokens`` (else ``max_tokens``,
    as vLLM reads them) and ``prompt_cache_key`` (else ``user``)."""
    get = fields.get
    limit = optional_int(get("max_completion_tokens"))
    if limit is None:
        limit = optional_int(get("max_tokens"))
    key = optional_str(get("prompt_cache_key")) or optional_str(get("user"))
    return RequestHints(limit, fills_default, key)


def read_model(fields: dict[str, msgspec.Raw]) -> str:
    """``model``: required, a non-blank string, returned exactly as sent."""
    raw = fields.get("model")
    if raw is None:
        raise InvalidRequest("model is required", param="model")
    try:
        model = _STRING.decode(raw)
    except msgspec.ValidationError:
        model = ""
    if not model.strip():
        raise InvalidRequest(
            f"model must be a non-empty string, got {shown_value(raw)}", param="model"
        )
    return model


def read_stream(fields: dict[str, msgspec.Raw]) -> bool:
    """``stream``: a boolean; ``null`` is taken as ``false`` ("not set" everywhere in the API)."""
    raw = fields.get("stream")
    if raw is None:
        return False
    try:
        return _OPTIONAL_BOOL.decode(raw) or False
    except msgspec.ValidationError:
        raise InvalidRequest(
            f"stream must be true or false, got {shown_value(raw)}", param="stream"
        ) from None


def check_sampling(fields: dict[str, msgspec.Raw]) -> tuple[bool, bool]:
    """Check the sampling numbers both text APIs share: ``temperature`` [0, 2], ``top_p``
    (0, 1], the penalties [-2, 2], ``max_tokens``/``max_completion_tokens`` >= 1 (each may be
    ``null``). Returns whether the client set ``temperature`` and a token limit."""
    get = fields.get
    sets_temperature = False
    for name, low, low_excluded, high, allowed in _FLOAT_BOUNDS:
        raw = get(name)
        if raw is None:
            continue
        try:
            number = _OPTIONAL_FLOAT.decode(raw)
        except msgspec.ValidationError:
            raise InvalidRequest(
                f"{name} must be a number {allowed} (or null), got {shown_value(raw)}", param=name
            ) from None
        if number is None:
            continue
        # Written so that the comparison is False for anything out of range, NaN included.
        if not (low < number <= high if low_excluded else low <= number <= high):
            raise InvalidRequest(f"{name} must be {allowed}, got {shown_value(raw)}", param=name)
        if name == "temperature":
            sets_temperature = True

    sets_max_tokens = False
    for name in ("max_tokens", "max_completion_tokens"):
        raw = get(name)
        if raw is None:
            continue
        try:
            tokens = _OPTIONAL_INT.decode(raw)
        except msgspec.ValidationError:
            tokens = 0
        if tokens is None:
            continue
        if tokens < 1:
            raise InvalidRequest(
                f"{name} must be an integer >= 1 (or null), got {shown_value(raw)}", param=name
            )
        sets_max_tokens = True

    return sets_temperature, sets_max_tokens


def _encode_key(key: str) -> bytes:
    return b"," + msgspec.json.encode(key) + b":"


# Each key as it is written after a value (',"key":'), for the fields clients actually send; any
# other key is encoded per request. The leading comma is dropped from the first key.
_KEY_BYTES: Final[dict[str, bytes]] = {
    key: _encode_key(key)
    for key in (
        "model",
        "messages",
        "stream",
        "stream_options",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "presence_penalty",
        "frequency_penalty",
        "tools",
        "tool_choice",
        "parallel_tool_calls",
        "functions",
        "function_call",
        "response_format",
        "stop",
        "seed",
        "n",
        "logprobs",
        "top_logprobs",
        "logit_bias",
        "user",
        "metadata",
        "store",
        "reasoning_effort",
        "modalities",
        "audio",
        "prediction",
        "service_tier",
        "top_k",
        "min_p",
        "repetition_penalty",
        "chat_template_kwargs",
        "options",
        "keep_alive",
    )
}
_MAX_TOKENS_KEY: Final = _KEY_BYTES["max_tokens"]
_TEMPERATURE_KEY: Final = _KEY_BYTES["temperature"]


def render_upstream_body(
    request: ChatRequest,
    *,
    model: str,
    default_max_tokens: int | None,
    default_temperature: float | None,
    fields: dict[str, msgspec.Raw] | None = None,
) -> bytes:
    """The request body for the upstream: the client's object with ``model`` set to ``model``.

    ``fields`` replaces the request's own raw fields (an endpoint's ``compat`` rewrites).

    Every value keeps the client's exact bytes and every key its place; keys are re-encoded (so
    ``"\\u006dodel"`` becomes ``"model"``) and insignificant whitespace between fields is dropped.
    ``default_max_tokens`` is used only when the client set neither ``max_tokens`` nor
    ``max_completion_tokens``, ``default_temperature`` only when it set no ``temperature``: a
    ``null`` the client sent is replaced where it stands, an absent field is appended.
    """
    add_max_tokens = default_max_tokens is not None and not request.sets_max_tokens
    add_temperature = default_temperature is not None and not request.sets_temperature
    keys = _KEY_BYTES
    parts: list[bytes | msgspec.Raw] = [b"{"]
    append = parts.append
    for key, value in (request.fields if fields is None else fields).items():
        append(keys.get(key) or _encode_key(key))
        if key == "model":
            append(msgspec.json.encode(model))
        elif key == "max_tokens" and add_max_tokens:
            append(msgspec.json.encode(default_max_tokens))
            add_max_tokens = False
        elif key == "temperature" and add_temperature:
            append(msgspec.json.encode(default_temperature))
            add_temperature = False
        else:
            append(value)
    if add_max_tokens:
        append(_MAX_TOKENS_KEY)
        append(msgspec.json.encode(default_max_tokens))
    if add_temperature:
        append(_TEMPERATURE_KEY)
        append(msgspec.json.encode(default_temperature))
    # fields always holds "model", so parts[1] is a key: drop its leading comma.
    parts[1] = parts[1][1:]
    append(b"}")
    return b"".join(parts)


def rebuild_with_model(fields: dict[str, msgspec.Raw], model: str) -> bytes:
    """The client's object rebuilt from its raw values with only ``model`` replaced: the body of
    every dialect forwarded without defaults (completions, embeddings)."""
    keys = _KEY_BYTES
    parts: list[bytes | msgspec.Raw] = [b"{"]
    append = parts.append
    for key, value in fields.items():
        append(keys.get(key) or _encode_key(key))
        append(msgspec.json.encode(model) if key == "model" else value)
    parts[1] = parts[1][1:]
    append(b"}")
    return b"".join(parts)


# Error messages: only on the failure path, so clarity over speed from here on.


def _json_kind(raw: bytes | msgspec.Raw) -> str:
    """The JSON type of a value, in words, judged from its first byte."""
    first = bytes(raw).lstrip()[:1]
    return {
        b"{": "an object",
        b"[": "an array",
        b'"': "a string",
        b"t": "a boolean",
        b"f": "a boolean",
        b"n": "null",
    }.get(first, "a number")


def shown_value(raw: msgspec.Raw) -> str:
    """A raw value as the client wrote it, cut to 40 characters, for an error message."""
    text = bytes(raw).decode("utf-8", "replace")
    if len(text) > _MAX_SHOWN_CHARS:
        text = text[: _MAX_SHOWN_CHARS - 3] + "..."
    return text


def shown(value: Any) -> str:
    """``shown_value`` for a decoded value: a short JSON rendering for an error message."""
    return shown_value(msgspec.Raw(orjson.dumps(value)))


def _malformed_json_message(body: bytes, error: str) -> str:
    """msgspec's syntax error, reworded, with the byte offset also given as line and column."""
    if not body.strip():
        return "Request body is empty; send a JSON object"
    match = _BYTE_POSITION.search(error)
    if match is None:
        if error == "Input data was truncated":
            detail = "the body ends before the JSON value is complete"
            if b"\\ud" in body.lower():
                detail += " (or it contains a \\u escape of an unpaired UTF-16 surrogate)"
            return f"Request body is not valid JSON: {detail}"
        return f"Request body is not valid JSON: {error}"
    position = int(match.group(1))
    detail = error[: match.start()].removeprefix("JSON is malformed: ")
    line = body.count(b"\n", 0, position) + 1
    column = position - (body.rfind(b"\n", 0, position) + 1) + 1
    return (
        f"Request body is not valid JSON: {detail} "
        f"(at byte {position}, line {line} column {column})"
    )


def _message_error(error: str) -> tuple[str, str]:
    """``(param, message)`` for a msgspec validation error inside ``messages``.

    msgspec reports ``Expected `str`, got `int` - at `$[3].role``; the path becomes the param
    (``messages[3].role``) and the message says what the field must be.
    """
    match = _VALIDATION_PATH.match(error)
    detail, path = (match.group(1), match.group(2) or "") if match else (error, "")
    if detail.startswith("Object missing required field `role`"):
        param = f"messages{path}.role"
        return param, f"{param} is required: every message needs a string role"
    param = f"messages{path}"
    got = _GOT_KIND.search(detail)
    if got is None:
        return param, f"{param}: {detail}"
    sent = _KIND_NAMES.get(got.group(1), got.group(1))
    if not path:
        expected = "an array of message objects"
    elif path.endswith("].content"):
        expected = "a string, an array of content parts, or null"
    elif path.endswith("]") and "].content[" in path:
        expected = "a content-part object"
    elif path.endswith("]"):
        expected = "a message object with a string role"
    elif path.endswith((".role", ".type")):
        expected = "a string"
    elif path.endswith(".text"):
        expected = "a string or null"
    else:
        return param, f"{param}: {detail}"
    return param, f"{param} must be {expected}, got {sent}"

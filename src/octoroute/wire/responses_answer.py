"""Chat-completions answers as the Responses API: a ``response`` object, or its typed events.

``response_from_chat`` turns a buffered ``chat.completion`` into a ``response`` object;
``ResponsesStream`` turns a chat stream, chunk by chunk, into the events OpenAI sends
(``response.created``, ``response.in_progress``, per output item ``output_item.added`` ...
``output_item.done``, then ``response.completed``, ``response.incomplete`` when cut by
``max_output_tokens``, or ``response.failed``), each framed with its ``event:`` line and a
``sequence_number``. ``NativeStream`` relays a native server's own events unchanged and only
remembers the final response. Both report the finished response through ``on_done`` so the
router can keep it for ``previous_response_id``. Pure: ids come from ``secrets``, the time from
the request.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Final

import orjson

from octoroute.errors import BadUpstreamResponse
from octoroute.wire import sse

if TYPE_CHECKING:
    from octoroute.errors import UpstreamError
    from octoroute.wire.responses import ResponsesRequest

__all__ = ["NativeStream", "ResponsesStream", "response_from_chat", "usage_of"]

Item = dict[str, Any]
OnDone = Callable[[dict[str, Any]], None]
"""Told the finished ``response`` object of a stream that ended well."""

_INCOMPLETE: Final = {"length": "max_output_tokens", "content_filter": "content_filter"}
"""Chat ``finish_reason`` values that leave a response ``incomplete``, with the reason."""


def _id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(24)}"


def usage_of(usage: Any) -> dict[str, Any] | None:
    """A chat ``usage`` object in the Responses shape, or ``None`` when there is none."""
    if not isinstance(usage, dict):
        return None
    prompt = usage.get("prompt_tokens")
    completion = usage.get("completion_tokens")
    if not isinstance(prompt, int) or not isinstance(completion, int):
        return None
    total = usage.get("total_tokens")
    details = usage.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return {
        "input_tokens": prompt,
        "input_tokens_details": {
            "cached_tokens": cached if isinstance(cached, int) else 0,
            "cache_write_tokens": 0,
        },
        "output_tokens": completion,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": total if isinstance(total, int) else prompt + completion,
    }


def _response(
    request: ResponsesRequest,
    response_id: str,
    status: str,
    output: list[Item],
    usage: dict[str, Any] | None,
    finish_reason: str | None = None,
) -> dict[str, Any]:
    reason = _INCOMPLETE.get(finish_reason or "")
    return {
        "id": response_id,
        "object": "response",
        "created_at": request.created_at,
        "status": status,
        "error": None,
        "incomplete_details": {"reason": reason} if status == "incomplete" else None,
        "model": request.model,
        "output": output,
        "usage": usage,
        **request.echo,
    }


def _message_item(parts: list[Item], status: str, item_id: str | None = None) -> Item:
    return {
        "id": item_id or _id("msg"),
        "type": "message",
        "status": status,
        "role": "assistant",
        "content": parts,
    }


def _text_part(text: str) -> Item:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _refusal_part(refusal: str) -> Item:
    return {"type": "refusal", "refusal": refusal}


def _part(kind: str, text: str) -> Item:
    """A message's content part of ``kind`` (``output_text`` or ``refusal``)."""
    return _refusal_part(text) if kind == "refusal" else _text_part(text)


def _call_item(call_id: str, name: str, arguments: str, status: str, item_id: str) -> Item:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
    }


def response_from_chat(answer: Any, request: ResponsesRequest) -> dict[str, Any]:
    """The ``response`` object for a decoded ``chat.completion`` (its first choice).

    Raises ``ValueError`` when ``answer`` is not a chat completion with a choice.
    """
    choice, message = sse.first_message(answer)
    finish_reason = choice.get("finish_reason")
    status = "incomplete" if finish_reason in _INCOMPLETE else "completed"
    output: list[Item] = []
    parts: list[Item] = []
    content = message.get("content")
    if isinstance(content, str) and content:
        parts.append(_text_part(content))
    refusal = sse.refusal_of(message)
    if refusal:
        parts.append(_refusal_part(refusal))
    if parts:
        output.append(_message_item(parts, status))
    for call in message.get("tool_calls") or []:
        function = call.get("function") or {}
        output.append(
            _call_item(
                call.get("id") or _id("call"),
                function.get("name") or "",
                function.get("arguments") or "",
                "completed",
                _id("fc"),
            )
        )
    return _response(
        request, _id("resp"), status, output, usage_of(answer.get("usage")), finish_reason
    )


def _event(kind: str, sequence: int, fields: dict[str, Any]) -> bytes:
    data = orjson.dumps({"type": kind, "sequence_number": sequence, **fields})
    return b"event: " + kind.encode("ascii") + b"\ndata: " + data + b"\n\n"


class _Call:
    __slots__ = ("arguments", "call_id", "index", "item_id", "name")

    def __init__(self, index: int, call_id: str, name: str) -> None:
        self.index = index
        self.item_id = _id("fc")
        self.call_id = call_id
        self.name = name
        self.arguments: list[str] = []


class _Message:
    """The open ``message`` item: its id, output index, and content parts so far, each
    ``[kind, pieces]`` (``output_text`` or ``refusal``); the last one is open."""

    __slots__ = ("index", "item_id", "parts")

    def __init__(self, index: int) -> None:
        self.index = index
        self.item_id = _id("msg")
        self.parts: list[tuple[str, list[str]]] = []


def _open_part(message: _Message) -> dict[str, Any]:
    """Where the message's last (open) content part is, as its events name it."""
    return {
        "item_id": message.item_id,
        "output_index": message.index,
        "content_index": len(message.parts) - 1,
    }


class ResponsesStream:
    """A ``StreamTranslator`` from a chat-completions stream to Responses events (one per
    attempt: it holds the state of the answer being built)."""

    def __init__(self, request: ResponsesRequest, on_done: OnDone | None = None) -> None:
        self._request = request
        self._on_done = on_done
        self._id = _id("resp")
        self._sequence = 0
        self._out: list[bytes] = []
        self._output: list[Item | None] = []
        """Finished items by output index; ``None`` for one still open."""
        self._message: _Message | None = None
        self._calls: dict[object, _Call] = {}
        """Open function calls by ``sse.ToolCalls`` key."""
        self._keys = sse.ToolCalls()
        self._live: object = None
        """The key of the open call whose events are written as its fragments come; the
        other open calls are held until it is closed (see :meth:`_call_delta`)."""
        self._done_calls: dict[object, _Call] = {}
        """Calls already closed, by key: late fragments still complete their arguments."""
        self._ended = False
        """A ``finish_reason`` or ``[DONE]`` came: the stream may close as finished."""
        self._finish_reason: str | None = None
        self._usage: dict[str, Any] | None = None
        self._error: str | None = None
        self._opened = False

    def _emit(self, kind: str, **fields: Any) -> None:
        self._out.append(_event(kind, self._sequence, fields))
        self._sequence += 1

    def _take(self) -> bytes:
        out = b"".join(self._out)
        self._out.clear()
        return out

    def _snapshot(self, status: str, output: list[Item]) -> dict[str, Any]:
        return _response(self._request, self._id, status, output, self._usage, self._finish_reason)

    # --- the StreamTranslator protocol --------------------------------------------------------

    def _open(self) -> None:
        if not self._opened:
            self._opened = True
            snapshot = self._snapshot("in_progress", [])
            self._emit("response.created", response=snapshot)
            self._emit("response.in_progress", response=snapshot)

    media_type = "text/event-stream"

    def keepalive(self) -> bytes:
        """An SSE comment: the Responses stream has no ping event of its own."""
        return sse.KEEPALIVE_EVENT

    def opening(self) -> bytes:
        """``response.created`` and ``response.in_progress``, unless the first translated
        events (which the relay reads before it writes this) already began with them."""
        self._open()
        return self._take()

    def translate(self, events: list[bytes]) -> bytes:
        """The Responses events for these chat chunks (comments and ``[DONE]`` give none);
        the first call opens the response, so sequence numbers follow the order written."""
        self._open()
        for chunk in sse.chat_chunks(events):
            self._chunk(chunk)
        if events and sse.is_done(events[-1]):
            self._ended = True
        return self._take()

    def closing(self) -> bytes:
        """Every open item done, then ``response.completed`` (``incomplete`` when cut).

        Raises ``UpstreamProtocolError`` (``sse.cut_short``) when the upstream's stream ended
        without saying the answer was complete: the relay then ends it with ``response.failed``.
        """
        if self._error is not None:
            return self._fail("server_error", self._error)
        if not self._ended:
            raise sse.cut_short()
        self._open()
        incomplete = self._finish_reason in _INCOMPLETE
        self._close_all("incomplete" if incomplete else "completed")
        status = "incomplete" if incomplete else "completed"
        response = self._snapshot(status, [item for item in self._output if item is not None])
        self._emit(f"response.{status}", response=response)
        if self._on_done is not None:
            self._on_done(response)
        return self._take()

    def failed(self, error: UpstreamError) -> bytes:
        """``response.failed`` carrying the error, after a mid-stream upstream failure (as
        ``server_error``: the Responses API's codes are a closed list)."""
        return self._fail("server_error", error.message)

    def whole(self, answer: bytes) -> bytes:
        """The whole event stream for a chat answer that came as one JSON body."""
        opening = self.opening()
        self._chunk(sse.whole_chunk(answer))
        self._ended = True  # a whole body is a whole answer, finish_reason or not
        return opening + self._take() + self.closing()

    # --- the state machine ----------------------------------------------------------------------

    def _fail(self, code: str, message: str) -> bytes:
        self._open()
        self._close_all("incomplete")
        response = self._snapshot("failed", [item for item in self._output if item is not None])
        response["error"] = {"code": code, "message": message}
        self._emit("response.failed", response=response)
        return self._take()

    def _chunk(self, chunk: dict[str, Any]) -> None:
        error = sse.chunk_error(chunk)
        if error is not None:
            self._error = error
            return
        usage = usage_of(chunk.get("usage"))
        if usage is not None:
            self._usage = usage
        parts = sse.chunk_delta(chunk)
        if parts is None:
            return
        choice, text, calls = parts
        if text:
            self._message_delta("output_text", text)
        refusal = sse.refusal_of(choice.get("delta"))
        if refusal:
            self._message_delta("refusal", refusal)
        for call in calls:
            self._call_delta(call)
        if choice.get("finish_reason") is not None:
            self._finish_reason = choice["finish_reason"]
            self._ended = True

    def _message_delta(self, kind: str, piece: str) -> None:
        """A piece of the answer's text (``output_text``) or of the model's refusal
        (``refusal``): one ``message`` item holds both, each run of one kind its own part."""
        if self._calls:
            self._close_calls("completed")
        message = self._message
        if message is None:
            message = self._message = _Message(len(self._output))
            self._output.append(None)
            item = _message_item([], "in_progress", message.item_id)
            self._emit("response.output_item.added", output_index=message.index, item=item)
        if not message.parts or message.parts[-1][0] != kind:
            self._close_part(message)
            message.parts.append((kind, []))
            self._emit("response.content_part.added", **_open_part(message), part=_part(kind, ""))
        message.parts[-1][1].append(piece)
        where = _open_part(message)
        if kind == "refusal":
            self._emit("response.refusal.delta", **where, delta=piece)
        else:
            self._emit("response.output_text.delta", **where, delta=piece, logprobs=[])

    def _close_part(self, message: _Message) -> None:
        """The ``done`` events of the message's open part, if it has one."""
        if not message.parts:
            return
        kind, pieces = message.parts[-1]
        text = "".join(pieces)
        where = _open_part(message)
        if kind == "refusal":
            self._emit("response.refusal.done", **where, refusal=text)
        else:
            self._emit("response.output_text.done", **where, text=text, logprobs=[])
        self._emit("response.content_part.done", **where, part=_part(kind, text))

    def _call_delta(self, delta: dict[str, Any]) -> None:
        """One tool-call fragment. Items are written one after another, as Responses clients
        expect, and a call's ``done`` events must carry its whole arguments; an upstream may
        interleave the fragments of parallel calls, so while calls come, only the first is
        written as its fragments arrive and the others are held whole until the calls end (a
        text or refusal delta, or the end of the answer). A fragment for a call already closed still
        reaches that call's final arguments."""
        index = self._keys.key(delta)
        function = delta.get("function") or {}
        fragment = function.get("arguments")
        done = self._done_calls.get(index)
        if done is not None:
            if isinstance(fragment, str) and fragment:
                done.arguments.append(fragment)
                self._output[done.index] = _call_item(
                    done.call_id, done.name, "".join(done.arguments), "completed", done.item_id
                )
            return
        call = self._calls.get(index)
        if call is None:
            self._close_message("completed")
            call = _Call(len(self._output), delta.get("id") or _id("call"), "")
            self._calls[index] = call
            self._output.append(None)
            call.name = function.get("name") or ""
            if self._live is None:
                self._live = index
                self._call_added(call)
        elif not call.name and function.get("name"):
            call.name = function["name"]
        if isinstance(fragment, str) and fragment:
            call.arguments.append(fragment)
            if index == self._live:
                self._call_arguments(call, fragment)

    def _call_added(self, call: _Call) -> None:
        item = _call_item(call.call_id, call.name, "", "in_progress", call.item_id)
        self._emit("response.output_item.added", output_index=call.index, item=item)

    def _call_arguments(self, call: _Call, fragment: str) -> None:
        self._emit(
            "response.function_call_arguments.delta",
            item_id=call.item_id,
            output_index=call.index,
            delta=fragment,
        )

    def _close_message(self, status: str) -> None:
        message = self._message
        if message is None:
            return
        self._close_part(message)
        parts = [_part(kind, "".join(pieces)) for kind, pieces in message.parts]
        item = _message_item(parts, status, message.item_id)
        self._output[message.index] = item
        self._emit("response.output_item.done", output_index=message.index, item=item)
        self._message = None

    def _close_calls(self, status: str) -> None:
        """Close the live call, then write each held call whole, in the order they came."""
        for key, call in sorted(self._calls.items(), key=lambda entry: entry[1].index):
            arguments = "".join(call.arguments)
            if key != self._live:
                self._call_added(call)
                if arguments:
                    self._call_arguments(call, arguments)
            self._emit(
                "response.function_call_arguments.done",
                item_id=call.item_id,
                output_index=call.index,
                name=call.name,
                arguments=arguments,
            )
            item = _call_item(call.call_id, call.name, arguments, status, call.item_id)
            self._output[call.index] = item
            self._emit("response.output_item.done", output_index=call.index, item=item)
        self._done_calls.update(self._calls)
        self._calls.clear()
        self._live = None

    def _close_all(self, status: str) -> None:
        self._close_message(status)
        self._close_calls("completed")


class NativeStream:
    """A ``StreamTranslator`` that relays a native server's Responses events unchanged and
    remembers the response its ``response.completed`` (or ``.incomplete``) event carries."""

    def __init__(self, on_done: OnDone | None = None) -> None:
        self._on_done = on_done
        self._sequence = 0
        self._latest: dict[str, Any] | None = None
        """The response object of the last event that carried one: what ``failed`` reports."""

    media_type = "text/event-stream"

    def keepalive(self) -> bytes:
        """An SSE comment: the Responses stream has no ping event of its own."""
        return sse.KEEPALIVE_EVENT

    def opening(self) -> bytes:
        """Nothing: the server sends its own ``response.created``."""
        return b""

    def translate(self, events: list[bytes]) -> bytes:
        """The events as they came."""
        for event in events:
            self._sequence += 1
            if b'"response"' in event:
                self._remember(event)
        return b"".join(events)

    def _remember(self, event: bytes) -> None:
        payload = sse.event_payload(event)
        try:
            decoded = orjson.loads(payload) if payload is not None else None
        except orjson.JSONDecodeError:
            return
        if not isinstance(decoded, dict) or not isinstance(decoded.get("response"), dict):
            return
        self._latest = decoded["response"]
        if self._on_done is not None and decoded.get("type") in (
            "response.completed",
            "response.incomplete",
        ):
            self._on_done(decoded["response"])

    def closing(self) -> bytes:
        """Nothing: the server ended its own stream."""
        return b""

    def failed(self, error: UpstreamError) -> bytes:
        """``response.failed`` with the response as far as it got, as the Responses API ends a
        stream that broke (``server_error``: its codes are a closed list)."""
        response = dict(self._latest or {"id": _id("resp"), "object": "response", "output": []})
        response["status"] = "failed"
        response["error"] = {"code": "server_error", "message": error.message}
        return _event("response.failed", self._sequence, {"response": response})

    def whole(self, answer: bytes) -> bytes:
        """The full event stream of a JSON ``response`` object (a server that ignored
        ``stream``): every item added, its text or arguments as one delta, done, then the end."""
        try:
            response = orjson.loads(answer)
        except orjson.JSONDecodeError:
            response = None
        if not isinstance(response, dict):
            raise BadUpstreamResponse(
                "answered 200 with a body that is not a response object "
                f"({sse.describe_body(answer)})"
            )
        if self._on_done is not None:
            self._on_done(response)
        return b"".join(
            _event(kind, sequence, fields)
            for sequence, (kind, fields) in enumerate(events_of_response(response))
        )


def events_of_response(response: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The events a streamed answer would have sent for a finished ``response``, in order."""
    opening = {**response, "status": "in_progress", "output": []}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.created", {"response": opening}),
        ("response.in_progress", {"response": opening}),
    ]
    output = response.get("output")
    for index, item in enumerate(output if isinstance(output, list) else []):
        if not isinstance(item, dict):
            continue
        item_id = item.get("id", "")
        kind = item.get("type")
        if kind == "message":
            events.append(
                (
                    "response.output_item.added",
                    {
                        "output_index": index,
                        "item": {**item, "status": "in_progress", "content": []},
                    },
                )
            )
            for part_index, part in enumerate(item.get("content") or []):
                where = {"item_id": item_id, "output_index": index, "content_index": part_index}
                events.extend(_part_events(part, where))
        elif kind == "function_call":
            arguments = item.get("arguments", "")
            events.append(
                (
                    "response.output_item.added",
                    {
                        "output_index": index,
                        "item": {**item, "status": "in_progress", "arguments": ""},
                    },
                )
            )
            where = {"item_id": item_id, "output_index": index}
            if arguments:
                events.append(
                    ("response.function_call_arguments.delta", {**where, "delta": arguments})
                )
            events.append(
                (
                    "response.function_call_arguments.done",
                    {**where, "name": item.get("name", ""), "arguments": arguments},
                )
            )
        else:
            events.append(("response.output_item.added", {"output_index": index, "item": item}))
        events.append(("response.output_item.done", {"output_index": index, "item": item}))
    final = (
        "response.incomplete" if response.get("status") == "incomplete" else "response.completed"
    )
    events.append((final, {"response": response}))
    return events


def _part_events(part: Any, where: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """The events of one finished content part of a message: added, its text (or refusal) as
    one delta, done."""
    refusal = isinstance(part, dict) and part.get("type") == "refusal"
    field = "refusal" if refusal else "text"
    text = part.get(field, "") if isinstance(part, dict) else ""
    kind = "refusal" if refusal else "output_text"
    logprobs: dict[str, Any] = {} if refusal else {"logprobs": []}
    events: list[tuple[str, dict[str, Any]]] = [
        ("response.content_part.added", {**where, "part": _part(kind, "")})
    ]
    if text:
        events.append((f"response.{kind}.delta", {**where, "delta": text, **logprobs}))
    events.append((f"response.{kind}.done", {**where, field: text, **logprobs}))
    events.append(("response.content_part.done", {**where, "part": part}))
    return events

"""Reading Messages event streams in unit tests: split the bytes, check every event against the
anthropic SDK's own types, and reassemble the message as a client does (text by block, tool
arguments from their ``input_json_delta`` fragments)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import orjson
from anthropic.types import Message, RawMessageStreamEvent
from pydantic import TypeAdapter

EVENT: TypeAdapter[Any] = TypeAdapter(RawMessageStreamEvent)
MESSAGE: TypeAdapter[Any] = TypeAdapter(Message)


def events_of(stream: bytes) -> list[dict[str, Any]]:
    """Every event of an SSE body, each checked: its ``event:`` line names its ``type``, and
    all but ``ping`` and ``error`` validate as the SDK's ``RawMessageStreamEvent``."""
    events = []
    assert stream.endswith(b"\n\n") or not stream, stream[-40:]
    for raw in stream.split(b"\n\n")[:-1]:
        name_line, data_line = raw.split(b"\n")
        assert name_line.startswith(b"event: ")
        assert data_line.startswith(b"data: ")
        event: dict[str, Any] = orjson.loads(data_line[6:])
        assert event["type"] == name_line[7:].decode()
        if event["type"] == "error":
            assert set(event["error"]) == {"type", "message"}
            assert event["error"]["message"]
        elif event["type"] != "ping":
            EVENT.validate_python(event)
        events.append(event)
    return events


@dataclass
class Reassembled:
    """What a client holds after reading a Messages stream."""

    blocks: list[dict[str, Any]] = field(default_factory=list)
    """``{"type": "text", "text"}``, ``{"type": "thinking", "thinking", "signature"}`` or
    ``{"type": "tool_use", "id", "name", "json"}`` (the argument fragments joined), in order."""
    stop_reason: str | None = None
    stop_sequence: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    error: str | None = None
    """The ``error`` event's message, when the stream ended with one."""
    stopped: bool = False
    """``message_stop`` came."""


def reassemble(events: list[dict[str, Any]]) -> Reassembled:
    """Fold the events as the SDK does, checking the order rules a client relies on: one
    ``message_start`` first, deltas only for a started block, nothing after the end."""
    out = Reassembled()
    assert events, "no events"
    assert events[0]["type"] == "message_start", events[0]
    open_blocks: set[int] = set()
    for position, event in enumerate(events[1:], start=1):
        kind = event["type"]
        assert not out.stopped, f"{kind} after message_stop"
        assert out.error is None, f"{kind} after the error event"
        if kind == "content_block_start":
            index = event["index"]
            assert index == len(out.blocks), "blocks start in order"
            block = event["content_block"]
            if block["type"] == "text":
                out.blocks.append({"type": "text", "text": block["text"]})
            elif block["type"] == "thinking":
                out.blocks.append({"type": "thinking", "thinking": "", "signature": ""})
            else:
                out.blocks.append(
                    {"type": "tool_use", "id": block["id"], "name": block["name"], "json": ""}
                )
            open_blocks.add(index)
        elif kind == "content_block_delta":
            index = event["index"]
            assert index < len(out.blocks), "a delta for a started block"
            delta = event["delta"]
            block = out.blocks[index]
            if delta["type"] == "text_delta":
                assert block["type"] == "text"
                block["text"] += delta["text"]
            elif delta["type"] in ("thinking_delta", "signature_delta"):
                assert block["type"] == "thinking"
                key = delta["type"].removesuffix("_delta")
                block[key] += delta[key]
            else:
                assert delta["type"] == "input_json_delta"
                assert block["type"] == "tool_use"
                block["json"] += delta["partial_json"]
        elif kind == "content_block_stop":
            open_blocks.discard(event["index"])
        elif kind == "message_delta":
            assert not open_blocks, "every block stopped before message_delta"
            out.stop_reason = event["delta"]["stop_reason"]
            out.stop_sequence = event["delta"]["stop_sequence"]
            out.usage = event["usage"]
        elif kind == "message_stop":
            assert out.stop_reason is not None, "message_delta before message_stop"
            out.stopped = True
        elif kind == "error":
            out.error = event["error"]["message"]
            assert position == len(events) - 1, "the error event is the last"
        else:
            assert kind == "ping", kind
    return out

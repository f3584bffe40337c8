"""A native ``/v1/responses`` for simulated models that set ``Behaviour.native_responses``.

Independent of the router's translation on purpose (the simulator imports nothing of the
router): the Responses body is read as a chat body just enough for the same generator to answer
it, and the answer is framed as a ``response`` object or the typed events OpenAI streams.
"""

from __future__ import annotations

import secrets
from typing import TYPE_CHECKING, Any

import orjson

from octoroute.simulator.replies import JsonObject, message_text, split_arguments, tokenize

if TYPE_CHECKING:
    from octoroute.simulator.behaviour import Behaviour
    from octoroute.simulator.completion import Completion


def chat_view_of_responses(body: JsonObject) -> JsonObject:
    """A Responses body seen as a chat body: ``instructions`` and ``input`` as messages,
    function tools in chat's shape, ``text.format`` as ``response_format``."""
    messages: list[JsonObject] = []
    if isinstance(body.get("instructions"), str):
        messages.append({"role": "system", "content": body["instructions"]})
    items = body.get("input")
    if isinstance(items, str):
        items = [{"role": "user", "content": items}]
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        kind = item.get("type", "message")
        if kind == "message":
            messages.append({"role": item.get("role"), "content": message_text(item)})
        elif kind == "function_call_output":
            messages.append({"role": "tool", "content": str(item.get("output"))})
    tools = [
        {"type": "function", "function": tool}
        for tool in body.get("tools") or []
        if isinstance(tool, dict) and tool.get("type") == "function"
    ]
    view: JsonObject = {**body, "messages": messages, "tools": tools}
    choice = body.get("tool_choice")
    if isinstance(choice, dict) and choice.get("type") == "function":
        view["tool_choice"] = {"type": "function", "function": {"name": choice.get("name")}}
    text = body.get("text")
    form = text.get("format") if isinstance(text, dict) else None
    if isinstance(form, dict) and form.get("type") == "json_schema":
        view["response_format"] = {"type": "json_schema", "json_schema": form}
    return view


def _output(completion: Completion) -> list[JsonObject]:
    if completion.tool_calls:
        return [
            {
                "id": f"fc_{secrets.token_hex(8)}",
                "type": "function_call",
                "status": "completed",
                "call_id": call["id"],
                "name": call["function"]["name"],
                "arguments": call["function"]["arguments"],
            }
            for call in completion.tool_calls
        ]
    text = {"type": "output_text", "text": completion.content or "", "annotations": []}
    return [
        {
            "id": f"msg_{secrets.token_hex(8)}",
            "type": "message",
            "status": "completed",
            "role": "assistant",
            "content": [text],
        }
    ]


def response_object(
    completion: Completion, output: list[JsonObject], status: str = "completed"
) -> JsonObject:
    """The ``response`` object of an answer whose output items are ``output``."""
    usage = completion.usage
    return {
        "id": "resp_" + completion.id.removeprefix("chatcmpl-"),
        "object": "response",
        "created_at": completion.created,
        "status": status,
        "model": completion.model,
        "output": output,
        "parallel_tool_calls": True,
        "tool_choice": "auto",
        "tools": [],
        "usage": {
            "input_tokens": usage["prompt_tokens"],
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": usage["completion_tokens"],
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": usage["total_tokens"],
        },
    }


def response_json(completion: Completion) -> bytes:
    """The non-streaming answer of ``/v1/responses``."""
    return orjson.dumps(response_object(completion, _output(completion)))


def response_events(completion: Completion, behaviour: Behaviour) -> list[tuple[float, bytes]]:
    """The streamed answer: lifecycle events around each output item's events (a message, or
    one ``function_call`` item per tool call), timed like ``completion.sse_events``."""
    sequence = 0
    events: list[tuple[float, bytes]] = []

    def add(kind: str, delay: float = 0.0, **fields: Any) -> None:
        nonlocal sequence
        data = orjson.dumps({"type": kind, "sequence_number": sequence, **fields})
        events.append((delay, b"event: " + kind.encode() + b"\ndata: " + data + b"\n\n"))
        sequence += 1

    output = _output(completion)
    started = response_object(completion, [], "in_progress")
    add("response.created", behaviour.first_token_delay, response=started)
    add("response.in_progress", response=started)
    for position, item in enumerate(output):
        where = {"item_id": item["id"], "output_index": position}
        if item["type"] == "function_call":
            add("response.output_item.added", output_index=position, item={**item, "arguments": ""})
            for fragment in split_arguments(item["arguments"]):
                add(
                    "response.function_call_arguments.delta",
                    behaviour.token_gap,
                    **where,
                    delta=fragment,
                )
            add("response.function_call_arguments.done", **where, arguments=item["arguments"])
        else:
            text = item["content"][0]["text"]
            add("response.output_item.added", output_index=position, item={**item, "content": []})
            part = {"type": "output_text", "text": "", "annotations": []}
            add("response.content_part.added", **where, content_index=0, part=part)
            for token in tokenize(text):
                add(
                    "response.output_text.delta",
                    behaviour.token_gap,
                    **where,
                    content_index=0,
                    delta=token,
                )
            add("response.output_text.done", **where, content_index=0, text=text)
            add("response.content_part.done", **where, content_index=0, part={**part, "text": text})
        add("response.output_item.done", output_index=position, item=item)
    add("response.completed", response=response_object(completion, output))
    return events

"""Generated requests, end to end over real sockets: whatever a client sends, the router answers
without a 5xx or a traceback, errors are always the envelope, and every request it accepts reaches
the model server unchanged apart from ``model`` and the endpoint's defaults.

One router and fleet serve every example of a property (pytest-asyncio runs each hypothesis
example on the loop the fixtures were started on); the simulators' records are reset per example.
"""

from __future__ import annotations

import json
import re
import uuid
from typing import Any

import aiohttp
import msgspec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from octoroute.simulator import SimulatedFleet
from tests.harness import RouterHandle

SETTINGS = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
PATHS = ("/v1/chat/completions", "/chat", "/route")
MODELS = (
    "auto",
    "fast",
    "FAST",
    "Balanced",
    "deep",
    "sim-fast-a",
    "sim-fast-b",
    "sim-balanced",
    "sim-deep",
)
ROLES = ("system", "developer", "user", "assistant", "tool", "function")
WELL_FORMED_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:\-]{0,127}")
RAW_FIELDS = msgspec.json.Decoder(dict[str, msgspec.Raw])

Json = Any

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**64)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values: st.SearchStrategy[Json] = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)

text_part = st.fixed_dictionaries({"type": st.just("text"), "text": st.text(max_size=40)})
image_part = st.fixed_dictionaries(
    {
        "type": st.just("image_url"),
        "image_url": st.fixed_dictionaries({"url": st.text(max_size=20)}),
    }
)
content = st.text(max_size=80) | st.none() | st.lists(text_part | image_part, max_size=3)
tool_call = st.fixed_dictionaries(
    {
        "id": st.text(max_size=10),
        "type": st.just("function"),
        "function": st.fixed_dictionaries(
            {"name": st.text(max_size=10), "arguments": st.text(max_size=20)}
        ),
    }
)
valid_message = st.fixed_dictionaries(
    {"role": st.sampled_from(ROLES), "content": content},
    optional={
        "name": st.text(max_size=10),
        "tool_calls": st.lists(tool_call, max_size=2),
        "tool_call_id": st.text(max_size=10),
        "x_vendor": json_values,
    },
)
any_message = (
    valid_message
    | json_values
    | st.dictionaries(st.sampled_from(["role", "content", "name"]), json_values)
)

VALID_FIELDS: dict[str, st.SearchStrategy[Json]] = {
    "stream": st.booleans() | st.none(),
    "temperature": st.floats(min_value=0, max_value=2) | st.none(),
    "top_p": st.floats(min_value=0, max_value=1, exclude_min=True) | st.none(),
    "presence_penalty": st.floats(min_value=-2, max_value=2) | st.none(),
    "frequency_penalty": st.floats(min_value=-2, max_value=2) | st.none(),
    "max_tokens": st.integers(min_value=1, max_value=10**6) | st.none(),
    "max_completion_tokens": st.integers(min_value=1, max_value=10**6) | st.none(),
    "tools": st.lists(
        st.fixed_dictionaries(
            {
                "type": st.just("function"),
                "function": st.fixed_dictionaries(
                    {
                        "name": st.text(min_size=1, max_size=10),
                        "parameters": st.just({"type": "object"}),
                    }
                ),
            }
        ),
        max_size=2,
    ),
    "tool_choice": st.sampled_from(["auto", "none", "required"]),
    "stop": st.lists(st.text(max_size=5), max_size=3) | st.text(max_size=5),
    "seed": st.integers(),
    "n": st.integers(min_value=1, max_value=3),
    "user": st.text(max_size=10),
    "response_format": st.just({"type": "json_object"}),
    "stream_options": st.just({"include_usage": True}),
    "chat_template_kwargs": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
    "options": st.dictionaries(st.text(max_size=8), json_values, max_size=3),
}


@st.composite
def valid_bodies(draw: st.DrawFn) -> dict[str, Json]:
    """A request the router must accept: known fields in range, any extra fields."""
    body: dict[str, Json] = {
        "model": draw(st.sampled_from(MODELS)),
        "messages": draw(st.lists(valid_message, min_size=1, max_size=5)),
    }
    for name in draw(st.lists(st.sampled_from(sorted(VALID_FIELDS)), unique=True, max_size=8)):
        body[name] = draw(VALID_FIELDS[name])
    extras = draw(st.dictionaries(st.text(max_size=12), json_values, max_size=3))
    for key, value in extras.items():
        body.setdefault(key, value)
    order = draw(st.permutations(list(body)))
    return {key: body[key] for key in order}


@st.composite
def any_bodies(draw: st.DrawFn) -> bytes:
    """Anything: a valid body with fields of random types, a random JSON value, or random bytes."""
    kind = draw(st.sampled_from(["mutated", "json", "bytes", "chat"]))
    if kind == "bytes":
        return draw(st.binary(max_size=200))
    if kind == "json":
        return json.dumps(draw(json_values)).encode()
    body: dict[str, Json]
    if kind == "chat":
        body = {"message": draw(st.text(max_size=50) | json_values)}
        for hint in ("importance", "task_type"):
            if draw(st.booleans()):
                body[hint] = draw(
                    st.sampled_from(["low", "high", "code", "casual_chat"]) | json_values
                )
    else:
        body = draw(valid_bodies())
        for name in draw(
            st.lists(st.sampled_from(["model", "messages", *VALID_FIELDS]), max_size=3)
        ):
            body[name] = draw(json_values | st.lists(any_message, max_size=3))
        if draw(st.booleans()):
            del body[draw(st.sampled_from(list(body)))]
    return json.dumps(body).encode()


request_ids = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E) | st.just(" "), max_size=140
)


async def send(
    session: aiohttp.ClientSession, url: str, body: bytes, request_id: str | None = None
) -> tuple[int, Any, bytes]:
    headers = {"Content-Type": "application/json"}
    if request_id is not None:
        headers["x-request-id"] = request_id
    async with session.post(url, data=body, headers=headers) as response:
        return response.status, response.headers, await response.read()


def check_answer(status: int, headers: Any, body: bytes) -> None:
    """Never a 5xx, never a traceback; an error is always the envelope."""
    assert status < 500, body
    assert b"Traceback" not in body
    assert headers["x-request-id"]
    if status >= 400:
        assert headers["Content-Type"] == "application/json"
        error = json.loads(body)["error"]
        assert list(error) == ["message", "type", "param", "code"]
        assert isinstance(error["message"], str)
        assert error["message"]
        assert error["type"] == "invalid_request_error"
    elif headers["Content-Type"] == "text/event-stream":
        assert body.endswith(b"data: [DONE]\n\n")
    else:
        assert headers["Content-Type"] == "application/json"


def check_forwarded(router: RouterHandle, fleet: SimulatedFleet, sent_bytes: bytes) -> None:
    """The one upstream request is ``sent`` with ``model`` replaced and absent defaults filled."""
    [(name, record)] = [(sim.name, r) for sim in fleet.models for r in sim.chat_requests]
    endpoint = next(ep for ep in router.config.models.all() if ep.name == name)
    sent = json.loads(sent_bytes)
    expected = {**sent, "model": name}
    if sent.get("max_tokens") is None and sent.get("max_completion_tokens") is None:
        expected["max_tokens"] = endpoint.max_tokens
    if sent.get("temperature") is None:
        expected["temperature"] = endpoint.temperature
    # The bytes the model server got, decoded as the sent ones were: the simulator's own
    # ``json`` (orjson) turns integers past 64 bits, which the router forwards untouched, into
    # floats.
    received = json.loads(record.body)
    assert received == expected
    assert list(received) == list(expected)
    sent_raw, received_raw = RAW_FIELDS.decode(sent_bytes), RAW_FIELDS.decode(record.body)
    for key, raw in sent_raw.items():
        if key != "model" and expected[key] == sent[key]:
            assert bytes(received_raw[key]) == bytes(raw), key


def reset(fleet: SimulatedFleet) -> None:
    for sim in fleet.models:
        sim.reset()


@SETTINGS
@given(body=valid_bodies())
async def test_valid_requests_are_served_and_forwarded_faithfully(
    router: RouterHandle,
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    body: dict[str, Json],
) -> None:
    reset(fleet)
    raw = json.dumps(body).encode()
    status, headers, answer = await send(session, router.url + "/v1/chat/completions", raw)

    check_answer(status, headers, answer)
    assert status == 200, answer
    check_forwarded(router, fleet, raw)
    assert (
        headers["x-octoroute-endpoint"]
        == json.loads(answer.split(b"\n\n")[0].removeprefix(b"data: "))["model"]
    )


@SETTINGS
@given(path=st.sampled_from(PATHS), body=any_bodies(), request_id=st.none() | request_ids)
async def test_any_request_gets_a_clean_answer_and_accepted_ones_are_forwarded_faithfully(
    router: RouterHandle,
    fleet: SimulatedFleet,
    session: aiohttp.ClientSession,
    path: str,
    body: bytes,
    request_id: str | None,
) -> None:
    reset(fleet)
    status, headers, answer = await send(session, router.url + path, body, request_id)

    check_answer(status, headers, answer)
    echoed = headers["x-request-id"]
    incoming = None if request_id is None else request_id.strip(" ")
    if incoming is not None and WELL_FORMED_ID.fullmatch(incoming):
        assert echoed == incoming
    else:
        assert str(uuid.UUID(echoed, version=4)) == echoed
    upstream = [r for sim in fleet.models for r in sim.chat_requests]
    if path == "/route" or status != 200:
        assert upstream == []
    elif path == "/v1/chat/completions":
        check_forwarded(router, fleet, body)
    else:
        assert len(upstream) == 1

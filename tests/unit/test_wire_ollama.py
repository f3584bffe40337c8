"""``wire.ollama``, ``wire.ollama_embed``, ``wire.ollama_models`` and ``wire.ndjson`` without
sockets: Ollama bodies translated to chat, completions and embeddings bodies, and the model
listings checked against the ``ollama`` client's own types."""

from __future__ import annotations

import base64
import itertools
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from ollama import ListResponse, ProcessResponse, ShowResponse

from octoroute.config.schema import EndpointConfig, LimitsConfig
from octoroute.enums import Compat
from octoroute.errors import InvalidRequest
from octoroute.wire import ndjson
from octoroute.wire.ollama import (
    OPTION_FIELDS,
    OllamaRequest,
    parse_chat_request,
    parse_generate_request,
)
from octoroute.wire.ollama_embed import parse_embed_request, parse_embeddings_request
from octoroute.wire.ollama_models import ModelInfo, ps_body, show_body, tags_body, version_body
from tests.endpoints import endpoint_config

LIMITS = LimitsConfig()
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 16).decode()
JPEG = base64.b64encode(b"\xff\xd8\xff\xe0" + b"\0" * 16).decode()
HI: Any = [{"role": "user", "content": "hi"}]


def endpoint(*, native: bool = False, compat: frozenset[str] = frozenset()) -> EndpointConfig:
    return endpoint_config("served-name", native={"ollama"} if native else (), compat=compat)


def chat(body: dict[str, Any]) -> OllamaRequest:
    return parse_chat_request(orjson.dumps(body), LIMITS)


def generate(body: dict[str, Any]) -> OllamaRequest:
    return parse_generate_request(orjson.dumps(body), LIMITS)


def sent(request: OllamaRequest, **keys: Any) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(request.body_for(endpoint(**keys)))
    return body


# --- /api/chat ----------------------------------------------------------------------------------


def test_a_chat_becomes_a_chat_body_with_the_endpoint_defaults() -> None:
    request = chat({"model": "auto", "messages": HI})

    assert request.stream is True  # Ollama streams unless told not to
    assert request.path_for(endpoint()) == "chat/completions"
    assert sent(request) == {
        "model": "served-name",
        "messages": HI,
        "stream": True,
        "stream_options": {"include_usage": True},
        "max_tokens": 256,
        "temperature": 0.7,
    }
    assert [m.role for m in request.messages] == ["user"]
    assert request.load is None


def test_options_become_chat_fields_extras_or_nothing() -> None:
    options = {
        "temperature": 0.3,
        "top_p": 0.8,
        "seed": 3,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "stop": "###",
        "num_predict": 100,
        "top_k": 40,
        "min_p": 0.05,
        "typical_p": 0.9,
        "repeat_penalty": 1.1,
        "repeat_last_n": 64.0,
        "num_ctx": 8192,
        "num_gpu": 1,
        "use_mmap": True,
        "num_thread": 8,
        "num_keep": 4,
        "mirostat": 2,  # unknown to Ollama today: ignored, as Ollama ignores it
        "new_topic_penalty": 1.0,  # what Open WebUI sends for a presence penalty
    }
    body = sent(chat({"model": "m", "messages": HI, "stream": False, "options": options}))

    assert body == {
        "model": "served-name",
        "messages": HI,
        "temperature": 0.3,
        "top_p": 0.8,
        "seed": 3,
        "presence_penalty": 0.5,
        "frequency_penalty": 0.25,
        "stop": ["###"],
        "max_tokens": 100,
        "top_k": 40,
        "min_p": 0.05,
        "typical_p": 0.9,
        "repeat_penalty": 1.1,
        "repeat_last_n": 64,
    }
    assert set(options) - {"mirostat", "new_topic_penalty"} <= OPTION_FIELDS.keys()


@pytest.mark.parametrize("limit", [-1, -2, 0])
def test_num_predict_without_a_positive_limit_leaves_the_endpoints_default(limit: int) -> None:
    body = sent(chat({"model": "m", "messages": HI, "options": {"num_predict": limit}}))
    assert body["max_tokens"] == 256


@pytest.mark.parametrize(
    ("options", "param"),
    [
        ({"temperature": "hot"}, "options.temperature"),
        ({"num_predict": True}, "options.num_predict"),
        ({"stop": [1]}, "options.stop"),
        ({"use_mmap": "yes"}, "options.use_mmap"),
        ([1], "options"),
    ],
)
def test_an_option_of_the_wrong_type_is_refused_by_name(options: Any, param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        chat({"model": "m", "messages": HI, "options": options})
    assert refused.value.param == param


def test_format_think_and_tools_are_translated() -> None:
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    tool = {"function": {"name": "f", "parameters": {"type": "object"}}}
    body = sent(
        chat({"model": "m", "messages": HI, "format": schema, "think": "max", "tools": [tool]})
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "response", "schema": schema},
    }
    assert body["reasoning_effort"] == "xhigh"
    assert body["tools"] == [{**tool, "type": "function"}]
    json_mode = sent(chat({"model": "m", "messages": HI, "format": "json", "think": False}))
    assert json_mode["response_format"] == {"type": "json_object"}
    assert json_mode["reasoning_effort"] == "none"
    plain = sent(chat({"model": "m", "messages": HI, "format": "", "think": True, "tools": []}))
    assert {"response_format", "reasoning_effort", "tools"}.isdisjoint(plain)


@pytest.mark.parametrize(
    ("field", "value"),
    [("format", "xml"), ("think", "extreme"), ("stream", "yes"), ("keep_alive", [1])],
)
def test_a_bad_setting_is_refused_whatever_the_endpoint(field: str, value: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        chat({"model": "m", "messages": HI, field: value})
    assert refused.value.param == field


def test_messages_with_images_tool_calls_and_results_become_chat_messages() -> None:
    request = chat(
        {
            "model": "m",
            "messages": [
                {"role": "SYSTEM", "content": "Be brief."},
                {"role": "user", "content": "Look", "images": [PNG, JPEG]},
                {
                    "role": "assistant",
                    "content": "",
                    "thinking": "let me call both",
                    "tool_calls": [
                        {"function": {"name": "a", "arguments": {"x": 1}}},
                        {"id": "call_b", "function": {"name": "b", "arguments": {}}},
                    ],
                },
                {"role": "tool", "content": "B done", "tool_call_id": "call_b"},
                {"role": "tool", "content": "A done", "tool_name": "a"},
                {"role": "assistant", "content": "Both done."},
            ],
        }
    )
    messages = sent(request)["messages"]

    assert messages[0] == {"role": "system", "content": "Be brief."}
    assert messages[1]["content"] == [
        {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{PNG}"}},
        {"type": "image_url", "image_url": {"url": f"data:image/jpeg;base64,{JPEG}"}},
        {"type": "text", "text": "Look"},
    ]
    assert messages[2] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_2_0",
                "type": "function",
                "function": {"name": "a", "arguments": '{"x":1}'},
            },
            {"id": "call_b", "type": "function", "function": {"name": "b", "arguments": "{}"}},
        ],
    }
    assert messages[3] == {"role": "tool", "tool_call_id": "call_b", "content": "B done"}
    assert messages[4] == {"role": "tool", "tool_call_id": "call_2_0", "content": "A done"}
    assert messages[5] == {"role": "assistant", "content": "Both done."}
    assert [m.text() for m in request.messages][1] == "Look"


def test_a_tool_result_without_id_or_name_answers_the_next_open_call() -> None:
    messages = sent(
        chat(
            {
                "model": "m",
                "messages": [
                    *HI,
                    {
                        "role": "assistant",
                        "tool_calls": [
                            {"function": {"name": "a", "arguments": {}}},
                            {"function": {"name": "a", "arguments": {"n": 2}}},
                        ],
                    },
                    {"role": "tool", "content": "1"},
                    {"role": "tool", "content": "2"},
                ],
            }
        )
    )["messages"]
    assert [m["tool_call_id"] for m in messages[2:]] == ["call_1_0", "call_1_1"]


@pytest.mark.parametrize(
    ("images", "fragment"),
    [
        (["not base64!"], "is not a base64 PNG"),
        ([base64.b64encode(b"plain text, no image").decode()], "is not a base64 PNG"),
        ([3], "must be a base64 string"),
        ("abc", "must be an array"),
    ],
)
def test_an_image_that_is_not_one_is_refused(images: Any, fragment: str) -> None:
    with pytest.raises(InvalidRequest, match=fragment):
        chat({"model": "m", "messages": [{"role": "user", "content": "?", "images": images}]})


def test_a_data_url_image_is_kept_as_sent() -> None:
    url = f"data:image/webp;base64,{PNG}"
    messages = sent(
        chat({"model": "m", "messages": [{"role": "user", "content": "", "images": [url]}]})
    )["messages"]
    assert messages[0]["content"][0] == {"type": "image_url", "image_url": {"url": url}}


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"messages": {"role": "user"}}, "messages"),
        ({"messages": ["hi"]}, "messages[0]"),
        ({"messages": [{"content": "hi"}]}, "messages[0].role"),
        ({"messages": [{"role": "user", "content": ["hi"]}]}, "messages[0].content"),
        (
            {"messages": [{"role": "assistant", "tool_calls": [{"function": {}}]}]},
            "messages[0].tool_calls[0]",
        ),
        (
            {
                "messages": [
                    {
                        "role": "assistant",
                        "tool_calls": [{"function": {"name": "f", "arguments": 1}}],
                    }
                ]
            },
            "messages[0].tool_calls[0].function.arguments",
        ),
        ({"messages": [{"role": "tool", "tool_name": 3}]}, "messages[0].tool_name"),
        ({"messages": HI, "tools": [{"type": "function"}]}, "tools[0]"),
        ({"messages": HI, "model": ""}, "model"),
    ],
)
def test_a_malformed_chat_is_refused_by_name(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        chat({"model": "m", **body})
    assert refused.value.param == param


@pytest.mark.parametrize(
    ("body", "param"),
    [
        (
            {"messages": [{"role": "assistant", "content": "", "images": [PNG]}]},
            "messages[0].images",
        ),
        (
            {"messages": [{"role": "user", "tool_calls": [{"function": {"name": "f"}}]}]},
            "messages[0].tool_calls",
        ),
        ({"messages": HI, "logprobs": True}, "logprobs"),
        ({"messages": HI, "_debug_render_only": True}, "_debug_render_only"),
    ],
)
def test_what_cannot_be_translated_is_refused_only_for_a_translated_scope(
    body: dict[str, Any], param: str
) -> None:
    request = chat({"model": "m", **body})
    request.check_scope([endpoint(native=True)])
    with pytest.raises(InvalidRequest) as refused:
        request.check_scope([endpoint(native=True), endpoint()])
    assert refused.value.param == param
    assert 'not native = ["ollama"]' in refused.value.message


def test_a_native_endpoint_gets_the_body_with_only_model_replaced() -> None:
    raw = b'{"model": "llama3:8b", "messages": [{"role":"user","content":"hi"}], "options": {"mirostat": 2}, "x": 1.50}'
    request = parse_chat_request(raw, LIMITS)
    native = endpoint(native=True)

    assert request.path_for(native) == "/api/chat"
    # Top-level values keep the client's bytes (1.50 stays 1.50); only model changes.
    assert request.body_for(native) == (
        b'{"model":"served-name","messages":[{"role":"user","content":"hi"}],'
        b'"options":{"mirostat": 2},"x":1.50}'
    )
    assert parse_generate_request(b'{"model":"m","prompt":"p"}', LIMITS).path_for(native) == (
        "/api/generate"
    )


def test_a_repeated_key_is_refused() -> None:
    with pytest.raises(InvalidRequest, match="twice"):
        parse_chat_request(b'{"model":"m","messages":[],"messages":[]}', LIMITS)


def test_the_conversation_limits_apply() -> None:
    small = LimitsConfig(max_messages=1, max_content_chars=5)
    with pytest.raises(InvalidRequest, match="max_messages"):
        parse_chat_request(orjson.dumps({"model": "m", "messages": HI * 2}), small)
    with pytest.raises(InvalidRequest, match="max_content_chars"):
        parse_generate_request(orjson.dumps({"model": "m", "prompt": "too long"}), small)


@pytest.mark.parametrize(
    ("keep_alive", "load"),
    [
        (None, "load"),
        ("5m", "load"),
        (300, "load"),
        (0, "unload"),
        ("0", "unload"),
        ("0s", "unload"),
        ("0.0m", "unload"),
    ],
)
def test_a_request_without_messages_only_loads_or_unloads(keep_alive: Any, load: str) -> None:
    body: dict[str, Any] = {"model": "m"}
    if keep_alive is not None:
        body["keep_alive"] = keep_alive
    assert chat(body).load == load
    assert chat({**body, "messages": []}).load == load
    assert generate({**body, "prompt": ""}).load == load
    assert generate({**body, "prompt": "", "images": [PNG]}).load is None


def test_compat_rewrites_apply_to_the_translated_body() -> None:
    body = sent(
        chat({"model": "m", "messages": HI}), compat=frozenset({Compat.STRIP_STREAM_OPTIONS})
    )
    assert "stream_options" not in body


# --- /api/generate ----------------------------------------------------------------------------


def test_a_prompt_becomes_system_and_user_messages() -> None:
    request = generate({"model": "m", "prompt": "Why?", "system": "Be brief.", "stream": False})
    assert request.generate is True
    assert request.path_for(endpoint()) == "chat/completions"
    assert sent(request)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Why?"},
    ]


@pytest.mark.parametrize(
    ("extra", "completion"),
    [
        ({"raw": True}, {"prompt": "<s>[INST] hi [/INST]"}),
        ({"suffix": "\nreturn x"}, {"prompt": "<s>[INST] hi [/INST]", "suffix": "\nreturn x"}),
    ],
)
def test_raw_and_suffix_prompts_go_to_completions_untouched(
    extra: dict[str, Any], completion: dict[str, Any]
) -> None:
    request = generate({"model": "m", "prompt": "<s>[INST] hi [/INST]", "stream": False, **extra})
    assert request.path_for(endpoint()) == "completions"
    assert sent(request) == {
        "model": "served-name",
        **completion,
        "max_tokens": 256,
        "temperature": 0.7,
    }


@pytest.mark.parametrize(
    ("extra", "param"),
    [
        ({"raw": True, "system": "s"}, "system"),
        ({"suffix": "x", "images": [PNG]}, "images"),
        ({"raw": True, "format": "json"}, "format"),
        ({"template": "{{ .Prompt }}"}, "template"),
        ({"context": [1, 2, 3]}, "context"),
    ],
)
def test_what_generate_cannot_carry_is_refused_for_a_translated_scope(
    extra: dict[str, Any], param: str
) -> None:
    request = generate({"model": "m", "prompt": "p", **extra})
    request.check_scope([endpoint(native=True)])
    with pytest.raises(InvalidRequest) as refused:
        request.check_scope([endpoint()])
    assert refused.value.param == param


@pytest.mark.parametrize(
    ("extra", "param"),
    [({"prompt": 3}, "prompt"), ({"raw": "yes"}, "raw"), ({"system": []}, "system")],
)
def test_a_malformed_generate_is_refused_by_name(extra: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        generate({"model": "m", **extra})
    assert refused.value.param == param


# --- embeddings -------------------------------------------------------------------------------


def test_embed_becomes_an_embeddings_body() -> None:
    request = parse_embed_request(
        orjson.dumps({"model": "e", "input": ["a", "b"], "dimensions": 8, "truncate": False}),
        LIMITS,
    )
    assert request.path_for(endpoint()) == "embeddings"
    # dimensions is the router's to apply (wire.ollama_answer.shortened), not the server's.
    assert orjson.loads(request.body_for(endpoint())) == {
        "model": "served-name",
        "input": ["a", "b"],
    }
    assert request.dimensions == 8
    assert request.path_for(endpoint(native=True)) == "/api/embed"
    assert request.empty is False
    legacy = parse_embeddings_request(b'{"model":"e","prompt":"x","options":{}}', LIMITS)
    assert orjson.loads(legacy.body_for(endpoint())) == {"model": "served-name", "input": "x"}
    assert legacy.path_for(endpoint(native=True)) == "/api/embeddings"


@pytest.mark.parametrize("texts", [[], "", None])
def test_nothing_to_embed_is_marked_empty(texts: Any) -> None:
    body = {"model": "e"} if texts is None else {"model": "e", "input": texts}
    assert parse_embed_request(orjson.dumps(body), LIMITS).empty is True
    assert parse_embeddings_request(b'{"model":"e","prompt":""}', LIMITS).empty is True


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": [1, 2]}, "input"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x", "truncate": "no"}, "truncate"),
        ({"input": "x", "options": []}, "options"),
    ],
)
def test_a_malformed_embed_is_refused_by_name(body: dict[str, Any], param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        parse_embed_request(orjson.dumps({"model": "e", **body}), LIMITS)
    assert refused.value.param == param


# --- the model listings, read by the ollama client's own types ------------------------------


def test_tags_show_and_ps_validate_as_the_clients_types() -> None:
    models = [ModelInfo("auto", False), ModelInfo("embed", True), ModelInfo("big", False, 32768)]
    listing = ListResponse(**orjson.loads(tags_body(models, "2026-12-01T00:00:00.000000Z")))
    assert [m.model for m in listing.models] == ["auto", "embed", "big"]
    assert len({m.digest for m in listing.models}) == 3

    shown = ShowResponse(**orjson.loads(show_body(models[2], "2026-12-01T00:00:00Z")))
    assert shown.modelinfo == {
        "general.architecture": "octoroute",
        "octoroute.context_length": 32768,
    }
    assert shown.parameters == "num_ctx 32768"
    assert shown.capabilities == ["completion", "tools"]
    unknown = ShowResponse(**orjson.loads(show_body(models[1], "2026-12-01T00:00:00Z")))
    assert unknown.capabilities == ["embedding"]
    assert unknown.parameters == ""

    running = ProcessResponse(**orjson.loads(ps_body(models[2:])))
    assert running.models[0].context_length == 32768
    assert orjson.loads(version_body())["version"].count(".") == 2


# --- NDJSON framing -----------------------------------------------------------------------------


@given(
    lines=st.lists(st.binary(max_size=20).map(lambda b: b.replace(b"\n", b"")), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=200), max_size=6),
)
def test_the_line_splitter_gives_back_exactly_the_bytes_fed(
    lines: list[bytes], cuts: list[int]
) -> None:
    stream = b"".join(line + b"\n" for line in lines) + b"partial"
    points = sorted({c % (len(stream) + 1) for c in cuts} | {0, len(stream)})
    splitter = ndjson.LineSplitter()
    out: list[bytes] = []
    for start, end in itertools.pairwise(points):
        out += splitter.feed(stream[start:end])
    assert out == [line + b"\n" for line in lines]
    assert splitter.pending == b"partial"
    assert splitter.pending_size == len(b"partial")


def test_the_final_line_and_its_counts_are_found() -> None:
    final = b'{"model":"m","done":true,"prompt_eval_count":7,"eval_count":3}\n'
    assert ndjson.is_final(final)
    assert ndjson.usage_from_line(final) == (7, 3)
    assert not ndjson.is_final(b'{"message":{"content":"done: true"},"done":false}\n')
    assert not ndjson.is_final(b'{"done": true')  # not JSON
    assert ndjson.usage_from_line(b'{"done":false}\n') is None
    assert ndjson.usage_from_line(b'{"prompt_eval_count":5,"embeddings":[]}') == (5, 0)
    assert ndjson.usage_from_line(b'{"eval_count":"x"}') is None

"""The Messages request without sockets: every translation rule of issue #17 from an Anthropic
body to a chat body, the native body, and the 400s for what is invalid or cannot be carried."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import orjson
import pytest

from octoroute.config.schema import LimitsConfig
from octoroute.errors import InvalidRequest
from octoroute.wire.anthropic import (
    SERVICE_SETTINGS,
    MessagesRequest,
    error_type_for,
    parse_count_request,
    parse_messages_request,
)
from tests.endpoints import endpoint_config

CHAT = endpoint_config()
NATIVE = endpoint_config("native-model", native={"messages"}, index=1)
HI: Any = [{"role": "user", "content": "hi"}]


def parse(body: dict[str, Any] | bytes, limits: LimitsConfig | None = None) -> MessagesRequest:
    raw = body if isinstance(body, bytes) else orjson.dumps(body)
    return parse_messages_request(raw, limits or LimitsConfig())


def chat_body(**fields: Any) -> dict[str, Any]:
    """The chat body a chat endpoint gets for a Messages body of ``fields`` (plus model and
    max_tokens unless given)."""
    request = parse({"model": "fast", "max_tokens": 100, **fields})
    request.check_scope([CHAT])
    assert request.path_for(CHAT) == "chat/completions"
    decoded: dict[str, Any] = orjson.loads(request.body_for(CHAT))
    return decoded


def chat_messages(*messages: Any, **fields: Any) -> list[Any]:
    result: list[Any] = chat_body(messages=list(messages), **fields)["messages"]
    return result


def refusal(body: dict[str, Any]) -> InvalidRequest:
    """The 400 a chat endpoint's scope gets for ``body``, at parse time or at ``check_scope``."""
    with pytest.raises(InvalidRequest) as caught:
        parse(body).check_scope([CHAT])
    assert caught.value.status == 400
    return caught.value


def untranslatable(**fields: Any) -> InvalidRequest:
    """The 400 for fields only the translation cannot carry: a native scope takes them."""
    body = {"model": "fast", "max_tokens": 10, "messages": HI, **fields}
    parse(body).check_scope([NATIVE])
    return refusal(body)


# --- the body as a whole -----------------------------------------------------------------------


def test_a_minimal_body_becomes_a_chat_body_with_the_endpoint_defaults() -> None:
    assert chat_body(messages=HI) == {
        "model": "chat-model",
        "messages": [{"role": "user", "content": "hi"}],
        "max_tokens": 100,
        "temperature": 0.7,
    }


def test_a_native_endpoint_gets_the_clients_body_with_only_model_replaced() -> None:
    body = (
        b'{"model":"claude-sonnet-4-5","max_tokens":5,"messages":[{"role":"user","content":"hi"}],'
        b'"thinking":{"type":"enabled","budget_tokens":1024},"mcp_servers":[{"x":1}]}'
    )
    request = parse(body)
    assert request.path_for(NATIVE) == "messages"
    assert request.body_for(NATIVE) == body.replace(b'"claude-sonnet-4-5"', b'"native-model"')


@pytest.mark.parametrize("max_tokens", [None, 0, -1, 1.5, "10", True])
def test_max_tokens_is_required_and_a_positive_integer(max_tokens: Any) -> None:
    body: dict[str, Any] = {"model": "fast", "messages": HI}
    if max_tokens is not None:
        body["max_tokens"] = max_tokens
    error = refusal(body)
    assert error.param == "max_tokens"
    assert "max_tokens is required" in error.message


def test_max_tokens_is_required_even_when_every_endpoint_is_native() -> None:
    with pytest.raises(InvalidRequest, match="max_tokens is required"):
        parse({"model": "fast", "messages": HI}).check_scope([NATIVE])


@pytest.mark.parametrize("messages", [None, [], "hi", {"role": "user"}])
def test_messages_must_be_a_non_empty_array(messages: Any) -> None:
    body: dict[str, Any] = {"model": "fast", "max_tokens": 5}
    if messages is not None:
        body["messages"] = messages
    assert refusal(body).param == "messages"


def test_model_and_stream_are_validated_as_for_chat() -> None:
    assert refusal({"max_tokens": 5, "messages": HI}).param == "model"
    assert refusal({"model": "", "max_tokens": 5, "messages": HI}).param == "model"
    assert refusal({"model": "x", "max_tokens": 5, "messages": HI, "stream": "yes"}).param == (
        "stream"
    )


def test_a_key_sent_twice_is_refused_naming_it() -> None:
    body = b'{"model":"fast","max_tokens":5,"max_tokens":9000,"messages":[{"role":"user","content":"hi"}]}'
    with pytest.raises(InvalidRequest, match="max_tokens") as caught:
        parse(body)
    assert caught.value.param == "max_tokens"


def test_the_message_limits_apply() -> None:
    limits = LimitsConfig(max_messages=2, max_content_chars=10)
    with pytest.raises(InvalidRequest, match=r"\[limits\].max_messages"):
        parse({"model": "x", "max_tokens": 5, "messages": HI * 3}, limits)
    with pytest.raises(InvalidRequest, match=r"\[limits\].max_content_chars"):
        parse({"model": "x", "max_tokens": 5, "system": "s" * 11, "messages": HI}, limits)


def test_an_unknown_top_level_field_is_refused_for_a_chat_endpoint_and_passed_to_a_native_one() -> (
    None
):
    error = untranslatable(frobnicate=True)
    assert error.param == "frobnicate"
    assert "not supported" in error.message


def test_the_service_settings_are_the_ones_the_docs_name() -> None:
    doc = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text()
    paragraph = doc[doc.index("`service_tier`, `container`") :].split("\n\n")[0]
    assert set(re.findall(r"`(\w+)`", paragraph.split("are accepted and ignored")[0])) == set(
        SERVICE_SETTINGS
    )


@pytest.mark.parametrize("field", sorted(SERVICE_SETTINGS))
def test_anthropic_service_settings_are_accepted_and_not_forwarded(field: str) -> None:
    body = chat_body(messages=HI, **{field: {"any": "value"}})
    assert field not in body


# --- system ------------------------------------------------------------------------------------


def test_a_system_string_becomes_the_first_system_message() -> None:
    assert chat_messages(*HI, system="Be brief.")[0] == {"role": "system", "content": "Be brief."}


def test_system_text_blocks_are_joined_and_their_cache_control_ignored() -> None:
    system = [
        {"type": "text", "text": "You are a Claude agent."},
        {"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}},
    ]
    assert chat_messages(*HI, system=system)[0] == {
        "role": "system",
        "content": "You are a Claude agent.\nBe brief.",
    }


def test_a_system_block_that_is_not_text_is_refused_naming_it() -> None:
    system = [{"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}}]
    assert untranslatable(system=system).param == "system[0]"


def test_a_system_message_inside_messages_stays_where_it_stands() -> None:
    messages = chat_messages(
        {"role": "user", "content": "say hi"},
        {"role": "system", "content": "Available agent types: ..."},
        {
            "role": "system",
            "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}],
        },
    )
    assert messages == [
        {"role": "user", "content": "say hi"},
        {"role": "system", "content": "Available agent types: ..."},
        {"role": "system", "content": "a\nb"},
    ]


def test_an_unknown_role_is_refused_naming_it() -> None:
    error = untranslatable(messages=[{"role": "developer", "content": "x"}])
    assert error.param == "messages[0].role"


# --- content blocks ----------------------------------------------------------------------------


def test_text_blocks_of_a_user_message_are_joined_by_newlines() -> None:
    user = {
        "role": "user",
        "content": [
            {"type": "text", "text": "<system-reminder>today</system-reminder>"},
            {"type": "text", "text": "say hi", "cache_control": {"type": "ephemeral"}},
        ],
    }
    assert chat_messages(user) == [
        {"role": "user", "content": "<system-reminder>today</system-reminder>\nsay hi"}
    ]


def test_a_base64_image_becomes_a_data_url_part_and_a_url_image_its_url() -> None:
    user = {
        "role": "user",
        "content": [
            {
                "type": "image",
                "source": {"type": "base64", "media_type": "image/png", "data": "iVB"},
            },
            {"type": "image", "source": {"type": "url", "url": "https://x.test/a.png"}},
            {"type": "text", "text": "What is this?"},
        ],
    }
    assert chat_messages(user) == [
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVB"}},
                {"type": "image_url", "image_url": {"url": "https://x.test/a.png"}},
                {"type": "text", "text": "What is this?"},
            ],
        }
    ]


@pytest.mark.parametrize(
    "source",
    [
        {"type": "file", "file_id": "file_1"},
        {"type": "base64", "media_type": "image/png"},
        {"type": "url"},
        None,
    ],
)
def test_an_image_without_a_usable_source_is_refused_naming_it(source: Any) -> None:
    user = {"role": "user", "content": [{"type": "image", "source": source}]}
    assert untranslatable(messages=[user]).param == "messages[0].content[0].source"


def test_a_plain_text_document_becomes_text_with_its_title() -> None:
    user = {
        "role": "user",
        "content": [
            {
                "type": "document",
                "title": "notes.txt",
                "source": {"type": "text", "media_type": "text/plain", "data": "line one"},
            },
            {"type": "text", "text": "Summarise."},
        ],
    }
    assert chat_messages(user) == [{"role": "user", "content": "notes.txt\n\nline one\nSummarise."}]


def test_a_pdf_document_is_refused_naming_its_source() -> None:
    pdf = {"type": "base64", "media_type": "application/pdf", "data": "JVBER"}
    user = {"role": "user", "content": [{"type": "document", "source": pdf}]}
    error = untranslatable(messages=[user])
    assert error.param == "messages[0].content[0].source"
    assert "plain-text" in error.message


def test_an_assistant_tool_use_becomes_tool_calls_with_its_input_as_json() -> None:
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "text", "text": "Let me look."},
            {"type": "tool_use", "id": "toolu_1", "name": "Read", "input": {"path": "/a"}},
            {"type": "tool_use", "id": "toolu_2", "name": "Bash", "input": {}},
        ],
    }
    assert chat_messages(*HI, assistant)[1] == {
        "role": "assistant",
        "content": "Let me look.",
        "tool_calls": [
            {
                "id": "toolu_1",
                "type": "function",
                "function": {"name": "Read", "arguments": '{"path":"/a"}'},
            },
            {"id": "toolu_2", "type": "function", "function": {"name": "Bash", "arguments": "{}"}},
        ],
    }


def test_an_assistant_message_of_only_tool_calls_has_null_content() -> None:
    assistant = {
        "role": "assistant",
        "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
    }
    assert chat_messages(*HI, assistant)[1]["content"] is None


@pytest.mark.parametrize(
    ("block", "param"),
    [
        ({"type": "tool_use", "name": "f", "input": {}}, "messages[1].content[0]"),
        ({"type": "tool_use", "id": "t", "input": {}}, "messages[1].content[0]"),
        (
            {"type": "tool_use", "id": "t", "name": "f", "input": [1]},
            "messages[1].content[0].input",
        ),
    ],
)
def test_a_malformed_tool_use_is_refused_naming_it(block: Any, param: str) -> None:
    assert untranslatable(messages=[*HI, {"role": "assistant", "content": [block]}]).param == param


def test_a_tool_use_in_a_user_message_is_refused() -> None:
    block = {"type": "tool_use", "id": "t", "name": "f", "input": {}}
    assert untranslatable(messages=[{"role": "user", "content": [block]}]).param == (
        "messages[0].content[0].type"
    )


def test_thinking_blocks_are_dropped_and_an_empty_assistant_turn_stays_a_string() -> None:
    assistant = {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "hmm", "signature": "sig"},
            {"type": "redacted_thinking", "data": "abc"},
        ],
    }
    assert chat_messages(*HI, assistant)[1] == {"role": "assistant", "content": ""}


THINKING: Any = {"type": "thinking", "thinking": "hmm", "signature": "sig"}


@pytest.mark.parametrize(
    ("messages", "param"),
    [
        ([{"role": "user", "content": []}], "messages[0].content"),
        (
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": "b"},
                {"role": "user", "content": []},
            ],
            "messages[2].content",
        ),
        (
            [
                {"role": "user", "content": "a"},
                {"role": "assistant", "content": []},
                {"role": "user", "content": "c"},
            ],
            "messages[1].content",
        ),
    ],
)
def test_an_empty_content_array_is_refused_naming_it_except_on_a_final_assistant_message(
    messages: Any, param: str
) -> None:
    error = untranslatable(messages=messages)
    assert error.param == param
    assert f"{param} has no content the model can read" in error.message
    assert "final assistant message" in error.message


def test_a_user_message_of_only_thinking_blocks_is_refused_rather_than_dropped() -> None:
    messages = [
        {"role": "user", "content": "a"},
        {"role": "assistant", "content": "b"},
        {"role": "user", "content": [THINKING, {"type": "redacted_thinking", "data": "x"}]},
    ]
    error = untranslatable(messages=messages)
    assert error.param == "messages[2].content"
    assert "thinking" in error.message


def test_an_empty_final_assistant_message_and_a_thinking_only_turn_in_the_history_stay() -> None:
    # Anthropic accepts both: an empty final assistant message (a prefill of nothing), and
    # Claude Code sends back an assistant turn of only thinking blocks; neither vanishes.
    history = [*HI, {"role": "assistant", "content": [THINKING]}, {"role": "user", "content": "b"}]
    assert chat_messages(*history)[1] == {"role": "assistant", "content": ""}
    assert chat_messages(*HI, {"role": "assistant", "content": []})[1] == {
        "role": "assistant",
        "content": "",
    }


def test_a_string_tool_result_becomes_a_tool_message_before_the_users_text() -> None:
    user = {
        "role": "user",
        "content": [
            {"type": "text", "text": "Thanks."},
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18 °C"},
        ],
    }
    assert chat_messages(user) == [
        {"role": "tool", "tool_call_id": "toolu_1", "content": "18 °C"},
        {"role": "user", "content": "Thanks."},
    ]


def test_tool_result_text_blocks_are_joined_and_is_error_is_said_in_the_text() -> None:
    user = {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "t1",
                "is_error": True,
                "content": [{"type": "text", "text": "exit 1"}, {"type": "text", "text": "no"}],
                "cache_control": {"type": "ephemeral"},
            },
            {"type": "tool_result", "tool_use_id": "t2"},
        ],
    }
    assert chat_messages(user) == [
        {"role": "tool", "tool_call_id": "t1", "content": "Error: exit 1\nno"},
        {"role": "tool", "tool_call_id": "t2", "content": ""},
    ]


def test_tool_result_images_follow_the_tool_messages_in_a_user_message() -> None:
    png = {"type": "base64", "media_type": "image/png", "data": "AAA"}
    user = {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "t1",
                "content": [
                    {"type": "text", "text": "a screenshot"},
                    {"type": "image", "source": png},
                ],
            },
            {
                "type": "tool_result",
                "tool_use_id": "t2",
                "content": [{"type": "image", "source": {"type": "url", "url": "https://x/b.png"}}],
            },
            {"type": "text", "text": "What changed?"},
        ],
    }
    assert chat_messages(user) == [
        {"role": "tool", "tool_call_id": "t1", "content": "a screenshot"},
        {"role": "tool", "tool_call_id": "t2", "content": ""},
        {
            "role": "user",
            "content": [
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAA"}},
                {"type": "image_url", "image_url": {"url": "https://x/b.png"}},
                {"type": "text", "text": "What changed?"},
            ],
        },
    ]


@pytest.mark.parametrize(
    ("result", "param"),
    [
        ({"type": "tool_result", "content": "x"}, "messages[0].content[0].tool_use_id"),
        (
            {"type": "tool_result", "tool_use_id": "t", "content": 5},
            "messages[0].content[0].content",
        ),
        (
            {
                "type": "tool_result",
                "tool_use_id": "t",
                "content": [{"type": "search_result", "source": "s", "title": "t", "content": []}],
            },
            "messages[0].content[0].content[0].type",
        ),
    ],
)
def test_a_tool_result_the_translation_cannot_read_is_refused_naming_it(
    result: Any, param: str
) -> None:
    assert untranslatable(messages=[{"role": "user", "content": [result]}]).param == param


def test_an_assistant_image_is_refused() -> None:
    image = {"type": "image", "source": {"type": "url", "url": "https://x/a.png"}}
    assert untranslatable(messages=[*HI, {"role": "assistant", "content": [image]}]).param == (
        "messages[1]"
    )


@pytest.mark.parametrize("kind", ["server_tool_use", "web_search_tool_result", "search_result"])
def test_server_tool_blocks_in_history_are_refused_naming_their_type(kind: str) -> None:
    block = {"type": kind, "id": "x"}
    error = untranslatable(messages=[*HI, {"role": "assistant", "content": [block]}])
    assert error.param == "messages[1].content[0].type"
    assert kind in error.message


# --- tools and tool_choice ---------------------------------------------------------------------

WEATHER: Any = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}},
}


def test_tools_become_function_tools_with_input_schema_as_parameters() -> None:
    tools = [
        {**WEATHER, "cache_control": {"type": "ephemeral"}, "eager_input_streaming": True},
        {"name": "noop", "input_schema": {"type": "object"}, "strict": True, "type": "custom"},
    ]
    assert chat_body(messages=HI, tools=tools)["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "get_weather",
                "parameters": WEATHER["input_schema"],
                "description": "The weather in a city.",
            },
        },
        {
            "type": "function",
            "function": {"name": "noop", "parameters": {"type": "object"}, "strict": True},
        },
    ]


@pytest.mark.parametrize(
    ("tool", "param"),
    [
        ({"type": "web_search_20250305", "name": "web_search"}, "tools[0].type"),
        ({"input_schema": {}}, "tools[0]"),
        ({"name": "f"}, "tools[0].input_schema"),
        ({"name": "f", "input_schema": "{}"}, "tools[0].input_schema"),
        ({"name": "f", "input_schema": {}, "frob": 1}, "tools[0].frob"),
    ],
)
def test_a_tool_the_translation_cannot_carry_is_refused_naming_it(tool: Any, param: str) -> None:
    assert untranslatable(tools=[tool]).param == param


@pytest.mark.parametrize("tools", [{}, False, "", 0])
def test_tools_that_are_not_an_array_are_refused_even_when_empty_or_false(tools: Any) -> None:
    error = untranslatable(tools=tools)
    assert error.param == "tools"
    assert "tools must be an array" in error.message


def test_null_or_empty_tools_are_no_tools() -> None:
    assert "tools" not in chat_body(messages=HI, tools=None)
    assert "tools" not in chat_body(messages=HI, tools=[])


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ({"type": "auto"}, "auto"),
        ({"type": "any"}, "required"),
        ({"type": "none"}, "none"),
        (
            {"type": "tool", "name": "get_weather"},
            {"type": "function", "function": {"name": "get_weather"}},
        ),
    ],
)
def test_tool_choice_maps_to_chat(choice: Any, expected: Any) -> None:
    body = chat_body(messages=HI, tools=[WEATHER], tool_choice=choice)
    assert body["tool_choice"] == expected
    assert "parallel_tool_calls" not in body


def test_disable_parallel_tool_use_becomes_parallel_tool_calls_false() -> None:
    body = chat_body(
        messages=HI,
        tools=[WEATHER],
        tool_choice={"type": "auto", "disable_parallel_tool_use": True},
    )
    assert (body["tool_choice"], body["parallel_tool_calls"]) == ("auto", False)


@pytest.mark.parametrize("choice", [{"type": "tool"}, {"type": "sometimes"}, "auto"])
def test_a_bad_tool_choice_is_refused(choice: Any) -> None:
    assert untranslatable(tool_choice=choice).param == "tool_choice"


# --- sampling, stop sequences, metadata, output_config, stream ---------------------------------


def test_sampling_numbers_and_top_k_are_forwarded() -> None:
    body = chat_body(messages=HI, temperature=0.2, top_p=0.9, top_k=40)
    assert (body["temperature"], body["top_p"], body["top_k"]) == (0.2, 0.9, 40)


@pytest.mark.parametrize(
    ("field", "value"), [("temperature", 3), ("top_p", 0), ("temperature", "1")]
)
def test_out_of_range_sampling_numbers_are_refused_whatever_the_endpoint(
    field: str, value: Any
) -> None:
    with pytest.raises(InvalidRequest) as caught:
        parse({"model": "x", "max_tokens": 5, "messages": HI, field: value})
    assert caught.value.param == field


@pytest.mark.parametrize("top_k", [-1, 1.5, "5", True])
def test_top_k_must_be_a_non_negative_integer(top_k: Any) -> None:
    assert untranslatable(top_k=top_k).param == "top_k"


def test_stop_sequences_become_stop_and_are_kept_for_the_answer() -> None:
    request = parse(
        {"model": "x", "max_tokens": 5, "messages": HI, "stop_sequences": ["###", "END"]}
    )
    assert orjson.loads(request.body_for(CHAT))["stop"] == ["###", "END"]
    assert request.stop_sequences == ("###", "END")
    assert "stop" not in chat_body(messages=HI, stop_sequences=[])


@pytest.mark.parametrize("stops", ["###", [1], [None]])
def test_stop_sequences_must_be_strings(stops: Any) -> None:
    assert untranslatable(stop_sequences=stops).param == "stop_sequences"


def test_metadata_user_id_becomes_user() -> None:
    user_id = '{"device_id":"abc","session_id":"s-1"}'
    assert chat_body(messages=HI, metadata={"user_id": user_id})["user"] == user_id
    assert "user" not in chat_body(messages=HI, metadata={"user_id": None})
    assert "user" not in chat_body(messages=HI, metadata={})


@pytest.mark.parametrize(
    ("metadata", "param"),
    [("u-1", "metadata"), ({"user_id": 5}, "metadata.user_id"), ({"team": "a"}, "metadata.team")],
)
def test_bad_metadata_is_refused_naming_it(metadata: Any, param: str) -> None:
    assert untranslatable(metadata=metadata).param == param


def test_thinking_and_output_config_effort_are_accepted_and_not_forwarded() -> None:
    body = chat_body(messages=HI, thinking={"type": "adaptive"}, output_config={"effort": "high"})
    assert not {"thinking", "output_config", "reasoning_effort", "response_format"} & set(body)


@pytest.mark.parametrize("thinking", ["yes", [1], True, 1, "enabled"])
def test_thinking_that_is_not_an_object_is_refused_naming_it(thinking: Any) -> None:
    error = untranslatable(thinking=thinking)
    assert error.param == "thinking"
    assert "thinking must be an object" in error.message


def test_null_thinking_is_thinking_not_set() -> None:
    request = parse({"model": "fast", "max_tokens": 5, "messages": HI, "thinking": None})
    request.check_scope([CHAT])
    assert not request.thinking


def test_output_config_format_becomes_a_json_schema_response_format() -> None:
    schema = {"type": "object", "properties": {"answer": {"type": "string"}}}
    body = chat_body(
        messages=HI, output_config={"format": {"type": "json_schema", "schema": schema}}
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "output", "schema": schema},
    }


@pytest.mark.parametrize(
    ("config", "param"),
    [
        ("high", "output_config"),
        ({"effort": "extreme"}, "output_config.effort"),
        ({"format": {"type": "json_object"}}, "output_config.format"),
        ({"format": {"type": "json_schema"}}, "output_config.format"),
        ({"verbosity": "low"}, "output_config.verbosity"),
    ],
)
def test_a_bad_output_config_is_refused_naming_it(config: Any, param: str) -> None:
    assert untranslatable(output_config=config).param == param


def test_stream_asks_the_chat_endpoint_for_usage_too() -> None:
    body = chat_body(messages=HI, stream=True)
    assert (body["stream"], body["stream_options"]) == (True, {"include_usage": True})
    assert "stream" not in chat_body(messages=HI, stream=False)


# --- routing's view and count_tokens -----------------------------------------------------------


def test_routing_reads_the_system_prompt_tool_results_and_texts_as_chat_would() -> None:
    request = parse(
        {
            "model": "auto",
            "max_tokens": 5,
            "system": [{"type": "text", "text": "Be brief."}],
            "messages": [
                {"role": "user", "content": "Weather?"},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {}}],
                },
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": "t", "content": "18"}],
                },
                {"role": "system", "content": "note"},
            ],
        }
    )
    assert [(m.role, m.text()) for m in request.messages] == [
        ("system", "Be brief."),
        ("user", "Weather?"),
        ("assistant", ""),
        ("tool", "18"),
        ("system", "note"),
    ]


def test_count_tokens_does_not_need_max_tokens() -> None:
    body = {
        "model": "claude-haiku-4-5",
        "system": "abcd",
        "messages": [{"role": "user", "content": "x" * 8}],
    }
    request = parse_count_request(orjson.dumps(body), LimitsConfig())
    assert sum(len(m.text()) for m in request.messages) == 12


def test_count_tokens_refuses_a_key_sent_twice_as_messages_does() -> None:
    # Without max_tokens the body used to be rebuilt from its decoded keys first, which lost
    # the duplicate before it was looked for.
    body = (
        b'{"model":"fast","messages":[{"role":"user","content":"x"}],'
        b'"messages":[{"role":"user","content":"' + b"y" * 50 + b'"}]}'
    )
    with pytest.raises(InvalidRequest, match="appears twice") as caught:
        parse_count_request(body, LimitsConfig())
    assert caught.value.param == "messages"


def test_count_tokens_validates_max_tokens_when_it_is_sent() -> None:
    body = {"model": "fast", "max_tokens": 0, "messages": HI}
    with pytest.raises(InvalidRequest, match="max_tokens") as caught:
        parse_count_request(orjson.dumps(body), LimitsConfig())
    assert caught.value.param == "max_tokens"


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        (400, "invalid_request_error"),
        (401, "authentication_error"),
        (403, "permission_error"),
        (404, "not_found_error"),
        (405, "invalid_request_error"),
        (413, "request_too_large"),
        (415, "invalid_request_error"),
        (429, "rate_limit_error"),
        (500, "api_error"),
        (502, "api_error"),
        (503, "overloaded_error"),
        (504, "api_error"),
        (529, "overloaded_error"),
    ],
)
def test_each_status_has_anthropics_error_type(status: int, kind: str) -> None:
    assert error_type_for(status) == kind

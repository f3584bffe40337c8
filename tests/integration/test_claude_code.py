"""The Claude Code recipe of ``docs/clients.md`` holds: its environment and aliases blocks name
what the router serves, and a request Claude Code really sent (recorded in
``tests/data/claude_code_request.json``) is answered correctly through the translation, with its
own headers, path and body, for every model name the recipe makes it send."""

from __future__ import annotations

import copy
import shlex
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import httpx
import orjson
import pytest
from anthropic.types import Message

from octoroute.enums import Tier
from tests.anthropic_events import events_of, reassemble
from tests.harness import RouterHandle
from tests.integration.test_clients_doc import DOC_URL, Demo, only_block, running_demo

RECORDED: Final = orjson.loads(
    (Path(__file__).resolve().parents[1] / "data" / "claude_code_request.json").read_bytes()
)
SENT_BY_DEFAULT: Final = {
    "claude-opus-4-8": Tier.DEEP,
    "claude-opus-4-1-20250805": Tier.DEEP,
    "claude-sonnet-4-5": Tier.BALANCED,
    "claude-sonnet-4-6": Tier.BALANCED,
    "claude-haiku-4-5-20251001": Tier.FAST,
    "claude-haiku-4-5": Tier.FAST,
}
"""Model names Claude Code sends without model variables (its default, its picker's, its
background model), and the tier the recipe's aliases send each to."""


def environment() -> dict[str, str]:
    """The ``export`` lines of the recipe's environment block."""
    found = {}
    for line in only_block("claude-code-env").splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            name, _, value = words[1].partition("=")
            found[name] = value
    return found


@pytest.fixture
async def setup() -> AsyncIterator[Demo]:
    """The demo's fleet without its delays, behind a router with the recipe's aliases."""
    async with running_demo(only_block("claude-code-aliases")) as started:
        yield started


def test_the_environment_names_the_router_without_v1_and_a_served_model() -> None:
    env = environment()
    assert env["ANTHROPIC_BASE_URL"] == DOC_URL, "Claude Code adds /v1/messages itself"
    assert env["ANTHROPIC_AUTH_TOKEN"]
    assert env["ANTHROPIC_MODEL"] == "auto"
    assert env["ANTHROPIC_DEFAULT_HAIKU_MODEL"] in {tier.value for tier in Tier}


@pytest.mark.parametrize(("name", "tier"), SENT_BY_DEFAULT.items())
async def test_the_aliases_send_each_default_name_to_its_tier(
    setup: Demo, name: str, tier: Tier
) -> None:
    choice = setup.router.runtime.catalog.resolve(name)
    assert choice.tier is tier, choice
    assert setup.router.runtime.catalog.resolve("claude-fable-5").is_auto


def models_to_replay() -> list[str]:
    env = environment()
    return [env["ANTHROPIC_MODEL"], env["ANTHROPIC_DEFAULT_HAIKU_MODEL"], *SENT_BY_DEFAULT][:5]


async def replay(router: RouterHandle, model: str, *, stream: bool) -> httpx.Response:
    """Send the recorded request as Claude Code did (its path, headers and body), for ``model``."""
    body = copy.deepcopy(RECORDED["body"])
    body["model"] = model
    body["stream"] = stream
    async with httpx.AsyncClient(timeout=10) as client:
        return await client.post(
            router.url + RECORDED["path"], content=orjson.dumps(body), headers=RECORDED["headers"]
        )


def test_the_recording_holds_what_the_recipe_says_claude_code_sends() -> None:
    body = RECORDED["body"]
    assert RECORDED["path"] == "/v1/messages?beta=true"
    assert "mid-conversation-system" in RECORDED["headers"]["anthropic-beta"]
    assert any("cache_control" in block for block in body["system"])
    assert any("cache_control" in tool for tool in body["tools"])
    assert {"thinking", "output_config", "context_management", "metadata"} <= set(body)
    roles = [message["role"] for message in body["messages"]]
    assert roles == ["user", "system", "assistant", "user"]
    results = body["messages"][3]["content"]
    assert [block["type"] for block in results] == ["tool_result", "tool_result"]
    assert any(block.get("is_error") for block in results)


@pytest.mark.parametrize("model", models_to_replay())
@pytest.mark.parametrize("stream", [True, False], ids=["streamed", "buffered"])
async def test_a_recorded_claude_code_request_is_answered(
    setup: Demo, model: str, stream: bool
) -> None:
    answer = await replay(setup.router, model, stream=stream)

    assert answer.status_code == 200, answer.text
    if stream:
        assert answer.headers["content-type"].startswith("text/event-stream")
        result = reassemble(events_of(answer.content))
        assert result.stopped
        text = "".join(block["text"] for block in result.blocks if block["type"] == "text")
        stop_reason = result.stop_reason
    else:
        message = Message.model_validate(answer.json())
        assert message.model == model
        text = "".join(block.text for block in message.content if block.type == "text")
        stop_reason = message.stop_reason
    # The simulated model answers a conversation that ends in tool results with the last one.
    last_result = RECORDED["body"]["messages"][3]["content"][-1]["content"]
    assert f"The tool returned: Error: {last_result[:30]}" in text
    assert stop_reason == "end_turn"

    (sent,) = [r.json for sim in setup.fleet.models for r in sim.chat_requests]
    messages = sent["messages"]
    assert [m["role"] for m in messages] == [
        "system",
        "user",
        "system",
        "assistant",
        "tool",
        "tool",
    ]
    assert messages[0]["content"].startswith("x-anthropic-billing-header")
    assert [call["function"]["name"] for call in messages[3]["tool_calls"]] == ["Agent", "Bash"]
    assert messages[4]["content"].startswith("Error: <tool_use_error>")
    assert {tool["function"]["name"] for tool in sent["tools"]} == {"Agent", "Bash", "Read"}
    assert sent["max_tokens"] == 32000
    assert sent["user"] == RECORDED["body"]["metadata"]["user_id"]
    assert not {"thinking", "output_config", "context_management", "metadata"} & set(sent)
    assert sent.get("stream", False) is stream


async def test_count_tokens_answers_for_the_recorded_request(setup: Demo) -> None:
    body = {key: value for key, value in RECORDED["body"].items() if key != "max_tokens"}
    async with httpx.AsyncClient(timeout=10) as client:
        answer = await client.post(
            setup.router.url + "/v1/messages/count_tokens?beta=true",
            json=body,
            headers=RECORDED["headers"],
        )
    assert answer.status_code == 200, answer.text
    assert answer.json()["input_tokens"] > 100

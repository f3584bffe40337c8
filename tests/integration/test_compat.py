"""``compat`` over real sockets: only the endpoint that lists a rewrite gets the rewritten body."""

from __future__ import annotations

from openai import AsyncOpenAI

from octoroute.simulator import SimulatedFleet, SimulatedModel
from tests.harness import config_for, running_router


async def test_each_rewrite_reaches_only_the_endpoint_that_lists_it() -> None:
    old = SimulatedModel("sim-old-server")
    old.config_keys["compat"] = [
        "developer_to_system",
        "max_completion_tokens_to_max_tokens",
        "strip_stream_options",
    ]
    new = SimulatedModel("sim-new-server")
    fleet = SimulatedFleet(fast=[old], balanced=[new], deep=[SimulatedModel("sim-deep")])
    async with (
        fleet,
        running_router(config_for(fleet, strategy="rule")) as router,
        AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client,
    ):
        for model in ("fast", "balanced"):
            stream = await client.chat.completions.create(
                model=model,
                messages=[
                    {"role": "developer", "content": "Answer in one word."},
                    {"role": "user", "content": "hello"},
                ],
                max_completion_tokens=20,
                stream=True,
                stream_options={"include_usage": True},
            )
            async for _ in stream:
                pass

    (rewritten,) = old.chat_requests
    (faithful,) = new.chat_requests
    assert rewritten.json["messages"][0]["role"] == "system"
    assert rewritten.json["max_tokens"] == 20
    assert "max_completion_tokens" not in rewritten.json
    assert "stream_options" not in rewritten.json
    assert faithful.json["messages"][0]["role"] == "developer"
    assert faithful.json["max_completion_tokens"] == 20
    assert faithful.json["stream_options"] == {"include_usage": True}


async def test_strip_stream_options_also_applies_to_completions() -> None:
    old = SimulatedModel("sim-old-server")
    old.config_keys["compat"] = ["strip_stream_options"]
    fleet = SimulatedFleet(fast=[old], balanced=[SimulatedModel("b")], deep=[SimulatedModel("d")])
    async with (
        fleet,
        running_router(config_for(fleet, strategy="rule")) as router,
        AsyncOpenAI(base_url=router.v1, api_key="x", max_retries=0) as client,
    ):
        stream = await client.completions.create(
            model="fast", prompt="hi", stream=True, stream_options={"include_usage": True}
        )
        async for _ in stream:
            pass

    (sent,) = old.completion_requests
    assert "stream_options" not in sent.json
    assert sent.json["prompt"] == "hi"

"""The simulator's placement behaviours, from the client's side of a real socket: slots and the
queue inside the server, cold loads and idle unloads, the prefix cache, context windows per kind,
and each kind's status paths.

Times are scaled down (a load of 0.2 s stands for minutes); each test waits on the simulator's
own state (its slots, its queue, a load under way) with deadlines, never on a request merely
having arrived, and compares durations only where the gap is an order of magnitude or where the
simulator's own sleeps order the events.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from octoroute.enums import Kind
from octoroute.simulator import Behaviour, SimulatedModel
from tests.harness import wait_until

if TYPE_CHECKING:
    from collections.abc import AsyncIterator


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(timeout=10) as client:
        yield client


def chat(text: str = "hi", *, history: list[dict[str, str]] | None = None, **extra: Any) -> Any:
    return {
        "model": "sim",
        "messages": [*(history or []), {"role": "user", "content": text}],
        **extra,
    }


def root(sim: SimulatedModel) -> str:
    return sim.base_url.removesuffix("/v1")


async def engine_holds(sim: SimulatedModel, running: int, waiting: int) -> None:
    """Wait until the server itself has ``running`` requests in slots and ``waiting`` queued:
    "in flight" only says a handler started, not that it reached the slots yet."""
    await wait_until(
        lambda: (sim.engine.running, sim.engine.waiting) == (running, waiting),
        what=f"{running} running and {waiting} waiting in the server",
    )


# --- slots ----------------------------------------------------------------------------------------


async def test_requests_beyond_the_slots_wait_inside_the_server_in_arrival_order(
    http: httpx.AsyncClient,
) -> None:
    async with SimulatedModel("sim", behaviour=Behaviour(slots=2, first_token_delay=0.2)) as sim:
        tasks = []
        for index in range(4):
            tasks.append(
                asyncio.create_task(
                    http.post(sim.base_url + "/chat/completions", json=chat(f"n{index}"))
                )
            )
            await engine_holds(sim, min(index + 1, 2), max(index - 1, 0))
        answers = await asyncio.gather(*tasks)

    assert [a.status_code for a in answers] == [200] * 4
    finished = sorted(sim.chat_requests, key=lambda r: r.finished_at or 0)
    assert [r.json["messages"][-1]["content"] for r in finished] == ["n0", "n1", "n2", "n3"]
    # The last two began only once one of the first two had finished and freed its slot.
    began = [r.received_at + r.waited for r in finished]
    assert min(began[2:]) >= min(r.finished_at or 0 for r in finished[:2])


async def test_a_full_queue_answers_429_with_retry_after(http: httpx.AsyncClient) -> None:
    behaviour = Behaviour(slots=1, queue_limit=1, first_token_delay=5)
    async with SimulatedModel("sim", behaviour=behaviour) as sim:
        first = asyncio.create_task(http.post(sim.base_url + "/chat/completions", json=chat()))
        second = asyncio.create_task(http.post(sim.base_url + "/chat/completions", json=chat()))
        await engine_holds(sim, 1, 1)

        third = await http.post(sim.base_url + "/chat/completions", json=chat())

        assert third.status_code == 429
        assert third.headers["Retry-After"] == "1"
        assert sim.engine.refused == 1
        first.cancel()
        second.cancel()
        await asyncio.gather(first, second, return_exceptions=True)
        await sim.wait_for_idle()
        assert (sim.engine.running, sim.engine.waiting) == (0, 0)


# --- residency ------------------------------------------------------------------------------------


async def test_a_cold_model_loads_once_for_the_requests_that_wait_for_it(
    http: httpx.AsyncClient,
) -> None:
    behaviour = Behaviour(start_cold=True, load_seconds=0.3)
    async with SimulatedModel("sim", behaviour=behaviour) as sim:
        assert not sim.engine.loaded(sim.behaviour)
        answers = await asyncio.gather(
            *(http.post(sim.base_url + "/chat/completions", json=chat()) for _ in range(3))
        )
        await http.post(sim.base_url + "/chat/completions", json=chat())

    assert [a.status_code for a in answers] == [200] * 3
    assert sim.engine.cold_loads == 1
    cold, warm = sim.chat_requests[:3], sim.chat_requests[3]
    assert all(r.cold_load for r in cold)
    # The load began when the first arrived; all three waited for that one load to end.
    assert min(r.finished_at or 0 for r in cold) - min(r.received_at for r in cold) >= 0.29
    assert not warm.cold_load
    assert warm.waited < 0.3  # no load to wait for


async def test_an_idle_model_unloads_after_unload_after_and_loads_again(
    http: httpx.AsyncClient,
) -> None:
    behaviour = Behaviour(unload_after=0.1, load_seconds=0.05)
    async with SimulatedModel("sim", behaviour=behaviour) as sim:
        await http.post(sim.base_url + "/chat/completions", json=chat())
        await wait_until(lambda: not sim.engine.loaded(sim.behaviour), what="the idle unload")
        await http.post(sim.base_url + "/chat/completions", json=chat())

    assert sim.engine.cold_loads == 1
    assert [r.cold_load for r in sim.chat_requests] == [False, True]


# --- prefix cache ---------------------------------------------------------------------------------


async def test_a_turn_extending_the_previous_one_prefills_only_the_new_part(
    http: httpx.AsyncClient,
) -> None:
    system = {"role": "system", "content": "You are a careful assistant. " * 200}
    behaviour = Behaviour(reply="ok", prefill_seconds_per_1k_tokens=0.5)
    async with SimulatedModel("sim", behaviour=behaviour) as sim:
        turn1 = chat("first question", history=[system])
        answer = (await http.post(sim.base_url + "/chat/completions", json=turn1)).json()
        history = [*turn1["messages"], answer["choices"][0]["message"]]
        await http.post(sim.base_url + "/chat/completions", json=chat("second", history=history))

    first, second = sim.chat_requests
    assert first.cached_tokens == 0
    assert second.cached_tokens == first.prompt_tokens
    assert second.prompt_tokens > first.prompt_tokens
    assert sim.engine.cache_hits == 1
    # Measured at the server: the client's own delays (Nagle, pooling) are not the server's.
    cold, warm = ((r.finished_at or 0) - r.received_at for r in (first, second))
    assert cold >= 0.5
    assert warm * 4 < cold


async def test_unloading_drops_the_prefix_cache(http: httpx.AsyncClient) -> None:
    async with SimulatedModel(
        "sim", behaviour=Behaviour(prefill_seconds_per_1k_tokens=0.001)
    ) as sim:
        await http.post(sim.base_url + "/chat/completions", json=chat("same"))
        sim.engine.unload()
        await http.post(sim.base_url + "/chat/completions", json=chat("same"))

    assert [r.cached_tokens for r in sim.chat_requests] == [0, 0]


# --- context windows ------------------------------------------------------------------------------

LONG = "word " * 300


@pytest.mark.parametrize(
    ("kind", "code"),
    [
        (Kind.OPENAI, "context_length_exceeded"),
        (Kind.VLLM, 400),
    ],
)
async def test_openai_and_vllm_refuse_prompt_plus_max_tokens_over_the_window(
    http: httpx.AsyncClient, kind: Kind, code: object
) -> None:
    async with SimulatedModel("sim", behaviour=Behaviour(kind=kind, context_window=320)) as sim:
        fits = await http.post(sim.base_url + "/chat/completions", json=chat(LONG))
        over = await http.post(sim.base_url + "/chat/completions", json=chat(LONG, max_tokens=100))

    assert fits.status_code == 200
    assert over.status_code == 400
    assert over.json()["error"]["code"] == code
    assert "maximum context length is 320 tokens" in over.json()["error"]["message"]


async def test_llamacpp_refuses_a_prompt_over_its_window(http: httpx.AsyncClient) -> None:
    behaviour = Behaviour(kind=Kind.LLAMACPP, context_window=100)
    async with SimulatedModel("sim", behaviour=behaviour) as sim:
        over = await http.post(sim.base_url + "/chat/completions", json=chat(LONG))

    assert over.status_code == 400
    assert over.json()["error"]["type"] == "exceed_context_size_error"
    assert over.json()["error"]["n_ctx"] == 100


async def test_ollama_cuts_a_prompt_over_its_window_silently(http: httpx.AsyncClient) -> None:
    behaviour = Behaviour(kind=Kind.OLLAMA, context_window=100)
    async with SimulatedModel("sim", behaviour=behaviour) as sim:
        answer = await http.post(sim.base_url + "/chat/completions", json=chat(LONG))
        short = await http.post(sim.base_url + "/chat/completions", json=chat("hi"))

    assert (answer.status_code, short.status_code) == (200, 200)
    assert [r.truncated for r in sim.chat_requests] == [True, False]


# --- status paths per kind ------------------------------------------------------------------------


async def test_ollama_status_paths_follow_residency(http: httpx.AsyncClient) -> None:
    behaviour = Behaviour(kind=Kind.OLLAMA, context_window=8192, trained_context=131072)
    async with SimulatedModel("qwen3", behaviour=behaviour) as sim:
        base = root(sim)
        version = (await http.get(base + "/api/version")).json()
        warm = (await http.get(base + "/api/ps")).json()
        sim.engine.unload()
        cold = (await http.get(base + "/api/ps")).json()
        show = await http.post(base + "/api/show", json={"model": "qwen3:latest"})
        other = await http.post(base + "/api/show", json={"model": "llama3"})

    assert isinstance(version["version"], str)
    assert [(m["name"], m["context_length"]) for m in warm["models"]] == [("qwen3:latest", 8192)]
    assert cold == {"models": []}
    assert show.json()["model_info"]["llama.context_length"] == 131072
    assert other.status_code == 404


async def test_llamacpp_status_paths_show_loading_sleeping_and_busy_slots(
    http: httpx.AsyncClient,
) -> None:
    behaviour = Behaviour(
        kind=Kind.LLAMACPP,
        slots=2,
        context_window=4096,
        start_cold=True,
        load_seconds=0.5,
        first_token_delay=5,
    )
    async with SimulatedModel("sim", behaviour=behaviour) as sim:
        base = root(sim)
        asleep = (await http.get(base + "/props")).json()
        request = asyncio.create_task(http.post(sim.base_url + "/chat/completions", json=chat()))
        await wait_until(sim.engine.loading, what="the load under way")
        loading = await http.get(base + "/health")
        sim.engine.load()
        healthy = await http.get(base + "/health")
        slots = (await http.get(base + "/slots")).json()
        props = (await http.get(base + "/props")).json()
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)

    assert asleep["is_sleeping"] is True
    assert (loading.status_code, loading.json()["error"]["message"]) == (503, "Loading model")
    assert healthy.json() == {"status": "ok"}
    assert [s["is_processing"] for s in slots] == [True, False]
    assert (props["total_slots"], props["default_generation_settings"]["n_ctx"]) == (2, 4096)
    assert props["is_sleeping"] is False


async def test_vllm_metrics_and_models_report_load_and_max_model_len(
    http: httpx.AsyncClient,
) -> None:
    behaviour = Behaviour(kind=Kind.VLLM, slots=1, context_window=32768, first_token_delay=5)
    async with SimulatedModel("org/model", behaviour=behaviour) as sim:
        tasks = [
            asyncio.create_task(http.post(sim.base_url + "/chat/completions", json=chat()))
            for _ in range(3)
        ]
        await engine_holds(sim, 1, 2)
        metrics = (await http.get(root(sim) + "/metrics")).text
        models = (await http.get(sim.base_url + "/models")).json()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    assert 'vllm:num_requests_running{engine="0",model_name="org/model"} 1.0' in metrics
    assert 'vllm:num_requests_waiting{engine="0",model_name="org/model"} 2.0' in metrics
    assert models["data"][0]["max_model_len"] == 32768


async def test_status_paths_of_other_kinds_are_404(http: httpx.AsyncClient) -> None:
    async with SimulatedModel("sim", behaviour=Behaviour(kind=Kind.VLLM)) as sim:
        answers = [
            await http.get(root(sim) + "/api/ps"),
            await http.get(root(sim) + "/props"),
        ]
    async with SimulatedModel("sim") as plain:
        answers.append(await http.get(root(plain) + "/metrics"))
        listing = (await http.get(plain.base_url + "/models")).json()

    assert [a.status_code for a in answers] == [404, 404, 404]
    assert "max_model_len" not in listing["data"][0]

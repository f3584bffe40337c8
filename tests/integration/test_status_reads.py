"""Each kind's status reader against the simulator over real sockets, and the prober feeding what
it learns into a running router's fleet.

The readers go through ``UpstreamClient.status`` (the router's own pool) exactly as the prober
does. Until the ``kind`` config key lands, the router's ``StatusReader.kind_of`` is set per test
(its temporary bridge reads every endpoint as ``openai``).
"""

from __future__ import annotations

import asyncio
import io
from typing import TYPE_CHECKING

import httpx
import orjson
import pytest

from octoroute.config import parse_config
from octoroute.config.schema import EndpointConfig
from octoroute.enums import Kind, LogFormat, Pool
from octoroute.errors import ResponseTooLarge
from octoroute.fleet.facts import UNKNOWN, InstanceFacts
from octoroute.fleet.kinds import read
from octoroute.fleet.kinds.detect import detect
from octoroute.observability.logging import configure_logging
from octoroute.simulator import Behaviour, SimulatedFleet, SimulatedModel
from octoroute.upstream.client import STATUS_MAX_BODY_BYTES, Target, UpstreamClient
from tests.harness import config_for, running_router, wait_until
from tests.misbehaving import Request, chat_script, flood, raw_server

if TYPE_CHECKING:
    from collections.abc import AsyncIterator

    from octoroute.fleet.endpoint import Endpoint
    from octoroute.fleet.kinds import Fetch
    from tests.harness import RouterHandle


@pytest.fixture
async def client() -> AsyncIterator[UpstreamClient]:
    upstream = UpstreamClient()
    await upstream.open()
    try:
        yield upstream
    finally:
        await upstream.close()


def sim_config(sim: SimulatedModel) -> EndpointConfig:
    return EndpointConfig(pool=Pool.FAST, index=0, name=sim.name, base_url=sim.base_url)


def fetch_for(client: UpstreamClient, sim: SimulatedModel) -> Fetch:
    target = Target(sim_config(sim))

    async def fetch(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        return await client.status(target, method, path, body, timeout=2)

    return fetch


# --- each reader against its simulated server -----------------------------------------------------


async def test_ollama_reader_learns_residency_and_keeps_the_loaded_window_when_cold(
    client: UpstreamClient,
) -> None:
    behaviour = Behaviour(kind=Kind.OLLAMA, context_window=8192, trained_context=131072)
    async with SimulatedModel("qwen3", behaviour=behaviour) as sim:
        fetch = fetch_for(client, sim)
        warm = await read(Kind.OLLAMA, fetch, "qwen3", UNKNOWN)
        sim.engine.unload()
        cold = await read(Kind.OLLAMA, fetch, "qwen3", warm)
        never_seen_loaded = await read(Kind.OLLAMA, fetch, "qwen3", UNKNOWN)

    assert warm == InstanceFacts(loaded=True, context_window=8192)
    assert cold == InstanceFacts(loaded=False, context_window=8192)
    assert never_seen_loaded == InstanceFacts(loaded=False, context_window=131072)
    assert [r.path for r in sim.requests] == [
        "/api/ps",
        "/api/ps",
        "/api/show",
        "/api/ps",
        "/api/show",
    ]


async def test_llamacpp_reader_learns_window_slots_and_the_loading_state(
    client: UpstreamClient,
) -> None:
    behaviour = Behaviour(
        kind=Kind.LLAMACPP,
        slots=2,
        context_window=4096,
        start_cold=True,
        load_seconds=30,
        first_token_delay=30,
    )
    async with SimulatedModel("llama", behaviour=behaviour) as sim:
        fetch = fetch_for(client, sim)
        asleep = await read(Kind.LLAMACPP, fetch, "llama", UNKNOWN)
        request = asyncio.create_task(
            client.status(
                Target(
                    EndpointConfig(pool=Pool.FAST, index=0, name="llama", base_url=sim.base_url)
                ),
                "POST",
                "/v1/chat/completions",
                b'{"model":"llama","messages":[{"role":"user","content":"hi"}]}',
                timeout=60,
            )
        )
        await wait_until(sim.engine.loading, what="the load under way")
        loading = await read(Kind.LLAMACPP, fetch, "llama", asleep)
        sim.engine.load()
        busy = await read(Kind.LLAMACPP, fetch, "llama", loading)
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)

    assert asleep == InstanceFacts(loaded=False, context_window=4096, slots_total=2, slots_idle=2)
    assert loading == InstanceFacts(loaded=False, loading=True)
    assert busy == InstanceFacts(loaded=True, context_window=4096, slots_total=2, slots_idle=1)


async def test_vllm_reader_learns_the_queue_and_max_model_len(client: UpstreamClient) -> None:
    behaviour = Behaviour(kind=Kind.VLLM, slots=1, context_window=32768, first_token_delay=30)
    async with SimulatedModel("org/model", behaviour=behaviour) as sim:
        requests = [
            asyncio.create_task(
                client.status(
                    Target(
                        EndpointConfig(pool=Pool.FAST, index=0, name="x", base_url=sim.base_url)
                    ),
                    "POST",
                    "/v1/chat/completions",
                    b'{"model":"org/model","messages":[{"role":"user","content":"hi"}]}',
                    timeout=60,
                )
            )
            for _ in range(2)
        ]
        await wait_until(
            lambda: (sim.engine.running, sim.engine.waiting) == (1, 1),
            what="one running, one queued",
        )
        facts = await read(Kind.VLLM, fetch_for(client, sim), "org/model", UNKNOWN)
        for request in requests:
            request.cancel()
        await asyncio.gather(*requests, return_exceptions=True)

    assert facts == InstanceFacts(
        loaded=True, context_window=32768, running=1, waiting=1, kv_cache_usage=1.0
    )


@pytest.mark.parametrize("kind", list(Kind))
async def test_detect_tells_each_simulated_kind(client: UpstreamClient, kind: Kind) -> None:
    async with SimulatedModel("m", behaviour=Behaviour(kind=kind)) as sim:
        suggestion = await detect(fetch_for(client, sim))

    assert suggestion.kind is kind


# --- the prober feeds a running router --------------------------------------------------------


def kinds_by_name(handle: RouterHandle, kinds: dict[str, Kind]) -> None:
    """Until the ``kind`` key exists: say each endpoint's kind by its model name."""
    handle.runtime.status.kind_of = lambda endpoint: kinds.get(endpoint.name, Kind.OPENAI)


async def rounds(handle: RouterHandle, n: int) -> None:
    """Wait for ``n`` more completed probe rounds."""
    prober = handle.runtime.prober
    async with asyncio.timeout(5):
        await prober.wait_rounds(prober.rounds + n)


def endpoint(handle: RouterHandle, name: str) -> Endpoint:
    return next(e for e in handle.runtime.fleet.all() if e.name == name)


async def test_prober_flips_warm_and_cold_as_the_simulated_models_unload_and_load() -> None:
    fleet = SimulatedFleet(
        fast=[
            SimulatedModel("ollama-m", behaviour=Behaviour(kind=Kind.OLLAMA, context_window=8192))
        ],
        balanced=[
            SimulatedModel(
                "llama-m", behaviour=Behaviour(kind=Kind.LLAMACPP, slots=4, context_window=4096)
            )
        ],
        deep=[SimulatedModel("vllm-m", behaviour=Behaviour(kind=Kind.VLLM, context_window=32768))],
    )
    async with fleet, running_router(config_for(fleet, health_interval_seconds=0.1)) as handle:
        kinds_by_name(
            handle, {"ollama-m": Kind.OLLAMA, "llama-m": Kind.LLAMACPP, "vllm-m": Kind.VLLM}
        )
        await rounds(handle, 2)
        ollama, llama, vllm = (endpoint(handle, n) for n in ("ollama-m", "llama-m", "vllm-m"))
        assert ollama.facts == InstanceFacts(loaded=True, context_window=8192)
        assert llama.facts == InstanceFacts(
            loaded=True, context_window=4096, slots_total=4, slots_idle=4
        )
        assert vllm.facts.loaded is True
        assert vllm.facts.context_window == 32768

        for sim in (fleet.fast[0], fleet.balanced[0]):
            sim.engine.unload()
        await wait_until(
            lambda: ollama.facts.loaded is False and llama.facts.loaded is False,
            what="cold after unload",
        )
        assert ollama.facts.context_window == 8192  # kept from when it was loaded
        assert all(e.healthy for e in handle.runtime.fleet.all())

        for sim in (fleet.fast[0], fleet.balanced[0]):
            sim.engine.load()
        await wait_until(
            lambda: ollama.facts.loaded is True and llama.facts.loaded is True,
            what="warm after load",
        )


async def test_endpoints_on_one_server_share_its_status_answers_within_a_round() -> None:
    async with SimulatedModel(
        "shared", behaviour=Behaviour(kind=Kind.OLLAMA, context_window=2048)
    ) as sim:
        # One Ollama host serving a model per tier: three endpoints, one server.
        tiers = "".join(
            f'[[models.{tier}]]\nname = "{name}"\nbase_url = "{sim.base_url}"\nmax_tokens = 8\n'
            for tier, name in (("fast", "shared"), ("balanced", "other"), ("deep", "third"))
        )
        config = parse_config(
            '[server]\nhost = "127.0.0.1"\nport = 0\n'
            + tiers
            + '[routing]\nstrategy = "rule"\n[health]\ninterval_seconds = 3600\n'
        )
        async with running_router(config) as handle:
            kinds_by_name(
                handle, {"shared": Kind.OLLAMA, "other": Kind.OLLAMA, "third": Kind.OLLAMA}
            )
            await handle.runtime.prober.stop()  # its first round ran before the kinds were set
            sim.reset()
            await handle.runtime.prober.start()
            await rounds(handle, 1)
            facts = [e.facts for e in handle.runtime.fleet.all()]

    assert sum(1 for r in sim.requests if r.path == "/v1/models") == 3
    assert sum(1 for r in sim.requests if r.path == "/api/ps") == 1
    assert sum(1 for r in sim.requests if r.path == "/api/show") == 2  # one per cold model
    assert facts == [
        InstanceFacts(loaded=True, context_window=2048),
        InstanceFacts(loaded=False),
        InstanceFacts(loaded=False),
    ]


async def test_a_status_read_that_learns_nothing_warns_once_keeps_health_and_the_window() -> None:
    out = io.StringIO()
    configure_logging("info", LogFormat.JSON, stream=out, cache=False)
    sim = SimulatedModel("v", behaviour=Behaviour(kind=Kind.VLLM, context_window=16384))
    fleet = SimulatedFleet(fast=[sim], balanced=[SimulatedModel("b")], deep=[SimulatedModel("d")])
    try:
        async with fleet, running_router(config_for(fleet, health_interval_seconds=0.1)) as handle:
            kinds_by_name(handle, {"v": Kind.VLLM})
            instance = endpoint(handle, "v")
            await wait_until(lambda: instance.facts.context_window == 16384, what="window")

            sim.behaviour.kind = Kind.OPENAI  # its status paths now answer 404
            await wait_until(lambda: instance.facts.loaded is None, what="facts forgotten")
            await rounds(handle, 2)

            assert instance.facts == InstanceFacts(context_window=16384)
            assert instance.healthy
            sim.behaviour.kind = Kind.VLLM
            await wait_until(lambda: instance.facts.loaded is True, what="facts learned again")
    finally:
        configure_logging("warning", LogFormat.TEXT, cache=False)
    lines = [orjson.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    warnings = [line for line in lines if line["event"].startswith("status read learned nothing")]
    assert len(warnings) == 1
    assert warnings[0]["kind"] == "vllm"
    assert warnings[0]["level"] == "warning"
    assert warnings[0]["instance"].startswith("127.0.0.1:")
    assert [line["event"] for line in lines if line["event"] == "status read works again"] == [
        "status read works again"
    ]


# --- bounds: connections, time, bytes, shutdown ---------------------------------------------------

CHAT = b'{"model":"m","messages":[{"role":"user","content":"hi"}]}'


def one_connection_target(sim: SimulatedModel) -> Target:
    return Target(
        EndpointConfig(
            pool=Pool.FAST, index=0, name=sim.name, base_url=sim.base_url, max_connections=1
        )
    )


async def test_a_status_read_does_not_wait_for_a_connection_real_traffic_holds(
    client: UpstreamClient,
) -> None:
    behaviour = Behaviour(kind=Kind.VLLM, first_token_delay=30)
    async with SimulatedModel("m", behaviour=behaviour) as sim:
        target = one_connection_target(sim)
        request = asyncio.create_task(client.send(target, CHAT, timeout=60))
        await sim.wait_for_in_flight(1)
        assert target.slots.busy == 1  # the endpoint's one connection is taken

        status, body = await asyncio.wait_for(
            client.status(target, "GET", "/metrics", None, timeout=2), 5
        )
        request.cancel()
        await asyncio.gather(request, return_exceptions=True)

    assert status == 200
    assert b'vllm:num_requests_running{engine="0",model_name="m"} 1.0' in body


async def test_a_hung_status_read_holds_no_connection_real_traffic_needs(
    client: UpstreamClient,
) -> None:
    async with SimulatedModel("m", behaviour=Behaviour(kind=Kind.VLLM, status_hang=True)) as sim:
        target = one_connection_target(sim)
        read_task = asyncio.create_task(client.status(target, "GET", "/metrics", None, timeout=30))
        await sim.wait_for_requests(1, path="/metrics")

        answer = await asyncio.wait_for(client.send(target, CHAT, timeout=5), 5)
        read_task.cancel()
        await asyncio.gather(read_task, return_exceptions=True)

    assert answer.status == 200
    assert target.slots.busy == 0
    assert target.status_slots.busy == 0


async def test_an_endless_status_body_is_cut_at_the_status_bound(client: UpstreamClient) -> None:
    sent = [0]

    async def answer(request: Request, writer: asyncio.StreamWriter) -> None:
        head = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n"
        await flood(writer, head, b"vllm:num_requests_running 1\n", sent, 48 * 1024 * 1024)

    async with raw_server(chat_script(answer)) as server:
        target = Target(EndpointConfig(pool=Pool.FAST, index=0, name="m", base_url=server.base_url))
        with pytest.raises(ResponseTooLarge, match="status answer is not read past"):
            await asyncio.wait_for(client.status(target, "GET", "/metrics", None, timeout=10), 15)

    # Reading stopped at the bound: what went out is the bound plus what socket buffers held.
    assert STATUS_MAX_BODY_BYTES <= sent[0] < 4 * STATUS_MAX_BODY_BYTES


async def test_status_paths_that_hang_bound_each_read_and_hold_up_nothing_else() -> None:
    out = io.StringIO()
    configure_logging("info", LogFormat.JSON, stream=out, cache=False)
    hung = SimulatedModel("o1", behaviour=Behaviour(kind=Kind.OLLAMA, status_hang=True))
    fine = SimulatedModel("v", behaviour=Behaviour(kind=Kind.VLLM, context_window=8192))
    try:
        async with hung, fine:
            # Two endpoints on the hung Ollama host (they share its /api/ps), one vLLM elsewhere.
            config = parse_config(
                '[server]\nhost = "127.0.0.1"\nport = 0\n'
                f'[[models.fast]]\nname = "o1"\nbase_url = "{hung.base_url}"\nmax_tokens = 8\n'
                f'[[models.balanced]]\nname = "o2"\nbase_url = "{hung.base_url}"\n'
                "max_tokens = 8\n"
                f'[[models.deep]]\nname = "v"\nbase_url = "{fine.base_url}"\nmax_tokens = 8\n'
                '[routing]\nstrategy = "rule"\n'
                "[health]\ninterval_seconds = 0.1\nprobe_timeout_seconds = 0.3\n"
            )
            async with running_router(config) as handle:
                kinds_by_name(handle, {"o1": Kind.OLLAMA, "o2": Kind.OLLAMA, "v": Kind.VLLM})
                await rounds(handle, 3)  # each round ends although /api/ps never answers
                vllm_facts = endpoint(handle, "v").facts
                facts = [endpoint(handle, name).facts for name in ("o1", "o2")]
                healthy = [e.healthy for e in handle.runtime.fleet.all()]
                async with httpx.AsyncClient(timeout=5) as http:
                    answer = await http.post(
                        handle.url + "/v1/chat/completions",
                        json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]},
                    )
    finally:
        configure_logging("warning", LogFormat.TEXT, cache=False)

    assert vllm_facts.loaded is True
    assert vllm_facts.context_window == 8192
    assert facts == [UNKNOWN, UNKNOWN]
    assert all(healthy)
    assert answer.status_code == 200
    lines = [orjson.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    warnings = [line for line in lines if line["event"].startswith("status read learned nothing")]
    assert sorted(line["endpoint"] for line in warnings) == ["o1", "o2"]
    for line in warnings:
        # Said the same way for the endpoint that asked and the one that waited for its answer.
        assert line["reason"] == (
            "the status read took longer than 0.3 s "
            "(Ollama 0.32.4 and later hold /api/ps while a model loads)"
        )


async def test_a_busy_endpoint_whose_connections_are_all_taken_still_has_its_load_read() -> None:
    # Its probe cannot get a connection (inconclusive, health untouched); the status read has a
    # connection of its own, so placement hears "one running" instead of the idle it last saw.
    sim = SimulatedModel(
        "v",
        behaviour=Behaviour(kind=Kind.VLLM, slots=1, first_token_delay=30),
        config_keys={"max_connections": 1},
    )
    fleet = SimulatedFleet(fast=[sim], balanced=[SimulatedModel("b")], deep=[SimulatedModel("d")])
    extra = "[health]\ninterval_seconds = 0.1\nprobe_timeout_seconds = 0.2\n"
    async with fleet, running_router(config_for(fleet, strategy="rule", extra=extra)) as handle:
        kinds_by_name(handle, {"v": Kind.VLLM})
        instance = endpoint(handle, "v")
        await wait_until(lambda: instance.facts.running == 0, what="the idle server read")
        async with httpx.AsyncClient(timeout=60) as http:
            request = asyncio.create_task(
                http.post(
                    handle.url + "/v1/chat/completions",
                    json={"model": "fast", "messages": [{"role": "user", "content": "hi"}]},
                )
            )
            await sim.wait_for_in_flight(1)
            await wait_until(lambda: instance.facts.running == 1, what="the busy server read")
            await rounds(handle, 4)  # more than eject_after: a busy endpoint is not a failing one
            assert instance.healthy
            assert instance.facts.running == 1
            request.cancel()
            await asyncio.gather(request, return_exceptions=True)


async def test_stopping_the_router_during_a_hung_status_read_leaves_nothing_behind() -> None:
    sim = SimulatedModel("o", behaviour=Behaviour(kind=Kind.OLLAMA, status_hang=True))
    fleet = SimulatedFleet(fast=[sim], balanced=[SimulatedModel("b")], deep=[SimulatedModel("d")])
    extra = "[health]\ninterval_seconds = 0.1\nprobe_timeout_seconds = 30\n"
    async with fleet:
        async with running_router(config_for(fleet, strategy="rule", extra=extra)) as handle:
            kinds_by_name(handle, {"o": Kind.OLLAMA})
            await sim.wait_for_requests(1, path="/api/ps")
            prober = handle.runtime.prober
        # The read was cancelled with the prober, its connection dropped, not pooled or leaked.
        await sim.wait_for_disconnects(1)
        assert not prober.running
        left = [
            task
            for task in asyncio.all_tasks()
            if task is not asyncio.current_task()
            and "octoroute" in repr(task.get_coro())
            and "simulator" not in repr(task.get_coro())
        ]
        assert left == []


async def test_vllm_reader_sees_a_sleeping_engine_as_cold_until_it_wakes(
    client: UpstreamClient,
) -> None:
    behaviour = Behaviour(kind=Kind.VLLM, context_window=4096, start_cold=True, load_seconds=0.05)
    async with SimulatedModel("m", behaviour=behaviour) as sim:
        fetch = fetch_for(client, sim)
        asleep = await read(Kind.VLLM, fetch, "m", UNKNOWN)
        await client.send(Target(sim_config(sim)), CHAT, timeout=5)  # wakes it (a cold load)
        awake = await read(Kind.VLLM, fetch, "m", asleep)

    assert (asleep.loaded, asleep.context_window) == (False, 4096)
    assert (awake.loaded, awake.context_window) == (True, 4096)

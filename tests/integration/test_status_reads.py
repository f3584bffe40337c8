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

import orjson
import pytest

from octoroute.config import parse_config
from octoroute.config.schema import EndpointConfig
from octoroute.enums import Kind, LogFormat, Pool
from octoroute.fleet.facts import UNKNOWN, InstanceFacts
from octoroute.fleet.kinds import read
from octoroute.fleet.kinds.detect import detect
from octoroute.observability.logging import configure_logging
from octoroute.simulator import Behaviour, SimulatedFleet, SimulatedModel
from octoroute.upstream.client import Target, UpstreamClient
from tests.harness import config_for, running_router, wait_until

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


def fetch_for(client: UpstreamClient, sim: SimulatedModel) -> Fetch:
    config = EndpointConfig(
        pool=Pool.FAST, index=0, name=sim.name, base_url=sim.base_url, max_tokens=8
    )
    target = Target(config)

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
        await sim.wait_for_in_flight(1)
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
        await sim.wait_for_in_flight(2)
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

"""``[state] redis_url`` with a real ``redis-server``: the same limits as in one process, shared
by two router processes, leases that outlive a crashed router by their TTL only, and Redis
stopped, frozen or refusing mid-run without a single failed request."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import httpx
import orjson
import pytest
from redis.asyncio import Redis

from octoroute.access.limits import CONCURRENT, REQUESTS, TOKENS, Limits, LocalLimiter, Verdict
from octoroute.access.redis_store import LEASE_SECONDS, RedisLimiter, bucket_keys
from octoroute.config import parse_config
from octoroute.simulator import SimulatedFleet, fleet_config_toml
from tests.harness import running_router, wait_until
from tests.integration.test_auth import (
    ALICE,
    auth_section,
    chat_body,
    holding_a_stream,
    json_logs,
    keyed_config,
    sample,
)
from tests.integration.test_cli import ServerProcess, serve_process
from tests.redis_server import RedisServer, started_redis


@pytest.fixture
async def redis(tmp_path: Path) -> AsyncIterator[RedisServer]:
    async with started_redis(tmp_path) as server:
        yield server


class Store:
    """One limiter behind one async interface, on a clock the test moves (milliseconds)."""

    def __init__(self) -> None:
        self.now_ms = 1_000_000
        self.check: Callable[[str, Limits, int, str], Awaitable[Verdict]] | None = None
        self._leases = 0

    async def acquire(self, limits: Limits, cost: int = 0, name: str = "alice") -> Verdict:
        assert self.check is not None
        self._leases += 1
        return await self.check(name, limits, cost, f"test:{self._leases}")


@pytest.fixture(params=["local", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Store]:
    """The same scenarios against both stores: they must agree to the token."""
    store = Store()
    if request.param == "local":
        local = LocalLimiter(lambda: store.now_ms / 1000)

        async def check(name: str, limits: Limits, cost: int, lease: str) -> Verdict:
            return local.acquire(name, limits, cost)

        store.check = check
        yield store
        return
    async with started_redis(tmp_path) as server:
        shared = RedisLimiter(server.url, now_ms=lambda: store.now_ms)
        store.check = shared.acquire
        try:
            yield store
        finally:
            await shared.close()


async def test_both_stores_refuse_and_refill_requests_alike(store: Store) -> None:
    limits = Limits(requests_per_minute=3)

    verdicts = [await store.acquire(limits) for _ in range(4)]
    store.now_ms += 19_999
    early = await store.acquire(limits)
    store.now_ms += 2
    refilled = await store.acquire(limits)

    assert [v.refused for v in verdicts] == [None, None, None, REQUESTS]
    assert [v.requests.remaining for v in verdicts if v.requests] == [2, 1, 0, 0]
    assert verdicts[3].retry_after == pytest.approx(20.0)
    assert early.refused == REQUESTS
    assert refilled.refused is None


async def test_both_stores_charge_tokens_alike(store: Store) -> None:
    limits = Limits(requests_per_minute=100, tokens_per_minute=600)

    first = await store.acquire(limits, 500)
    refused = await store.acquire(limits, 200)
    store.now_ms += 10_000
    fits = await store.acquire(limits, 200)
    too_large = await store.acquire(limits, 601)

    assert first.tokens is not None
    assert first.tokens.remaining == 100
    assert refused.refused == TOKENS
    assert refused.retry_after == pytest.approx(10.0)
    assert refused.requests is not None
    assert refused.requests.remaining == 99  # nothing was taken
    assert fits.refused is None
    assert too_large.refused == TOKENS
    assert too_large.retry_after is None


async def test_both_stores_count_keys_apart(store: Store) -> None:
    limits = Limits(requests_per_minute=1)

    assert (await store.acquire(limits, name="alice")).refused is None
    assert (await store.acquire(limits, name="bob")).refused is None
    assert (await store.acquire(limits, name="alice")).refused == REQUESTS


async def test_a_lease_outlives_a_crashed_router_by_its_ttl_only(redis: RedisServer) -> None:
    now = [0]
    shared = RedisLimiter(redis.url, now_ms=lambda: now[0])
    limits = Limits(max_concurrent=1)
    try:
        assert (await shared.acquire("alice", limits, 0, "crashed:1")).refused is None
        now[0] = int(LEASE_SECONDS * 1000) - 1
        held = await shared.acquire("alice", limits, 0, "other:1")
        now[0] = int(LEASE_SECONDS * 1000) + 1
        expired = await shared.acquire("alice", limits, 0, "other:2")
    finally:
        await shared.close()

    assert held.refused == CONCURRENT
    assert expired.refused is None


async def test_renewed_leases_stay_and_released_ones_go(redis: RedisServer) -> None:
    now = [0]
    shared = RedisLimiter(redis.url, now_ms=lambda: now[0])
    limits = Limits(max_concurrent=2)
    try:
        await shared.acquire("alice", limits, 0, "a:1")
        await shared.acquire("alice", limits, 0, "a:2")
        now[0] = 20_000
        await shared.renew([("alice", "a:1")])
        now[0] = 40_000  # a:2 expired at 30 s, a:1 lives until 50 s
        one_free = await shared.acquire("alice", limits, 0, "a:3")
        full = await shared.acquire("alice", limits, 0, "a:4")
        await shared.release("alice", "a:1")
        freed = await shared.acquire("alice", limits, 0, "a:5")
    finally:
        await shared.close()

    assert one_free.refused is None
    assert full.refused == CONCURRENT
    assert freed.refused is None


async def test_redis_forgets_an_idle_key(redis: RedisServer) -> None:
    shared = RedisLimiter(redis.url)
    client = redis.client()
    try:
        await shared.acquire("alice", Limits(requests_per_minute=5, max_concurrent=1), 0, "x:1")
        requests_ttl = await client.pttl(bucket_keys("alice")[0])
        lease_ttl = await client.pttl(bucket_keys("alice")[2])
    finally:
        await shared.close()
        await client.aclose()

    assert 0 < requests_ttl <= 61_000
    assert 0 < lease_ttl <= LEASE_SECONDS * 1000


# --- routers ------------------------------------------------------------------------------------


def shared_auth(redis: RedisServer, alice: str) -> str:
    return auth_section(alice) + f'\n[state]\nredis_url = "{redis.url}"\n'


async def ask(http: httpx.AsyncClient, router_url: str, **extra: object) -> httpx.Response:
    body = chat_body(model="fast")
    body.update(extra)
    return await http.post(
        router_url + "/v1/chat/completions", json=body, headers={"x-api-key": ALICE}
    )


@asynccontextmanager
async def two_routers(
    fleet: SimulatedFleet, redis: RedisServer, tmp_path: Path, alice: str
) -> AsyncIterator[tuple[ServerProcess, ServerProcess]]:
    """Two ``octoroute serve`` processes with one config: alice's ``alice`` limit, in ``redis``."""
    config = tmp_path / "config.toml"
    extra = shared_auth(redis, alice) + '\n[observability]\nlog_format = "json"\n'
    config.write_text(fleet_config_toml(fleet, strategy="rule", extra=extra))
    async with serve_process(config) as first, serve_process(config) as second:
        yield first, second


async def test_two_router_processes_share_one_rate_limit(
    redis: RedisServer, fleet: SimulatedFleet, tmp_path: Path
) -> None:
    async with (
        two_routers(fleet, redis, tmp_path, "requests_per_minute = 4") as (first, second),
        httpx.AsyncClient(timeout=10) as http,
    ):
        answers = [await ask(http, url) for url in (first.url, second.url, first.url, second.url)]
        over = [await ask(http, first.url), await ask(http, second.url)]

    assert [a.status_code for a in answers] == [200, 200, 200, 200]
    assert [a.headers["x-ratelimit-remaining-requests"] for a in answers] == ["3", "2", "1", "0"]
    assert [a.status_code for a in over] == [429, 429]
    assert all(a.json()["error"]["type"] == "requests" for a in over)


async def test_two_router_processes_share_one_concurrency_limit(
    redis: RedisServer, fleet: SimulatedFleet, tmp_path: Path
) -> None:
    for model in fleet.fast:
        model.behaviour.token_gap = 30.0
    async with (
        two_routers(fleet, redis, tmp_path, "max_concurrent = 1") as (first, second),
        httpx.AsyncClient(timeout=10) as http,
    ):
        async with holding_a_stream(http, first.url, ALICE):
            busy = await ask(http, second.url, max_tokens=1)
        for model in fleet.fast:
            model.behaviour.token_gap = 0.0
        deadline = time.monotonic() + 10
        while (after := await ask(http, second.url)).status_code == 429:
            assert time.monotonic() < deadline, "the first router never gave its lease back"
            await asyncio.sleep(0.05)

    assert busy.status_code == 429
    assert busy.json()["error"]["type"] == "concurrent_requests"
    assert after.status_code == 200


async def test_redis_stopped_mid_run_fails_no_request_and_is_used_again_when_back(
    redis: RedisServer, fleet: SimulatedFleet
) -> None:
    client = redis.client()
    with json_logs() as out:
        try:
            config = keyed_config(fleet, shared_auth(redis, "requests_per_minute = 100"))
            async with running_router(config) as router, httpx.AsyncClient(timeout=10) as http:
                assert router.runtime.limiter.shared
                shared = await ask(http, router.url)
                counted = await client.exists(bucket_keys("alice")[0])
                await redis.stop()
                started = time.monotonic()
                fallen_back = [await ask(http, router.url) for _ in range(3)]
                took = time.monotonic() - started
                down = (
                    sample(router, "octoroute_state_fallbacks_total"),
                    sample(router, "octoroute_state_shared"),
                )
                await redis.start()
                await client.aclose()
                client = redis.client()
                await wait_until(
                    lambda: router.runtime.limiter.shared, timeout=10, what="Redis back"
                )
                recovered = await ask(http, router.url)
                counted_again = await client.exists(bucket_keys("alice")[0])
                up = sample(router, "octoroute_state_shared")
        finally:
            await client.aclose()
    events = [
        orjson.loads(line)["event"] for line in out.getvalue().splitlines() if line.startswith("{")
    ]

    assert shared.status_code == 200
    assert counted == 1
    assert [a.status_code for a in fallen_back] == [200, 200, 200]
    assert took < 2
    assert down == (3.0, 0.0)
    assert recovered.status_code == 200
    assert counted_again == 1
    assert up == 1.0
    assert events.count("shared state unreachable: counting client-key limits in this process") == 1
    assert "shared state reachable again: client-key limits are shared" in events


async def test_a_frozen_redis_costs_a_request_its_timeout_not_its_answer(
    redis: RedisServer, fleet: SimulatedFleet
) -> None:
    config = keyed_config(fleet, shared_auth(redis, "requests_per_minute = 100"))
    async with running_router(config) as router, httpx.AsyncClient(timeout=10) as http:
        assert (await ask(http, router.url)).status_code == 200
        redis.pause()
        try:
            started = time.monotonic()
            frozen = await ask(http, router.url)
            took = time.monotonic() - started
            after = await ask(http, router.url)
        finally:
            redis.resume()
        await wait_until(lambda: router.runtime.limiter.shared, timeout=10, what="Redis back")

    assert frozen.status_code == 200
    assert after.status_code == 200
    assert took < 1.5
    assert frozen.headers["x-ratelimit-limit-requests"] == "100"


async def test_a_redis_refusing_the_router_is_a_fallback_too_and_its_password_is_read(
    fleet: SimulatedFleet, tmp_path: Path
) -> None:
    async with started_redis(tmp_path, password="s3cret-pw") as locked:
        refused_config = keyed_config(fleet, shared_auth(locked, "requests_per_minute = 2"))
        with_password = fleet_config_toml(
            fleet,
            strategy="rule",
            extra=shared_auth(locked, "requests_per_minute = 2") + 'password_env = "REDIS_PW"\n',
        )
        async with running_router(refused_config) as router, httpx.AsyncClient() as http:
            refused = [await ask(http, router.url) for _ in range(3)]
            shared = router.runtime.limiter.shared
            fallbacks = sample(router, "octoroute_state_fallbacks_total")
        config = parse_config(with_password, environ={"REDIS_PW": "s3cret-pw"})
        async with running_router(config) as router, httpx.AsyncClient() as http:
            accepted = await ask(http, router.url)
            shared_with_password = router.runtime.limiter.shared

    assert [a.status_code for a in refused] == [200, 200, 429]
    assert not shared
    assert fallbacks == 3.0
    assert accepted.status_code == 200
    assert shared_with_password


async def test_without_redis_each_router_counts_on_its_own(fleet: SimulatedFleet) -> None:
    config = keyed_config(fleet, auth_section("requests_per_minute = 1"))
    async with (
        running_router(config) as first,
        running_router(config) as second,
        httpx.AsyncClient() as http,
    ):
        answers = [await ask(http, r.url) for r in (first, second, first)]

    assert [a.status_code for a in answers] == [200, 200, 429]
    assert sample(first, "octoroute_state_shared") == 0.0


async def leases_once_settled(client: Redis, leases: str, seconds: float = 5.0) -> int:
    """The leases in ``leases`` once none is left, or as many as are left after ``seconds``
    (well under LEASE_SECONDS, so a lease left to expire is still counted)."""
    deadline = time.monotonic() + seconds
    for _ in range(int(seconds / 0.02)):
        held = int(await client.zcard(leases))
        if held == 0 or time.monotonic() > deadline:
            return held
        await asyncio.sleep(0.02)
    return int(await client.zcard(leases))


async def test_a_lease_taken_by_an_answer_that_came_too_late_is_given_back_when_redis_is_back(
    redis: RedisServer, fleet: SimulatedFleet
) -> None:
    """A frozen Redis runs the limit script when it thaws, after the router gave up on it and
    counted locally: the lease it took there must not hold the key's only slot for
    LEASE_SECONDS."""
    client = redis.client()
    leases = bucket_keys("alice")[2]
    config = keyed_config(fleet, shared_auth(redis, "max_concurrent = 1"))
    async with running_router(config) as router, httpx.AsyncClient(timeout=10) as http:
        assert (await ask(http, router.url)).status_code == 200
        redis.pause()
        try:
            frozen = await ask(http, router.url)
        finally:
            redis.resume()
        await wait_until(lambda: router.runtime.limiter.shared, timeout=10, what="Redis back")
        held = await leases_once_settled(client, leases)
        after = await ask(http, router.url)
    await client.aclose()

    assert frozen.status_code == 200
    assert held == 0, "the thawed script's lease still holds the key's slot"
    assert after.status_code == 200


async def test_a_client_gone_while_redis_answers_leaves_no_lease_behind(
    redis: RedisServer, fleet: SimulatedFleet
) -> None:
    """The client hangs up while its check waits on a frozen Redis (the handler is cancelled):
    the lease the script takes when Redis thaws is removed, the key's only slot is free."""
    client = redis.client()
    leases = bucket_keys("alice")[2]
    config = keyed_config(fleet, shared_auth(redis, "max_concurrent = 1"))
    async with running_router(config) as router, httpx.AsyncClient(timeout=10) as http:
        assert (await ask(http, router.url)).status_code == 200
        redis.pause()
        try:
            async with httpx.AsyncClient(timeout=0.05) as impatient:
                with pytest.raises(httpx.TimeoutException):
                    await ask(impatient, router.url)
        finally:
            redis.resume()
        held = await leases_once_settled(client, leases)
        await wait_until(lambda: router.runtime.limiter.shared, timeout=10, what="Redis used")
        after = await ask(http, router.url)
    await client.aclose()

    assert held == 0, "the hung-up request's lease still holds the key's slot"
    assert after.status_code == 200

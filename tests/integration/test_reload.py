"""Live reload in one process, over real sockets: ``POST /admin/reload`` and ``watch_config``.

The router serves a configuration file on disk; a test rewrites the file and reloads, then
checks what the next request sees, what a request already under way sees, and what became of
each endpoint's state. The simulated model servers play the fleet; waits are conditions with
deadlines.
"""

from __future__ import annotations

import asyncio
import io
import os
import threading
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from hashlib import sha256
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest
from openai import AsyncOpenAI
from openai.types.chat import ChatCompletionMessageParam

from octoroute.config import load_config
from octoroute.config_watch import THREAD_NAME
from octoroute.enums import LogFormat, Pool, Tier
from octoroute.fleet.endpoint import Admission, Endpoint
from octoroute.observability.logging import configure_logging
from octoroute.observability.metrics import instance_label
from octoroute.simulator import HttpError, SimulatedFleet, SimulatedModel, fleet_config_toml
from tests.harness import (
    RouterHandle,
    config_for,
    first_probe_round,
    running_router,
    wait_until,
)

HELLO: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hello there"}]
NOT_A_CERTIFICATE = "-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n"
QUIET_HEALTH = "[health]\ninterval_seconds = 300\n"
"""No probe round during a test but the start-up one: a probe seen later was asked for."""


def write(path: Path, fleet: SimulatedFleet, extra: str = QUIET_HEALTH, **options: Any) -> None:
    """``fleet``'s configuration (strategy ``rule``), with ``extra`` sections, into ``path``."""
    path.write_text(fleet_config_toml(fleet, strategy="rule", extra=extra, **options))


def edit(path: Path, *replacements: tuple[str, str], append: str = "") -> None:
    """Rewrite ``path`` with each ``(old, new)`` replaced (each must occur) and ``append``."""
    text = path.read_text()
    for old, new in replacements:
        assert old in text, old
        text = text.replace(old, new)
    path.write_text(text + append)


def move_away(path: Path) -> None:
    path.rename(path.with_suffix(".gone"))


@asynccontextmanager
async def serving(path: Path) -> AsyncIterator[RouterHandle]:
    """The router on the file ``path``, its start-up probe round done."""
    async with running_router(load_config(path)) as router:
        await first_probe_round(router)
        yield router


async def reload(session: aiohttp.ClientSession, router: RouterHandle) -> tuple[int, Any]:
    async with session.post(router.url + "/admin/reload") as response:
        assert response.content_type == "application/json"
        return response.status, await response.json()


async def chat(
    session: aiohttp.ClientSession, router: RouterHandle, model: str
) -> tuple[int, str | None]:
    """The status of a chat request for ``model``, and the endpoint that answered it."""
    body = {"model": model, "messages": HELLO}
    async with session.post(router.v1 + "/chat/completions", json=body) as response:
        await response.read()
        return response.status, response.headers.get("x-octoroute-endpoint")


async def refusal(
    session: aiohttp.ClientSession, router: RouterHandle, model: str
) -> tuple[int, str, str]:
    """The status, error code and message of a chat request for ``model`` that fails."""
    body = {"model": model, "messages": HELLO}
    async with session.post(router.v1 + "/chat/completions", json=body) as response:
        error = (await response.json())["error"]
        return response.status, error["code"], error["message"]


@contextmanager
def json_logs() -> Iterator[io.StringIO]:
    """The router's log lines as JSON, for the block."""
    out = io.StringIO()
    configure_logging("info", LogFormat.JSON, stream=out, cache=False)
    try:
        yield out
    finally:
        configure_logging("warning", LogFormat.TEXT, cache=False)


def log_lines(out: io.StringIO) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]


def events(out: io.StringIO, event: str) -> list[dict[str, Any]]:
    return [line for line in log_lines(out) if line["event"] == event]


def the(router: RouterHandle, name: str) -> Endpoint:
    (only,) = router.runtime.fleet.by_name(name)
    return only


def series(router: RouterHandle, endpoint: Endpoint) -> float | None:
    """``octoroute_endpoint_healthy`` of ``endpoint``, ``None`` when the series does not exist."""
    labels = {
        "tier": endpoint.pool.value,
        "endpoint": endpoint.name,
        "instance": instance_label(endpoint.config),
    }
    return router.runtime.metrics.registry.get_sample_value("octoroute_endpoint_healthy", labels)


@pytest.fixture
def config_path(tmp_path: Path) -> Path:
    return tmp_path / "config.toml"


# --- what the next request sees ------------------------------------------------------------------


async def test_an_alias_and_a_routing_default_apply_to_the_next_request(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    write(config_path, fleet)
    async with (
        serving(config_path) as router,
        AsyncOpenAI(base_url=router.v1, api_key="unused", max_retries=0) as client,
    ):
        assert (await chat(session, router, "house-model"))[0] == 404
        write(
            config_path,
            fleet,
            extra=QUIET_HEALTH + '[aliases]\n"house-model" = "sim-deep"\n',
            default_importance="high",
        )

        status, body = await reload(session, router)
        answer = await client.chat.completions.create(model="house-model", messages=HELLO)
        async with session.post(
            router.url + "/route", json={"model": "auto", "messages": HELLO}
        ) as dry_run:
            decision = await dry_run.json()

    assert status == 200
    assert body["status"] == "reloaded"
    assert body["generation"] == 2
    assert body["changed"] == ["routing.default_importance", 'aliases."house-model"']
    assert body["problems"] == []
    assert body["restart_needed"] == []
    assert body["endpoints"]["added"] == []
    assert body["endpoints"]["removed"] == []
    assert [e["id"] for e in body["endpoints"]["kept"]] == [
        "fast[0]", "fast[1]", "balanced[0]", "deep[0]",
    ]  # fmt: skip
    assert answer.model == "sim-deep"
    assert answer.choices[0].message.content
    assert decision["importance"] == "high"


async def test_reloading_an_unchanged_file_changes_nothing(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    write(config_path, fleet)
    async with serving(config_path) as router:
        before = (router.runtime.fleet, router.runtime.catalog, router.runtime.config)

        status, body = await reload(session, router)

        after = (router.runtime.fleet, router.runtime.catalog, router.runtime.config)
    assert (status, body["status"], body["generation"], body["changed"]) == (
        200,
        "unchanged",
        1,
        [],
    )
    assert all(old is new for old, new in zip(before, after, strict=True))


# --- a file that cannot be used ------------------------------------------------------------------


async def test_a_broken_file_is_refused_with_every_problem_and_the_old_one_keeps_serving(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    write(config_path, fleet, extra=QUIET_HEALTH + '[aliases]\n"house-model" = "fast"\n')
    async with serving(config_path) as router:
        edit(
            config_path,
            ('strategy = "rule"', 'strategy = "smart"'),
            ("[health]\n", "[health]\nfailure_threshold = 0\nprobes_per_minute = 2\n"),
            ('"house-model" = "fast"', '"house-model" = "no-such-model"'),
        )
        with json_logs() as out:
            status, body = await reload(session, router)
        still = await chat(session, router, "house-model")

    assert status == 422
    assert body["status"] == "rejected"
    assert body["error"]["code"] == "config_invalid"
    assert body["error"]["message"].startswith(f"{config_path}: 4 problems; the router keeps")
    problems = body["problems"]
    assert [problem.split(":")[0] for problem in problems] == [
        "routing.strategy",
        "health.failure_threshold",
        "health.probes_per_minute",
        'aliases."house-model"',
    ]
    assert body["generation"] == 1
    assert body["changed"] == []
    logged = events(out, "config reload: problem in the file")
    assert [line["problem"] for line in logged] == problems
    assert all(line["level"] == "error" for line in logged)
    (summary,) = events(out, "config reload rejected; still running the previous configuration")
    assert summary["problems"] == 4
    assert still[0] == 200  # the old alias still leads to the fast tier
    assert still[1] in ("sim-fast-a", "sim-fast-b")
    assert router.runtime.generation == 1


async def test_an_unreadable_file_is_refused_and_named(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    write(config_path, fleet)
    async with serving(config_path) as router:
        edit(config_path, ("[server]", "[server"))
        status, body = await reload(session, router)
        move_away(config_path)
        missing_status, missing = await reload(session, router)
        alive = await chat(session, router, "fast")

    assert status == 422
    (problem,) = body["problems"]
    assert problem.startswith(f"{config_path}: invalid TOML at line 2, column 8")
    assert missing_status == 422
    assert missing["problems"][0].startswith(f"{config_path}: file not found")
    assert alive[0] == 200


async def test_a_file_nested_too_deeply_to_parse_is_refused_not_a_server_error(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    write(config_path, fleet)
    async with serving(config_path) as router:
        edit(config_path, append="[extra]\nx = " + "[" * 5000 + "]" * 5000 + "\n")
        status, body = await reload(session, router)
        alive = await chat(session, router, "fast")

    assert status == 422
    assert body["problems"] == [
        f"{config_path}: invalid TOML: arrays or inline tables nested too deeply to read"
    ]
    assert alive[0] == 200


async def test_a_tls_file_that_cannot_be_loaded_refuses_the_reload(
    fleet: SimulatedFleet, config_path: Path, tmp_path: Path, session: aiohttp.ClientSession
) -> None:
    write(config_path, fleet)
    bundle = tmp_path / "ca.pem"
    bundle.write_text(NOT_A_CERTIFICATE)
    extra_endpoint = (
        '\n[[models.deep]]\nname = "tls-deep"\nbase_url = "https://127.0.0.1:9/v1"\n'
        f'max_tokens = 64\ntls_ca_file = "{bundle}"\n'
    )
    async with serving(config_path) as router:
        edit(config_path, ("\n[routing]", extra_endpoint + "\n[routing]"))
        status, body = await reload(session, router)

    assert status == 422
    (problem,) = body["problems"]
    assert problem.startswith("models.deep[1]: its TLS files cannot be loaded (")
    assert router.runtime.generation == 1


# --- endpoints: kept, removed, added -------------------------------------------------------------


async def test_an_ejected_endpoint_stays_ejected_and_unhealthy_across_a_reload(
    config_path: Path, session: aiohttp.ClientSession
) -> None:
    broken = SimulatedModel("sim-broken")
    broken.behaviour.fault = HttpError(500)
    fleet = SimulatedFleet(
        fast=[broken, SimulatedModel("sim-fast")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
    )
    health = "[health]\ninterval_seconds = 300\neject_after_failures = 1\nfailure_threshold = 1\n"
    health += "eject_base_seconds = 60\n"
    async with fleet:
        write(config_path, fleet, extra=health)
        async with serving(config_path) as router:
            victim = the(router, "sim-broken")
            assert (await chat(session, router, "sim-broken"))[0] == 502
            ejected_until = victim.ejected_until
            assert (victim.admission, victim.healthy) == (Admission.EJECTED, False)
            broken.config_keys["weight"] = 3.0  # a setting that is not part of its identity
            write(config_path, fleet, extra=health.replace("300", "200"))

            status, body = await reload(session, router)
            kept = the(router, "sim-broken")
            refused = await chat(session, router, "sim-broken")
            async with session.get(router.url + "/models") as listing:
                shown = {e["id"]: e for e in (await listing.json())["models"]}

    assert status == 200
    assert "models.fast[0].weight" in body["changed"]
    assert "health.interval_seconds" in body["changed"]
    assert kept is victim
    assert (kept.admission, kept.healthy, kept.weight) == (Admission.EJECTED, False, 3.0)
    assert kept.ejected_until == ejected_until
    assert refused[0] == 503
    assert len(broken.chat_requests) == 1  # never tried again while ejected
    assert (shown["fast[0]"]["state"], shown["fast[0]"]["healthy"]) == ("ejected", False)


async def test_a_stream_under_way_finishes_on_a_removed_endpoint_which_then_drains(
    config_path: Path, session: aiohttp.ClientSession
) -> None:
    reply = " ".join(f"word{i}" for i in range(30))
    old = SimulatedModel("sim-deep-old")
    old.behaviour.reply = reply
    old.behaviour.token_gap = 0.03
    new = SimulatedModel("sim-deep-new")
    fast, balanced = SimulatedModel("sim-fast"), SimulatedModel("sim-balanced")
    every = SimulatedFleet(fast=[fast], balanced=[balanced], deep=[old, new])
    before = SimulatedFleet(fast=[fast], balanced=[balanced], deep=[old])
    after = SimulatedFleet(fast=[fast], balanced=[balanced], deep=[new])
    async with every:
        write(config_path, before)
        with json_logs() as out:
            async with (
                serving(config_path) as router,
                AsyncOpenAI(base_url=router.v1, api_key="unused", max_retries=0) as client,
            ):
                removed = the(router, "sim-deep-old")
                target = router.runtime.lanes[removed].target
                stream = await client.chat.completions.create(
                    model="deep", messages=HELLO, stream=True
                )
                pieces = []
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        pieces.append(chunk.choices[0].delta.content)
                        break
                write(config_path, after)

                status, body = await reload(session, router)
                during = await chat(session, router, "deep")
                still_draining = removed in router.runtime.lanes
                async for chunk in stream:
                    if chunk.choices and chunk.choices[0].delta.content:
                        pieces.append(chunk.choices[0].delta.content)
                await wait_until(lambda: removed not in router.runtime.lanes, what="drained")
                gone = series(router, removed)
                idle = router.runtime.client.idle_connections(target)

    assert status == 200
    (gone_entry,) = body["endpoints"]["removed"]
    assert (gone_entry["name"], gone_entry["in_flight"]) == ("sim-deep-old", 1)
    assert [e["name"] for e in body["endpoints"]["added"]] == ["sim-deep-new"]
    assert "".join(pieces) == reply  # the stream finished where it started, whole
    assert len(old.chat_requests) == 1
    assert during == (200, "sim-deep-new")
    assert still_draining
    assert removed.retired
    assert gone is None  # its series went with it
    assert idle == 0
    (drained,) = events(out, "endpoint drained")
    assert drained["endpoint"] == "sim-deep-old"


async def test_a_request_waiting_for_a_model_the_reload_removes_is_not_given_another_model(
    config_path: Path, session: aiohttp.ClientSession
) -> None:
    # The fast tier is one model, so a request waiting for that model by name and one waiting
    # for the tier wait for the same instance, until the reload puts another model there.
    old = SimulatedModel("sim-fast-old", config_keys={"max_concurrent": 1})
    old.behaviour.reply = " ".join(f"word{i}" for i in range(30))
    old.behaviour.token_gap = 0.03
    new = SimulatedModel("sim-fast-new", config_keys={"max_concurrent": 1})
    balanced, deep = SimulatedModel("sim-balanced"), SimulatedModel("sim-deep")
    async with SimulatedFleet(fast=[old, new], balanced=[balanced], deep=[deep]):
        write(config_path, SimulatedFleet(fast=[old], balanced=[balanced], deep=[deep]))
        async with (
            serving(config_path) as router,
            AsyncOpenAI(base_url=router.v1, api_key="unused", max_retries=0) as client,
        ):
            stream = await client.chat.completions.create(model="fast", messages=HELLO, stream=True)
            first = await anext(aiter(stream))  # it holds the only slot until it ends
            by_name = asyncio.ensure_future(refusal(session, router, "sim-fast-old"))
            by_tier = asyncio.ensure_future(chat(session, router, "fast"))
            await wait_until(lambda: router.runtime.dispatcher.depth(Pool.FAST) == 2)
            write(config_path, SimulatedFleet(fast=[new], balanced=[balanced], deep=[deep]))
            assert (await reload(session, router))[0] == 200
            named, tiered = await asyncio.wait_for(asyncio.gather(by_name, by_tier), 10)
            streaming = old.in_flight  # answered at once, not when the slot came free
            rest = [chunk async for chunk in stream]

    assert tiered == (200, "sim-fast-new")
    assert named[:2] == (404, "model_not_found")
    assert "'sim-fast-old' was removed from the router's configuration" in named[2]
    assert streaming == 1
    assert len(new.chat_requests) == 1
    text = "".join(c.choices[0].delta.content or "" for c in [first, *rest] if c.choices)
    assert text == old.behaviour.reply  # the stream under way went on where it started


async def test_the_log_says_an_idle_endpoint_was_removed_before_it_says_it_drained(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    write(config_path, fleet)
    async with serving(config_path) as router:
        gone = the(router, "sim-fast-b")
        write(
            config_path,
            SimulatedFleet(fast=fleet.fast[:1], balanced=fleet.balanced, deep=fleet.deep),
        )
        with json_logs() as out:
            status, _ = await reload(session, router)
            await wait_until(lambda: bool(events(out, "endpoint drained")), what="the drain")
        drained = gone not in router.runtime.lanes

    assert status == 200
    assert drained
    order = [
        line["event"]
        for line in log_lines(out)
        if line.get("endpoint", line.get("name")) == "sim-fast-b"
        or line["event"] == "config reloaded"
    ]
    assert order == [
        "endpoint removed by reload; draining it",
        "config reloaded",
        "endpoint drained",
    ]


async def test_an_added_endpoint_is_probed_at_once_and_gets_its_series(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    extra = SimulatedModel("sim-fast-c")
    async with extra:
        write(config_path, fleet)
        async with serving(config_path) as router:
            grown = SimulatedFleet(
                fast=[*fleet.fast, extra], balanced=fleet.balanced, deep=fleet.deep
            )
            write(config_path, grown)

            status, body = await reload(session, router)
            await wait_until(lambda: extra.health_checks >= 1, what="a probe of the new endpoint")
            added = the(router, "sim-fast-c")
            answered = await chat(session, router, "sim-fast-c")
            async with session.get(router.url + "/metrics") as scrape:
                metrics = await scrape.text()

    assert status == 200
    assert body["endpoints"]["added"] == [
        {"id": "fast[2]", "name": "sim-fast-c", "url": extra.base_url}
    ]
    assert added.last_check > router.runtime.started_at
    assert answered == (200, "sim-fast-c")
    assert 'octoroute_endpoint_healthy{endpoint="sim-fast-c"' in metrics


async def test_ollama_tags_list_the_models_of_the_reloaded_file(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    write(config_path, fleet)
    async with serving(config_path) as router:
        async with session.get(router.url + "/api/tags") as before:
            listed_before = [model["name"] for model in (await before.json())["models"]]
        edit(config_path, append='[aliases]\n"gpt-4o" = "deep"\n')
        status, _ = await reload(session, router)
        async with session.get(router.url + "/api/tags") as after:
            listed_after = [model["name"] for model in (await after.json())["models"]]

    assert status == 200
    assert "gpt-4o:latest" not in listed_before
    assert listed_after == [*listed_before, "gpt-4o:latest"]


async def test_a_reload_keeps_each_keys_rate_limit_counters(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    """The counters are the process's, by key name: a reload must not hand every key a fresh
    minute."""
    alice, ops = "sk-octo-alice-reload-0123456789", "sk-octo-ops-reload-0123456789ab"
    auth = (
        "[auth]\n"
        f'[[auth.keys]]\nname = "alice"\nkey_sha256 = "{sha256(alice.encode()).hexdigest()}"\n'
        "requests_per_minute = 1\n"
        f'[[auth.keys]]\nname = "ops"\nkey_sha256 = "{sha256(ops.encode()).hexdigest()}"\n'
        "admin = true\n"
    )
    write(config_path, fleet, QUIET_HEALTH + auth)
    body = {"model": "fast", "messages": HELLO}
    as_alice = {"Authorization": f"Bearer {alice}"}
    async with serving(config_path) as router:
        async with session.post(router.v1 + "/chat/completions", json=body, headers=as_alice) as r:
            first = r.status
        edit(config_path, append='[aliases]\n"gpt-4o" = "deep"\n')
        headers = {"Authorization": f"Bearer {ops}"}
        async with session.post(router.url + "/admin/reload", headers=headers) as r:
            reloaded = r.status
        async with session.post(router.v1 + "/chat/completions", json=body, headers=as_alice) as r:
            second = r.status

    assert (first, reloaded, second) == (200, 200, 429)


async def test_an_endpoint_moved_within_its_tier_keeps_its_state_under_its_new_id(
    config_path: Path, session: aiohttp.ClientSession
) -> None:
    first, second = SimulatedModel("sim-a"), SimulatedModel("sim-b")
    fleet = SimulatedFleet(
        fast=[first, second], balanced=[SimulatedModel("b")], deep=[SimulatedModel("d")]
    )
    async with fleet:
        write(config_path, fleet)
        async with serving(config_path) as router:
            b = the(router, "sim-b")
            lane = router.runtime.lanes[b]
            assert await chat(session, router, "sim-b") == (200, "sim-b")
            pooled = router.runtime.client.idle_connections(lane.target)
            b.mark_failure("remembered")
            write(
                config_path,
                SimulatedFleet(fast=[second], balanced=fleet.balanced, deep=fleet.deep),
            )
            status, body = await reload(session, router)
            state = (b.id, b.position, b.consecutive_failures, b.last_error)
            kept = (router.runtime.lanes[b], router.runtime.client.idle_connections(lane.target))
            placed = [await chat(session, router, "fast") for _ in range(3)]

    assert status == 200
    assert [e["name"] for e in body["endpoints"]["removed"]] == ["sim-a"]
    assert [e["id"] for e in body["endpoints"]["kept"] if e["name"] == "sim-b"] == ["fast[0]"]
    assert state == ("fast[0]", 0, 1, "remembered")
    assert pooled >= 1
    assert kept == (lane, pooled)  # the same target, metric children and pooled connections
    assert placed == [(200, "sim-b")] * 3


async def test_settings_that_need_a_restart_are_reported_and_the_rest_applies(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    write(config_path, fleet)
    async with serving(config_path) as router:
        edit(
            config_path,
            ("port = 0", "port = 8123\nworkers = 2"),
            ('strategy = "rule"', 'strategy = "rule"\ndefault_tier = "deep"'),
            append='\n[observability]\nlog_format = "json"\n',
        )
        with json_logs() as out:
            status, body = await reload(session, router)
        config = router.runtime.config

    assert status == 200
    assert body["restart_needed"] == ["server.port", "server.workers", "observability.log_format"]
    assert body["changed"] == ["routing.default_tier"]
    assert (config.server.port, config.server.workers) == (0, 1)
    assert config.observability.log_format is LogFormat.TEXT
    assert config.routing.default_tier is Tier.DEEP
    (warning,) = events(out, "config reload: these settings take effect only after a restart; "
                        "their previous values stay in force until then")  # fmt: skip
    assert warning["keys"] == body["restart_needed"]
    (done,) = events(out, "config reloaded")
    assert done["restart_needed"] == body["restart_needed"]


async def test_a_shorter_probe_interval_applies_now_not_after_the_old_one(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    write(config_path, fleet)  # interval_seconds = 300: no second round during the test
    async with serving(config_path) as router:
        probed = fleet.deep[0].health_checks
        edit(config_path, ("interval_seconds = 300", "interval_seconds = 0.2"))
        status, body = await reload(session, router)
        await wait_until(
            lambda: fleet.deep[0].health_checks >= probed + 2, what="rounds at the new interval"
        )

    assert (status, body["changed"]) == (200, ["health.interval_seconds"])


async def test_limits_and_max_in_flight_apply_to_the_next_request(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    write(config_path, fleet)
    async with serving(config_path) as router:
        edit(
            config_path,
            ("port = 0", "port = 0\nmax_in_flight = 1"),
            append="\n[limits]\nmax_messages = 1\n",
        )
        assert (await reload(session, router))[0] == 200
        two = {"model": "fast", "messages": HELLO * 2}
        async with session.post(router.v1 + "/chat/completions", json=two) as response:
            too_many = response.status, (await response.json())["error"]["param"]
        slow = fleet.fast[0]
        slow.behaviour.latency = 0.5
        first = asyncio.ensure_future(chat(session, router, "sim-fast-a"))
        await slow.wait_for_in_flight(1)
        async with session.post(
            router.v1 + "/chat/completions", json={"model": "fast", "messages": HELLO}
        ) as response:
            overloaded = response.status, (await response.json())["error"]["code"]
        still_reloads = await reload(session, router)  # an operator action is never refused
        assert (await first)[0] == 200

    assert too_many == (400, "messages")
    assert overloaded == (503, "server_overloaded")
    assert still_reloads[0] == 200
    assert still_reloads[1]["status"] == "unchanged"


async def test_allowed_hosts_apply_to_the_next_request(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    rebound = {"Host": "attacker.example"}  # what a DNS-rebinding page sends
    write(config_path, fleet)
    async with serving(config_path) as router:
        async with session.get(router.v1 + "/models", headers=rebound) as response:
            before = response.status
        edit(config_path, ("port = 0", 'port = 0\nallowed_hosts = ["router.lan"]'))
        status, body = await reload(session, router)
        async with session.get(router.v1 + "/models", headers=rebound) as response:
            after = response.status, (await response.json())["error"]["code"]

    assert before == 200
    assert (status, body["changed"]) == (200, ["server.allowed_hosts"])
    assert after == (421, "host_not_allowed")


async def test_admin_reload_is_a_post(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    write(config_path, fleet)
    async with serving(config_path) as router, session.get(router.url + "/admin/reload") as got:
        status, allow, error = got.status, got.headers["Allow"], (await got.json())["error"]

    assert (status, allow) == (405, "POST")
    assert error["message"] == "/admin/reload does not accept GET; use POST."


async def test_a_router_not_started_from_a_file_says_so_instead_of_asking_to_fix_one(
    fleet: SimulatedFleet, session: aiohttp.ClientSession
) -> None:
    """``octoroute demo`` (and a configuration parsed from text) has no file: the refusal must
    not send its operator to edit one or to run ``octoroute check`` on it."""
    async with (
        running_router(config_for(fleet, strategy="rule")) as router,
        session.post(router.url + "/admin/reload") as answer,
    ):
        status, body = answer.status, await answer.json()

    assert status == 422
    assert body["problems"][0].startswith("this router's configuration did not come from a file")
    assert "octoroute check" not in body["error"]["message"]
    assert "--config FILE" in body["error"]["message"]


# --- watch_config -------------------------------------------------------------------------------


async def test_watch_config_reloads_a_changed_file_by_itself(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    write(config_path, fleet)
    edit(config_path, ("port = 0", "port = 0\nwatch_config = true"))
    async with serving(config_path) as router:
        assert router.reloader is not None
        assert router.reloader.watching
        edit(config_path, append='\n[aliases]\n"watched" = "deep"\n')
        await wait_until(lambda: router.runtime.generation == 2, timeout=10, what="a reload")
        answered = await chat(session, router, "watched")
        edit(config_path, ("watch_config = true", ""))
        await wait_until(lambda: router.runtime.generation == 3, timeout=10, what="a reload")
        stopped = not router.reloader.watching
    assert answered == (200, "sim-deep")
    assert stopped


async def test_an_edit_between_loading_and_the_first_poll_is_reloaded(
    fleet: SimulatedFleet, config_path: Path
) -> None:
    """The watcher compares with what the running configuration was loaded from, not with what
    the file holds when it first looks."""
    write(config_path, fleet)
    edit(config_path, ("port = 0", "port = 0\nwatch_config = true"))
    config = load_config(config_path)
    edit(config_path, append='\n[aliases]\n"early" = "deep"\n')  # before the router starts
    async with running_router(config) as router:
        await wait_until(lambda: router.runtime.generation == 2, timeout=10, what="a reload")
        aliases = [alias.name for alias in router.runtime.config.aliases]

    assert aliases == ["early"]


async def test_a_reload_of_a_file_that_hangs_is_refused_while_the_router_keeps_serving(
    fleet: SimulatedFleet, config_path: Path, session: aiohttp.ClientSession
) -> None:
    """A configuration on a network mount that stopped answering: the read runs off the event
    loop with a deadline, so the reload is refused and requests are served meanwhile."""
    write(config_path, fleet)
    async with serving(config_path) as router:
        assert router.reloader is not None
        router.reloader.reads.timeout = 0.5
        move_away(config_path)
        os.mkfifo(config_path)  # reading it blocks until a writer comes, as a hung mount does
        try:
            reloading = asyncio.ensure_future(reload(session, router))
            await wait_until(
                lambda: any(thread.name == THREAD_NAME for thread in threading.enumerate()),
                what="the read under way",
            )
            served = await chat(session, router, "fast")
            status, body = await reloading
            again, body_again = await reload(session, router)
        finally:
            os.close(os.open(config_path, os.O_WRONLY | os.O_NONBLOCK))  # let the reader go

    assert served[0] == 200
    assert status == 422
    assert body["status"] == "rejected"
    assert "did not finish within 0.5 s" in body["problems"][0]
    assert again == 422
    assert "has not returned yet" in body_again["problems"][0]
    assert router.runtime.generation == 1

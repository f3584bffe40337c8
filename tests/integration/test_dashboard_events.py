"""``GET /admin/events`` and the rest of the dashboard's server side over real sockets: the SSE
feed, admin keys, ``[ui] enabled = false``, prompt previews, reloads and shutdown."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from octoroute.api.dashboard_events import BACKLOG, _Stream
from octoroute.config import load_config
from octoroute.simulator import SimulatedFleet, SimulatedModel, fleet_config_toml
from tests.harness import (
    RouterHandle,
    config_for,
    first_probe_round,
    running_router,
    standard_fleet,
    wait_until,
    within,
)

HELLO = [{"role": "user", "content": "hello there"}]
FAST_PROBES = "[health]\ninterval_seconds = 0.1\nprobe_timeout_seconds = 0.5\n"


class Feed:
    """The events of one open ``/admin/events`` stream, read by a task as they come."""

    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.comments: list[str] = []
        self.status = 0
        self.content_type = ""

    async def read(self, client: httpx.AsyncClient, url: str, **headers: str) -> None:
        async with client.stream("GET", url + "/admin/events", headers=headers) as response:
            self.status = response.status_code
            self.content_type = response.headers.get("content-type", "")
            if response.status_code != 200:
                await response.aread()
                return
            name, data = "message", ""
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    self.comments.append(line)
                elif line.startswith("event: "):
                    name = line[7:]
                elif line.startswith("data: "):
                    data = line[6:]
                elif line == "" and data:
                    self.events.append((name, orjson.loads(data)))
                    name, data = "message", ""

    def of(self, name: str) -> list[Any]:
        return [data for kind, data in self.events if kind == name]


@contextlib.asynccontextmanager
async def feed(client: httpx.AsyncClient, url: str, **headers: str) -> AsyncIterator[Feed]:
    """An open feed; the first ``fleet`` event has arrived when the block starts."""
    found = Feed()
    task = asyncio.create_task(found.read(client, url, **headers))
    try:
        await wait_until(
            lambda: bool(found.of("fleet")) or task.done(), what="the feed's first fleet event"
        )
        yield found
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


def instance(fleet_object: dict[str, Any], wanted: str) -> dict[str, Any]:
    for tier in fleet_object["tiers"]:
        for shown in tier["instances"]:
            if shown["id"] == wanted:
                return shown  # type: ignore[no-any-return]
    raise AssertionError(f"{wanted} is not in the fleet object")


async def test_the_feed_sends_the_fleet_then_each_decision_and_keepalives() -> None:
    fleet = standard_fleet()
    async with (
        fleet,
        running_router(config_for(fleet)) as router,
        httpx.AsyncClient(timeout=10) as client,
        feed(client, router.url) as events,
    ):
        assert events.status == 200
        assert events.content_type.startswith("text/event-stream")
        answered = await client.post(
            router.v1 + "/chat/completions",
            json={"model": "deep", "messages": HELLO},
            headers={"x-request-id": "feed-1"},
        )
        assert answered.status_code == 200
        await wait_until(lambda: bool(events.of("decision")), what="the decision event")
        await wait_until(lambda: bool(events.comments), timeout=5, what="a keepalive comment")

    (decision,) = events.of("decision")
    assert decision["request_id"] == "feed-1"
    assert (decision["tier"], decision["instance"], decision["status"]) == ("deep", "deep[0]", 200)
    assert ": keepalive" in events.comments
    first = events.of("fleet")[0]
    assert [tier["tier"] for tier in first["tiers"]] == ["fast", "balanced", "deep"]


async def test_a_killed_upstream_reaches_the_feed_as_a_fleet_event() -> None:
    fleet = standard_fleet()
    async with (
        fleet,
        running_router(config_for(fleet, strategy="rule", extra=FAST_PROBES)) as router,
        httpx.AsyncClient(timeout=10) as client,
    ):
        await first_probe_round(router)
        async with feed(client, router.url) as events:
            await fleet.deep[0].stop()
            await wait_until(
                lambda: any(
                    instance(f, "deep[0]")["health"] == "unhealthy" for f in events.of("fleet")
                ),
                what="a fleet event showing deep[0] unhealthy",
            )


async def test_fleet_events_are_coalesced_under_load() -> None:
    fleet = standard_fleet()
    async with (
        fleet,
        running_router(config_for(fleet)) as router,
        httpx.AsyncClient(timeout=10) as client,
        feed(client, router.url) as events,
    ):
        started = time.monotonic()
        await asyncio.gather(
            *(
                client.post(
                    router.v1 + "/chat/completions", json={"model": "fast", "messages": HELLO}
                )
                for _ in range(40)
            )
        )
        await wait_until(lambda: len(events.of("decision")) == 40, what="40 decision events")
    # Measured once the feed is closed: fleet events keep arriving until then (a loaded host
    # can take a few ticks to shut the router down), and each is counted.
    elapsed = time.monotonic() - started

    # At most one fleet event per 0.25 s tick, plus the first: never one per request.
    assert len(events.of("fleet")) <= 2 + elapsed / 0.25
    assert len({d["request_id"] for d in events.of("decision")}) == 40


async def test_closing_the_stream_removes_its_listener() -> None:
    fleet = standard_fleet()
    async with (
        fleet,
        running_router(config_for(fleet)) as router,
        httpx.AsyncClient(timeout=10) as client,
    ):
        async with feed(client, router.url):
            assert len(router.runtime.dashboard.listeners) == 1
        await wait_until(
            lambda: not router.runtime.dashboard.listeners, what="the listener removed"
        )


async def test_an_open_stream_does_not_hold_up_shutdown() -> None:
    fleet = standard_fleet()
    async with fleet, httpx.AsyncClient(timeout=10) as client:
        found = Feed()
        async with running_router(config_for(fleet)) as router:
            task = asyncio.create_task(found.read(client, router.url))
            await wait_until(lambda: bool(found.of("fleet")), what="the stream open")
            stopping = time.monotonic()
        # running_router's runner drains for up to 5 s: the stream ended before that.
        assert time.monotonic() - stopping < 2
        await within(task, 2)


def test_a_stream_that_falls_behind_drops_decisions_and_counts_them() -> None:
    stream = _Stream()
    for number in range(BACKLOG + 5):
        stream.push((0.0, str(number), {}, None))

    assert len(stream.backlog) == BACKLOG
    assert stream.dropped == 5
    assert stream.backlog[0][1] == "0"


# --- auth, [ui] enabled = false, previews -------------------------------------------------------

OPS = "sk-octo-ops-key-0000000000000000000000000000"
ALICE = "sk-octo-alice-key-00000000000000000000000000"


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


AUTH = (
    "[auth]\n"
    f'[[auth.keys]]\nname = "ops"\nkey_sha256 = "{sha(OPS)}"\nadmin = true\n'
    f'[[auth.keys]]\nname = "alice"\nkey_sha256 = "{sha(ALICE)}"\n'
)


@pytest.mark.parametrize("path", ["/admin/state", "/admin/events"])
async def test_with_auth_the_state_api_needs_an_admin_key(path: str) -> None:
    fleet = standard_fleet()
    async with (
        fleet,
        running_router(config_for(fleet, extra=AUTH)) as router,
        httpx.AsyncClient(timeout=10) as client,
    ):
        missing = await client.get(router.url + path)
        not_admin = await client.get(
            router.url + path, headers={"Authorization": f"Bearer {ALICE}"}
        )
        if path == "/admin/state":
            admin = await client.get(router.url + path, headers={"Authorization": f"Bearer {OPS}"})
            assert admin.status_code == 200
            assert admin.json()["version"] == 1
        else:
            async with feed(client, router.url, Authorization=f"Bearer {OPS}") as events:
                assert events.status == 200

    assert missing.status_code == 401
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert not_admin.status_code == 403
    assert not_admin.json()["error"]["code"] == "admin_key_required"


async def test_a_request_with_a_key_shows_the_keys_name_never_the_key() -> None:
    fleet = standard_fleet()
    async with (
        fleet,
        running_router(config_for(fleet, extra=AUTH)) as router,
        httpx.AsyncClient(timeout=10) as client,
    ):
        await client.post(
            router.v1 + "/chat/completions",
            json={"model": "fast", "messages": HELLO},
            headers={"Authorization": f"Bearer {ALICE}"},
        )
        answer = await client.get(router.url + "/admin/state", headers={"x-api-key": OPS})

    assert answer.json()["decisions"][0]["key"] == "alice"
    assert ALICE not in answer.text
    assert OPS not in answer.text
    assert sha(ALICE) not in answer.text


@pytest.mark.parametrize("path", ["/admin/state", "/admin/events"])
async def test_with_the_dashboard_off_the_state_api_is_a_404_and_nothing_is_recorded(
    path: str,
) -> None:
    fleet = standard_fleet()
    async with (
        fleet,
        running_router(config_for(fleet, extra="[ui]\nenabled = false\n")) as router,
        httpx.AsyncClient(timeout=10) as client,
    ):
        answered = await client.post(
            router.v1 + "/chat/completions", json={"model": "fast", "messages": HELLO}
        )
        response = await client.get(router.url + path)

    assert answered.status_code == 200
    assert response.status_code == 404
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert "[ui] enabled = false" in error["message"]
    assert len(router.runtime.dashboard.decisions) == 0
    assert router.runtime.dashboard.traffic.view(300, time.time()).total == 0


LONG_TURN = "Please explain   the\nfollowing in detail: " + "lorem ipsum " * 200


@pytest.mark.parametrize("show", [False, True])
async def test_prompt_previews_only_with_show_prompts(show: bool) -> None:
    fleet = standard_fleet()
    ui = f"[ui]\nshow_prompts = {'true' if show else 'false'}\nprompt_preview_chars = 40\n"
    messages = [
        {"role": "user", "content": "an earlier question"},
        {"role": "assistant", "content": "an earlier answer"},
        {"role": "user", "content": LONG_TURN},
    ]
    async with (
        fleet,
        running_router(config_for(fleet, extra=ui)) as router,
        httpx.AsyncClient(timeout=10) as client,
    ):
        await client.post(
            router.v1 + "/chat/completions", json={"model": "fast", "messages": messages}
        )
        await client.post(router.url + "/chat", json={"message": "hi from v1"})
        body = (await client.get(router.url + "/admin/state")).json()

    legacy, chat = body["decisions"]
    if not show:
        assert "prompt_preview" not in chat
        assert "prompt_preview" not in legacy
        assert "lorem" not in orjson.dumps(body).decode()
        return
    assert chat["prompt_preview"] == "Please explain the following in detail:…"
    assert len(chat["prompt_preview"]) == 40
    assert legacy["prompt_preview"] == "hi from v1"


# --- reloads ------------------------------------------------------------------------------------


async def test_after_a_reload_the_state_shows_the_new_fleet_and_keeps_the_windows(
    tmp_path: Path,
) -> None:
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-fast")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
    )
    added = SimulatedModel("sim-fast-added")
    path = tmp_path / "octoroute.toml"
    async with fleet, added:
        write(path, fleet)
        async with (
            running_router(load_config(path)) as router,
            httpx.AsyncClient(timeout=10) as client,
        ):
            await client.post(
                router.v1 + "/chat/completions", json={"model": "fast", "messages": HELLO}
            )
            grown = SimulatedFleet(
                fast=[*fleet.fast, added], balanced=fleet.balanced, deep=fleet.deep
            )
            write(path, grown, "[ui]\ndecisions = 5\n")
            reloaded = await client.post(router.url + "/admin/reload")
            assert reloaded.status_code == 200, reloaded.text
            body = (await client.get(router.url + "/admin/state")).json()

    fast = body["fleet"]["tiers"][0]["instances"]
    assert [i["name"] for i in fast] == ["sim-fast", "sim-fast-added"]
    assert body["traffic"]["totals"]["requests"] == 1
    assert fast[0]["requests"] == 1
    assert len(body["decisions"]) == 1
    assert body["config"]["effective"]["ui"]["decisions"] == 5
    last = body["config"]["last_reload"]
    assert (last["ok"], last["status"], last["problems"]) == (True, "reloaded", [])
    assert body["router"]["generation"] == 2


def write(path: Path, fleet: SimulatedFleet, extra: str = "") -> None:
    """The fleet's configuration (rule strategy) plus ``extra``, into ``path``."""
    path.write_text(fleet_config_toml(fleet, strategy="rule") + extra)


@contextlib.asynccontextmanager
async def from_a_file(
    path: Path,
) -> AsyncIterator[tuple[RouterHandle, httpx.AsyncClient, Callable[[str], Awaitable[int]]]]:
    """The router on the standard fleet, configured from the file ``path``, a client, and a
    function that appends to that file and reloads it (answering the reload's status)."""
    fleet = standard_fleet()
    async with fleet:
        write(path, fleet)
        async with (
            running_router(load_config(path)) as router,
            httpx.AsyncClient(timeout=10) as client,
        ):

            async def reload_with(extra: str) -> int:
                write(path, fleet, extra)
                return (await client.post(router.url + "/admin/reload")).status_code

            yield router, client, reload_with


async def test_a_rejected_reload_is_shown_with_its_problems(tmp_path: Path) -> None:
    async with from_a_file(tmp_path / "octoroute.toml") as (router, client, reload_with):
        assert await reload_with("[ui]\ndecisions = 0\n") == 422
        body = (await client.get(router.url + "/admin/state")).json()

    last = body["config"]["last_reload"]
    assert (last["ok"], last["status"]) == (False, "rejected")
    assert any("ui.decisions" in problem for problem in last["problems"])


async def test_turning_the_dashboard_off_by_reload_ends_open_streams(tmp_path: Path) -> None:
    async with from_a_file(tmp_path / "octoroute.toml") as (router, client, reload_with):
        found = Feed()
        task = asyncio.create_task(found.read(client, router.url))
        await wait_until(lambda: bool(found.of("fleet")), what="the stream open")
        assert await reload_with("[ui]\nenabled = false\n") == 200
        await within(task, 3)
        after = await client.get(router.url + "/admin/state")

    assert after.status_code == 404


# --- the playground's /route --------------------------------------------------------------------

PROOF = [{"role": "user", "content": "Prove that there are infinitely many primes."}]


@pytest.mark.parametrize("strategy", ["rule", "learned", "hybrid", "llm"])
async def test_route_decides_with_the_strategy_asked_and_explains_it(strategy: str) -> None:
    fleet = standard_fleet()
    async with (
        fleet,
        running_router(config_for(fleet, strategy="rule")) as router,
        httpx.AsyncClient(timeout=10) as client,
    ):
        answer = await client.post(
            router.url + "/route",
            params={"strategy": strategy},
            json={"model": "auto", "messages": PROOF},
        )

    assert answer.status_code == 200
    body = answer.json()
    explained = body["explanation"]
    assert explained["strategy"] == strategy
    assert explained["signals"] == body["signals"]
    assert explained["summary"]
    if strategy == "rule":
        assert (body["strategy"], explained["rule"]) == ("rule", body["reason"])
        assert explained["probabilities"] is None
    if strategy in ("learned", "hybrid"):
        probabilities = explained["probabilities"]
        assert set(probabilities) == {"fast", "balanced", "deep"}
        assert sum(probabilities.values()) == pytest.approx(1, abs=1e-3)
    if strategy == "hybrid":
        assert explained["confidence_threshold"] == router.config.routing.confidence_threshold
    if strategy == "llm":
        assert body["strategy"] in ("llm", "rule")  # the router model, or its rule fallback
        assert explained["asked_router_model"] is True


async def test_route_without_strategy_uses_the_configured_one_and_refuses_an_unknown_one() -> None:
    fleet = standard_fleet()
    async with (
        fleet,
        running_router(config_for(fleet, strategy="rule")) as router,
        httpx.AsyncClient(timeout=10) as client,
    ):
        plain = await client.post(router.url + "/route", json={"model": "auto", "messages": PROOF})
        wrong = await client.post(
            router.url + "/route?strategy=magic", json={"model": "auto", "messages": PROOF}
        )

    assert plain.json()["explanation"]["strategy"] == "rule"
    assert wrong.status_code == 400
    assert wrong.json()["error"]["param"] == "strategy"
    assert "rule, llm, hybrid or learned" in wrong.json()["error"]["message"]


async def test_route_explains_a_named_tier_as_not_routed() -> None:
    fleet = standard_fleet()
    async with (
        fleet,
        running_router(config_for(fleet)) as router,
        httpx.AsyncClient(timeout=10) as client,
    ):
        answer = await client.post(router.url + "/route", json={"model": "deep", "messages": PROOF})

    explained = answer.json()["explanation"]
    assert (explained["decided_by"], explained["routed_tier"]) == ("direct", "deep")
    assert explained["probabilities"] is None

"""``GET /admin/state``: the dashboard's JSON document over real sockets, a simulated fleet
behind the router (``docs/api.md``, "Dashboard state API")."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from octoroute.simulator import Behaviour, HttpError, SimulatedFleet, SimulatedModel
from tests.harness import (
    config_for,
    first_probe_round,
    running_router,
    standard_fleet,
    wait_until,
)

HELLO = [{"role": "user", "content": "hello there"}]


async def state(client: httpx.AsyncClient, url: str, **params: str) -> dict[str, Any]:
    response = await client.get(url + "/admin/state", params=params)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    return body


def instances(body: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every instance of the ``fleet`` object by id."""
    found = {
        instance["id"]: instance
        for tier in body["fleet"]["tiers"]
        for instance in tier["instances"]
    }
    found.update({instance["id"]: instance for instance in body["fleet"]["embeddings"]})
    return found


async def test_state_shows_every_tier_and_instance_and_a_request_as_a_decision() -> None:
    fleet = standard_fleet()
    async with fleet, running_router(config_for(fleet)) as router:
        await first_probe_round(router)
        async with httpx.AsyncClient(timeout=10) as client:
            answered = await client.post(
                router.v1 + "/chat/completions",
                json={"model": "fast", "messages": HELLO},
                headers={"x-request-id": "dash-1"},
            )
            assert answered.status_code == 200
            body = await state(client, router.url)

    assert body["version"] == 1
    assert body["router"]["workers"] == 1
    assert [tier["tier"] for tier in body["fleet"]["tiers"]] == ["fast", "balanced", "deep"]
    shown = instances(body)
    assert set(shown) == {"fast[0]", "fast[1]", "balanced[0]", "deep[0]"}
    assert {instance["name"] for instance in shown.values()} == {
        "sim-fast-a",
        "sim-fast-b",
        "sim-balanced",
        "sim-deep",
    }
    assert all(instance["health"] == "healthy" for instance in shown.values())
    (decision,) = body["decisions"]
    assert decision["request_id"] == "dash-1"
    assert (decision["tier"], decision["strategy"], decision["status"]) == ("fast", "direct", 200)
    assert decision["instance"] in {"fast[0]", "fast[1]"}
    assert "prompt_preview" not in decision
    served = shown[decision["instance"]]
    assert served["requests"] == 1
    assert served["latency_ms"]["p50"] > 0
    totals = body["traffic"]["totals"]
    assert totals["requests"] == 1
    assert totals["by_tier"] == {"fast": 1, "balanced": 0, "deep": 0}
    assert sum(bucket["requests"]["fast"] for bucket in body["traffic"]["buckets"]) == 1


@pytest.mark.parametrize(("window", "bucket", "count"), [("300", 10, 30), ("3600", 60, 60)])
async def test_state_windows(window: str, bucket: int, count: int) -> None:
    fleet = standard_fleet()
    async with (
        fleet,
        running_router(config_for(fleet)) as router,
        httpx.AsyncClient(timeout=10) as client,
    ):
        await client.post(
            router.v1 + "/chat/completions", json={"model": "deep", "messages": HELLO}
        )
        body = await state(client, router.url, window=window)

    traffic = body["traffic"]
    assert (traffic["window_seconds"], traffic["bucket_seconds"]) == (int(window), bucket)
    assert len(traffic["buckets"]) == count
    assert traffic["totals"]["by_tier"]["deep"] == 1
    assert (
        traffic["buckets"][-1]["requests"]["deep"] == 1
        or traffic["buckets"][-2]["requests"]["deep"] == 1
    )


@pytest.mark.parametrize("window", ["60", "abc", "", "300.0", "-300"])
async def test_a_window_other_than_300_or_3600_is_a_400_naming_it(window: str) -> None:
    fleet = standard_fleet()
    async with (
        fleet,
        running_router(config_for(fleet)) as router,
        httpx.AsyncClient(timeout=10) as client,
    ):
        response = await client.get(router.url + "/admin/state", params={"window": window})

    assert response.status_code == 400
    error = response.json()["error"]
    assert error["param"] == "window"
    assert "300" in error["message"]
    assert "3600" in error["message"]


# --- the fleet as it changes ----------------------------------------------------------------------

FAST_PROBES = "[health]\ninterval_seconds = 0.1\nprobe_timeout_seconds = 0.5\n"


async def test_a_killed_upstream_shows_unhealthy_after_a_probe_and_the_others_stay_healthy() -> (
    None
):
    fleet = standard_fleet()
    async with (
        fleet,
        running_router(config_for(fleet, strategy="rule", extra=FAST_PROBES)) as router,
        httpx.AsyncClient(timeout=10) as client,
    ):
        await first_probe_round(router)
        await fleet.fast[0].stop()
        watched = router.runtime.fleet.by_name("sim-fast-a")[0]
        await wait_until(lambda: not watched.healthy, what="sim-fast-a marked unhealthy")
        body = await state(client, router.url)

    shown = instances(body)
    assert shown["fast[0]"]["health"] == "unhealthy"
    assert shown["fast[0]"]["last_error"]
    assert {shown[i]["health"] for i in ("fast[1]", "balanced[0]", "deep[0]")} == {"healthy"}


async def test_an_ejected_instance_shows_its_cause_and_time_left() -> None:
    fleet = SimulatedFleet(
        fast=[
            SimulatedModel("sim-bad", behaviour=Behaviour(fault=HttpError(500))),
            SimulatedModel("sim-ok"),
        ],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
    )
    extra = "[health]\neject_after_failures = 1\neject_base_seconds = 60\nfailure_threshold = 100\n"
    async with (
        fleet,
        running_router(config_for(fleet, strategy="rule", extra=extra)) as router,
        httpx.AsyncClient(timeout=10) as client,
    ):
        await first_probe_round(router)
        bad = router.runtime.fleet.by_name("sim-bad")[0]
        for _ in range(20):
            await client.post(
                router.v1 + "/chat/completions", json={"model": "fast", "messages": HELLO}
            )
            if bad.ejected:
                break
        assert bad.ejected
        body = await state(client, router.url)

    shown = instances(body)["fast[0]"]
    assert shown["health"] == "ejected"
    assert shown["ejection"]["cause"] == "status"
    assert 0 < shown["ejection"]["seconds_left"] <= 60
    assert body["traffic"]["totals"]["retries"] >= 1
    assert body["traffic"]["totals"]["failovers"] >= 1

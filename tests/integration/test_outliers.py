"""Passive outlier detection, least-loaded selection and the forwarder's judgments, end to end.

Simulated upstreams on 127.0.0.1 play the broken servers: a replica that answers the health probe
but hangs on chat, one that answers 500s, one that answers 200 with an HTML page, one whose
stream never ends. Timeouts are shortened to a second; waits are conditions with deadlines.
"""

from __future__ import annotations

import asyncio
import io
import time
from typing import Any

import aiohttp
import orjson
import pytest
from bench.hung_replica import Settings, run

from octoroute.enums import LogFormat, Tier
from octoroute.fleet.endpoint import Admission, Endpoint
from octoroute.observability.logging import configure_logging
from octoroute.simulator import Behaviour, Hang, HttpError, SimulatedFleet, SimulatedModel
from tests.harness import (
    RouterHandle,
    config_for,
    endpoint,
    first_probe_round,
    running_router,
    wait_until,
)

HELLO = [{"role": "user", "content": "hello there"}]


async def chat(
    session: aiohttp.ClientSession, router: RouterHandle, model: str = "fast", **fields: Any
) -> tuple[int, dict[str, str], bytes]:
    body = {"model": model, "messages": HELLO, **fields}
    async with session.post(router.v1 + "/chat/completions", json=body) as response:
        raw = await response.read()
        return response.status, {k.lower(): v for k, v in response.headers.items()}, raw


def state(endpoint: Endpoint) -> Admission:
    """Read through a call, so mypy keeps no narrowing of ``admission`` across state changes."""
    return endpoint.admission


def metric(router: RouterHandle, name: str, **labels: str) -> float:
    """The value of one sample of the router's registry (0 when absent)."""
    value = router.runtime.metrics.registry.get_sample_value(name, labels)
    return 0.0 if value is None else value


def two_replicas(first: SimulatedModel) -> SimulatedFleet:
    """``first`` and a healthy twin as the fast tier (one model name, two instances)."""
    return SimulatedFleet(
        fast=[first, SimulatedModel("sim-fast")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
    )


# --- the hung replica --------------------------------------------------------------------------


async def test_a_replica_that_hangs_on_chat_but_answers_probes_stops_delaying_traffic() -> None:
    # 10 req/s for 5 s, 1 s timeouts, probes every 0.2 s (all of them pass), ejection 2 s x n.
    # The healthy twin takes 0.5 s per answer, so about five requests are in flight on it and
    # least-loaded selection alone keeps sending the hung one a share: ejection must do the rest.
    settings = Settings(10, 5, timeout=1, health_interval=0.2, eject_base=2, healthy_latency=0.5)
    without = Settings(
        10, 5, timeout=1, health_interval=0.2, eject_after=10**6, healthy_latency=0.5
    )

    result, runtime = await asyncio.wait_for(run(settings), 30)
    control, _ = await asyncio.wait_for(run(without), 30)

    assert result.sent == control.sent == 50
    assert result.ok == 50  # every delayed request failed over and was answered
    # Without ejection a request whose first attempt is slow on the healthy twin (the router and
    # both replicas share one event loop here, and a busy host stretches its 0.5 s answers past
    # the 1 s timeout) may fail over to the hung replica and time out there too: the control
    # shows the delays, and may lose a request or two to them.
    assert control.ok >= control.sent - 2
    assert result.ejections >= 1
    assert result.delayed == result.hung_chat_requests
    assert result.delayed <= 12
    assert control.ejections == 0
    assert control.delayed >= 2 * result.delayed
    hung = runtime.fleet.tiers[Tier.FAST][0]
    assert hung.healthy  # the probes kept passing: only real traffic could tell


async def test_an_ejected_replica_that_recovers_is_readmitted_by_one_trial_request(
    session: aiohttp.ClientSession,
) -> None:
    broken = SimulatedModel("sim-fast")
    broken.behaviour.fault = HttpError(500)
    broken.config_keys["priority"] = 2  # preferred whenever it is admitted
    extra = "[health]\neject_after_failures = 2\neject_base_seconds = 1\ninterval_seconds = 60\n"
    async with (
        two_replicas(broken) as fleet,
        running_router(config_for(fleet, strategy="rule", extra=extra)) as router,
    ):
        await first_probe_round(router)
        for _ in range(2):
            status, _, _ = await chat(session, router)
            assert status == 200  # failed over to the twin
        first = router.runtime.fleet.tiers[Tier.FAST][0]
        assert state(first) is Admission.EJECTED
        assert (
            metric(
                router,
                "octoroute_endpoint_ejections_total",
                endpoint="sim-fast",
                instance=first.config.base_url.split("//")[1].removesuffix("/v1"),
                cause="status",
            )
            == 1
        )
        served_while_out = len(broken.chat_requests)
        status, _headers, _ = await chat(session, router)
        assert status == 200
        assert len(broken.chat_requests) == served_while_out  # not tried while ejected

        broken.behaviour.fault = None  # the server comes back
        await wait_until(lambda: first.ready_at <= time.monotonic(), timeout=3, what="half-open")
        status, _, _ = await chat(session, router)

        assert status == 200
        assert len(broken.chat_requests) == served_while_out + 1  # exactly one trial
        assert state(first) is Admission.ADMITTED
        assert (
            metric(
                router,
                "octoroute_endpoint_ejected",
                tier="fast",
                endpoint="sim-fast",
                instance=first.config.base_url.split("//")[1].removesuffix("/v1"),
            )
            == 0
        )


async def test_ejection_and_readmission_are_logged_once_each_with_the_cause(
    session: aiohttp.ClientSession,
) -> None:
    out = io.StringIO()
    configure_logging("info", LogFormat.JSON, stream=out, cache=False)
    broken = SimulatedModel("sim-fast")
    broken.behaviour.fault = HttpError(503)
    broken.config_keys["priority"] = 2
    extra = "[health]\neject_after_failures = 1\neject_base_seconds = 1\ninterval_seconds = 60\n"
    try:
        async with (
            two_replicas(broken) as fleet,
            running_router(config_for(fleet, strategy="rule", extra=extra)) as router,
        ):
            await first_probe_round(router)
            assert (await chat(session, router))[0] == 200
            first = router.runtime.fleet.tiers[Tier.FAST][0]
            broken.behaviour.fault = None
            await wait_until(lambda: first.ready_at <= time.monotonic(), timeout=3, what="trial")
            assert (await chat(session, router))[0] == 200
    finally:
        configure_logging("warning", LogFormat.TEXT, cache=False)
    lines = [orjson.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    ejected = [line for line in lines if line["event"] == "endpoint ejected"]
    readmitted = [line for line in lines if line["event"] == "endpoint re-admitted"]
    assert len(ejected) == 1
    assert len(readmitted) == 1
    assert ejected[0]["cause"] == "status"
    assert ejected[0]["seconds"] == 1
    assert ejected[0]["level"] == "warning"
    assert readmitted[0]["cause"] == "status"


async def test_nothing_left_but_ejected_replicas_is_a_503_that_says_so(
    session: aiohttp.ClientSession,
) -> None:
    broken = SimulatedModel("sim-fast-only")
    broken.behaviour.fault = HttpError(500)
    fleet = SimulatedFleet(
        fast=[broken], balanced=[SimulatedModel("b")], deep=[SimulatedModel("d")]
    )
    extra = "[health]\neject_after_failures = 1\neject_base_seconds = 30\ninterval_seconds = 60\n"
    async with fleet, running_router(config_for(fleet, strategy="rule", extra=extra)) as router:
        await first_probe_round(router)
        assert (await chat(session, router))[0] == 502
        status, _headers, raw = await chat(session, router)
        async with session.get(router.url + "/models") as listing:
            states = {entry["id"]: entry for entry in (await listing.json())["models"]}

    assert status == 503
    error = orjson.loads(raw)["error"]
    assert error["code"] == "no_healthy_endpoint"
    assert "ejected after failing real requests" in error["message"]
    assert "tried again in 30 s" in error["message"] or "tried again in 29 s" in error["message"]
    fast = states["fast[0]"]
    assert (fast["state"], fast["ejection_cause"], fast["in_flight"]) == ("ejected", "status", 0)
    assert 25 < fast["ejected_for_seconds"] <= 30
    assert fast["busy_for_seconds"] is None
    assert states["deep[0]"]["state"] == "admitted"
    assert states["deep[0]"]["ejected_for_seconds"] is None


# --- answers that are not answers --------------------------------------------------------------


async def test_a_200_that_is_not_json_is_an_upstream_fault_and_fails_over(
    session: aiohttp.ClientSession,
) -> None:
    broken = SimulatedModel("sim-fast")
    broken.behaviour.fault = HttpError(200, "<html><body>Welcome to nginx!</body></html>")
    broken.config_keys["priority"] = 2
    async with (
        two_replicas(broken) as fleet,
        running_router(config_for(fleet, strategy="rule")) as router,
    ):
        await first_probe_round(router)
        status, _, raw = await chat(session, router)
        assert status == 200
        assert orjson.loads(raw)["choices"][0]["message"]["content"]
        first = endpoint_of(router, 0)
        assert first.consecutive_failures == 1
        assert "not a JSON object" in (first.last_error or "")
        assert (
            metric(router, "octoroute_upstream_retries_total", tier="fast", reason="bad_response")
            == 1
        )


async def test_a_200_that_is_not_json_from_the_only_endpoint_is_a_502(
    session: aiohttp.ClientSession, fleet: SimulatedFleet
) -> None:
    sim = fleet.deep[0]
    sim.behaviour.fault = HttpError(200, "plain text, no JSON")
    async with running_router(config_for(fleet, strategy="rule")) as router:
        status, headers, raw = await chat(session, router, model="deep")

    assert status == 502
    assert headers["content-type"].startswith("application/json")
    error = orjson.loads(raw)["error"]
    assert error["code"] == "bad_upstream_response"
    assert "not a JSON object" in error["message"]
    assert "19 bytes starting 'plain text, no JSON'" in error["message"]


def endpoint_of(router: RouterHandle, index: int) -> Any:
    return router.runtime.fleet.tiers[Tier.FAST][index]


# --- streams that never end --------------------------------------------------------------------


async def test_a_stream_longer_than_stream_total_seconds_is_cut_with_an_error_event(
    session: aiohttp.ClientSession, fleet: SimulatedFleet
) -> None:
    sim = fleet.deep[0]
    sim.behaviour.reply = "word " * 400
    sim.behaviour.token_gap = 0.01  # about 4 s of tokens
    extra = "[timeouts]\nstream_total_seconds = 1\n"
    async with running_router(config_for(fleet, strategy="rule", extra=extra)) as router:
        await first_probe_round(router)
        started = time.monotonic()
        body = {"model": "deep", "messages": HELLO, "stream": True}
        async with session.post(router.v1 + "/chat/completions", json=body) as response:
            assert response.status == 200
            raw = await asyncio.wait_for(response.read(), 10)
        elapsed = time.monotonic() - started
        deep = endpoint(router, "sim-deep")

        events = [e for e in raw.split(b"\n\n") if e.startswith(b"data: ")]
        assert events[-1] == b"data: [DONE]"
        error = orjson.loads(events[-2][6:])["error"]
        assert error["code"] == "upstream_stream_too_long"
        assert len(events) > 10  # the answer streamed until the cut
        assert 0.9 < elapsed < 3
        assert deep.consecutive_failures == 0  # our limit, not the server's fault
        assert state(deep) is Admission.ADMITTED


@pytest.mark.parametrize(
    ("slow", "where"),
    [("first_token_delay", "before its first event"), ("latency", "before its headers")],
)
async def test_stream_total_seconds_run_out_before_the_first_event_fails_over(
    session: aiohttp.ClientSession, slow: str, where: str
) -> None:
    """The stream's total time counts from the start of its attempt, the wait for the headers
    included; run out before anything was sent, it is a failover to the healthy twin, held
    against nobody, and a 504 ``upstream_stream_too_long`` when no endpoint is left."""
    stalled = SimulatedModel("sim-fast")
    setattr(stalled.behaviour, slow, 30.0)
    fleet = two_replicas(stalled)
    extra = "[timeouts]\nstream_total_seconds = 1\n"
    async with fleet, running_router(config_for(fleet, strategy="rule", extra=extra)) as router:
        await first_probe_round(router)

        async def one() -> tuple[int, float, bytes]:
            started = time.monotonic()
            body = {"model": "fast", "messages": HELLO, "stream": True}
            async with session.post(router.v1 + "/chat/completions", json=body) as response:
                raw = await asyncio.wait_for(response.read(), 10)
                return response.status, time.monotonic() - started, raw

        answers: list[tuple[int, float, bytes]] = []
        for _ in range(2):  # two at once: least-loaded selection gives one to each replica
            answers += await asyncio.gather(one(), one())
        failed_over = metric(
            router, "octoroute_upstream_retries_total", tier="fast", reason="stream_total"
        )
        stalled_endpoint = endpoint_of(router, 0)

    assert [status for status, _, _ in answers] == [200] * 4, where
    assert all(raw.rstrip().endswith(b"data: [DONE]") for _, _, raw in answers)
    assert all(b'"error"' not in raw for _, _, raw in answers)
    assert failed_over >= 1  # the stalled replica was tried, and given up on after 1 s
    assert max(elapsed for _, elapsed, _ in answers) < 5
    assert stalled_endpoint.consecutive_failures == 0  # our limit, not the server's fault


async def test_a_redirect_from_an_upstream_is_a_failure_that_fails_over_not_an_empty_3xx(
    session: aiohttp.ClientSession,
) -> None:
    """The router does not follow redirects: a base_url that redirects (http to https, a
    missing /v1) is the endpoint's misconfiguration, failed over and held against it, and
    named in the 502 when no endpoint is left."""
    moved = SimulatedModel("sim-fast")
    moved.behaviour.fault = HttpError(307, headers={"Location": "https://elsewhere/v1/chat"})
    fleet = two_replicas(moved)
    async with fleet, running_router(config_for(fleet, strategy="rule")) as router:
        await first_probe_round(router)
        statuses = [(await chat(session, router))[0] for _ in range(4)]
        redirected = endpoint_of(router, 0)
        failures = redirected.consecutive_failures
        fleet.fast[1].behaviour.fault = HttpError(307)
        status, headers, raw = await chat(session, router)

    assert statuses == [200] * 4
    assert failures >= 1
    assert status == 502
    assert headers["content-type"].startswith("application/json")
    error = orjson.loads(raw)["error"]
    assert "HTTP 307" in error["message"]
    assert "does not follow" in error["message"]


async def test_a_refused_router_key_is_a_502_naming_the_endpoint_logged_once_at_error(
    session: aiohttp.ClientSession, fleet: SimulatedFleet
) -> None:
    fleet.deep[0].behaviour.fault = HttpError(401, "invalid api key sk-leaked-by-echo")
    out = io.StringIO()
    configure_logging("info", LogFormat.JSON, stream=out, cache=False)
    try:
        async with running_router(config_for(fleet, strategy="rule")) as router:
            first = await chat(session, router, model="deep")
            second = await chat(session, router, model="deep")
    finally:
        configure_logging("warning", LogFormat.TEXT, cache=False)

    for status, headers, raw in (first, second):
        assert status == 502
        assert headers["content-type"].startswith("application/json")
        assert b"sk-leaked-by-echo" not in raw
        error = orjson.loads(raw)["error"]
        assert error["code"] == "upstream_auth_failed"
        assert "sim-deep" in error["message"]
        assert "api_key_env" in error["message"]
    lines = [orjson.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    refused = [
        line for line in lines if line["event"] == "upstream refused the router's credentials"
    ]
    assert len(refused) == 1  # once a minute per endpoint, not once per request
    assert refused[0]["level"] == "error"
    assert refused[0]["endpoint"] == "sim-deep"
    assert "sk-leaked-by-echo" not in out.getvalue()


async def test_the_router_models_half_open_trial_readmits_its_endpoint(
    session: aiohttp.ClientSession,
) -> None:
    router_sim = SimulatedModel("sim-balanced")
    router_sim.behaviour.fault = HttpError(500)
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-fast")], balanced=[router_sim], deep=[SimulatedModel("d")]
    )
    extra = "[health]\neject_after_failures = 1\neject_base_seconds = 1\ninterval_seconds = 60\n"
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi there!"}]}
    async with fleet, running_router(config_for(fleet, strategy="llm", extra=extra)) as router:
        await first_probe_round(router)
        async with session.post(router.v1 + "/chat/completions", json=body) as first:
            assert first.headers["x-octoroute-strategy"] == "rule"  # the rules decided
        balanced = router.runtime.fleet.by_name("sim-balanced")[0]
        assert state(balanced) is Admission.EJECTED
        router_sim.behaviour.fault = None
        await wait_until(lambda: balanced.ready_at <= time.monotonic(), timeout=3, what="trial")
        async with session.post(router.v1 + "/chat/completions", json=body) as second:
            strategy = second.headers["x-octoroute-strategy"]

    assert strategy == "llm"  # the trial was the router model's own call, and it answered
    assert state(balanced) is Admission.ADMITTED


async def test_a_legacy_chat_client_that_goes_away_is_logged_as_499(
    fleet: SimulatedFleet,
) -> None:
    for sim in fleet.models:
        sim.behaviour.fault = Hang()
    out = io.StringIO()
    configure_logging("info", LogFormat.JSON, stream=out, cache=False)
    try:
        async with running_router(config_for(fleet, strategy="rule")) as router:
            timeout = aiohttp.ClientTimeout(total=0.3)
            async with aiohttp.ClientSession(timeout=timeout) as impatient:
                with pytest.raises(TimeoutError):
                    await impatient.post(router.url + "/chat", json={"message": "hi"})

            def logged() -> bool:
                return '"route":"chat"' in out.getvalue()

            await wait_until(logged, timeout=5, what="the /chat log line")
    finally:
        configure_logging("warning", LogFormat.TEXT, cache=False)
    (line,) = [orjson.loads(x) for x in out.getvalue().splitlines() if '"route":"chat"' in x]
    assert line["status"] == 499
    assert line["error"] == "client_disconnected"


async def test_router_model_fallbacks_are_all_counted_but_warned_once_a_minute(
    session: aiohttp.ClientSession,
) -> None:
    router_sim = SimulatedModel("sim-balanced", behaviour=Behaviour(router_answer="no idea"))
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-fast")], balanced=[router_sim], deep=[SimulatedModel("d")]
    )
    body = {"model": "auto", "messages": [{"role": "user", "content": "hi there!"}]}
    out = io.StringIO()
    configure_logging("info", LogFormat.JSON, stream=out, cache=False)
    try:
        async with fleet, running_router(config_for(fleet, strategy="llm")) as router:
            for _ in range(3):
                async with session.post(router.v1 + "/chat/completions", json=body) as answer:
                    assert answer.status == 200
                    assert answer.headers["x-octoroute-strategy"] == "rule"
            async with session.get(router.url + "/metrics") as response:
                text = await response.text()
    finally:
        configure_logging("warning", LogFormat.TEXT, cache=False)

    assert 'octoroute_routing_fallbacks_total{reason="unparseable"} 3.0' in text
    lines = [orjson.loads(line) for line in out.getvalue().splitlines() if line.startswith("{")]
    warned = [line for line in lines if line["event"].startswith("LLM router could not decide")]
    assert len(warned) == 1
    assert (warned[0]["reason"], warned[0]["suppressed"]) == ("unparseable", 0)

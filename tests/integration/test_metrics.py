"""``/metrics`` after real traffic: the counts that traffic must produce, parsed with
prometheus_client's own parser."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from octoroute.simulator import Drop, HttpError, SimulatedFleet, SimulatedModel
from tests.harness import RouterHandle, config_for, running_router

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


async def scrape(handle: RouterHandle) -> Samples:
    """Every sample of ``/metrics``, keyed by name and label set."""
    async with aiohttp.ClientSession() as session, session.get(handle.url + "/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain")
        text = await response.text()
    samples: Samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value; a missing sample fails with the names that do exist."""
    key = (name, frozenset(labels.items()))
    if key not in samples:
        known = sorted({n for n, _ in samples if n.startswith(name.split("{")[0][:20])})
        raise AssertionError(f"no sample {name}{labels}; similar: {known}")
    return samples[key]


V1_FAMILIES = (
    "octoroute_requests_total",
    "octoroute_routing_duration_ms_bucket",
    "octoroute_model_invocations_total",
    "octoroute_health_tracking_failures_total",
    "octoroute_metrics_recording_failures_total",
    "octoroute_background_health_task_failures_total",
    "octoroute_mid_stream_failures_total",
)


async def test_every_family_is_exposed_from_the_first_scrape(router: RouterHandle) -> None:
    samples = await scrape(router)
    names = {name for name, _ in samples}
    for family in (
        *V1_FAMILIES,
        "octoroute_upstream_request_duration_seconds_bucket",
        "octoroute_upstream_time_to_first_byte_seconds_bucket",
        "octoroute_upstream_responses_total",
        "octoroute_upstream_retries_total",
        "octoroute_failovers_total",
        "octoroute_routing_fallbacks_total",
        "octoroute_in_flight_requests",
        "octoroute_endpoint_healthy",
        "octoroute_tokens_total",
    ):
        assert family in names, family
    assert value(samples, "octoroute_requests_total", tier="fast", strategy="rule") == 0
    assert value(samples, "octoroute_background_health_task_failures_total") == 0
    buckets = {
        dict(labels)["le"]
        for name, labels in samples
        if name == "octoroute_routing_duration_ms_bucket" and dict(labels)["strategy"] == "rule"
    }
    assert {"0.1", "1.0", "100.0", "500.0", "+Inf"} <= buckets


async def test_traffic_produces_the_counts_it_must() -> None:
    first = SimulatedModel("sim-fast-a", config_keys={"priority": 2})
    fleet = SimulatedFleet(
        fast=[first, SimulatedModel("sim-fast-b")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
    )
    async with fleet, running_router(config_for(fleet, strategy="hybrid")) as handle:
        async with aiohttp.ClientSession() as session:

            async def post(body: dict[str, object]) -> int:
                async with session.post(handle.v1 + "/chat/completions", json=body) as response:
                    await response.read()
                    return response.status

            hello = [{"role": "user", "content": "hello"}]
            # 1. a plain success, explicit tier, with usage reported by the upstream
            assert await post({"model": "deep", "messages": hello}) == 200
            # 2. the priority-2 fast endpoint fails once: retried on the other one
            first.behaviour.fault, first.behaviour.fault_times = HttpError(500), 1
            assert await post({"model": "fast", "messages": hello}) == 200
            # 3. a stream that breaks after it started
            fleet.deep[0].behaviour.fault = Drop(after_chunks=3)
            assert await post({"model": "deep", "messages": hello, "stream": True}) == 200
            fleet.deep[0].behaviour.fault = None
            # 4. the LLM router refuses: the rules decide
            fleet.balanced[0].behaviour.router_answer = "Sorry, I cannot do that."
            async with session.post(
                handle.url + "/chat",
                json={"message": "hi", "task_type": "casual_chat", "importance": "high"},
            ) as response:
                assert response.status == 200
        samples = await scrape(handle)

    assert value(samples, "octoroute_requests_total", tier="deep", strategy="direct") == 2
    assert value(samples, "octoroute_requests_total", tier="fast", strategy="direct") == 1
    assert value(samples, "octoroute_requests_total", tier="balanced", strategy="rule") == 1
    assert value(samples, "octoroute_model_invocations_total", tier="deep") == 1
    assert value(samples, "octoroute_model_invocations_total", tier="fast") == 1
    assert value(samples, "octoroute_upstream_retries_total", tier="fast", reason="status") == 1
    assert value(samples, "octoroute_failovers_total", tier="fast") == 1
    assert value(samples, "octoroute_mid_stream_failures_total", endpoint="sim-deep") == 1
    assert value(samples, "octoroute_routing_fallbacks_total", reason="refusal") == 1
    instance_a = first.base_url.split("/")[2]
    assert (
        value(
            samples,
            "octoroute_upstream_responses_total",
            tier="fast",
            endpoint="sim-fast-a",
            instance=instance_a,
            status_class="5xx",
        )
        == 1
    )
    assert (
        value(
            samples,
            "octoroute_upstream_time_to_first_byte_seconds_count",
            tier="fast",
            endpoint="sim-fast-b",
            instance=fleet.fast[1].base_url.split("/")[2],
        )
        == 1
    )
    assert value(samples, "octoroute_tokens_total", tier="deep", kind="completion") > 0
    assert value(samples, "octoroute_in_flight_requests", tier="deep") == 0
    routing_count = value(samples, "octoroute_routing_duration_ms_count", strategy="direct")
    assert routing_count == 3

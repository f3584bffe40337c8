"""The dashboard's recording without sockets: the traffic windows, the percentiles, the ring of
decisions, ``[ui]`` and the effective configuration with every credential masked."""

from __future__ import annotations

import math

import orjson
import pytest

from octoroute.config import ConfigError, parse_config
from octoroute.config.effective import effective_config
from octoroute.config.schema import UiConfig
from octoroute.observability.decisions import Dashboard, Decided, DecisionRing
from octoroute.observability.window import (
    BUCKET_SECONDS,
    SAMPLES,
    TrafficWindow,
    bin_value,
    latency_bin,
    percentiles,
)

T0 = 1_800_000_000.0
"""A wall-clock time on a bucket boundary (divisible by 10)."""
FAST = ("fast", "learned", "learned")


def record(
    window: TrafficWindow,
    now: float,
    key: tuple[str, str | None, str | None] = FAST,
    *,
    ms: float = 10.0,
    ttfb: float | None = 5.0,
    instance: str | None = "fast[0]",
    usage: tuple[int, int] | None = (10, 20),
    error: bool = False,
    attempts: int = 1,
    fallback: bool = False,
) -> None:
    window.record(now, key, ms, ttfb, instance, usage, error, attempts, fallback)


# --- percentiles --------------------------------------------------------------------------------


@pytest.mark.parametrize("ms", [0.013, 0.5, 1.0, 7.3, 12.0, 250.0, 4000.0, 123456.0])
def test_a_bin_reads_back_within_five_percent(ms: float) -> None:
    assert bin_value(latency_bin(ms)) == pytest.approx(ms, rel=0.045)


def test_a_latency_of_zero_has_a_bin_of_its_own() -> None:
    assert bin_value(latency_bin(0.0)) == 0.0
    assert latency_bin(0.0) < latency_bin(0.0001)


def test_percentiles_are_nearest_rank_over_weighted_bins() -> None:
    bins: dict[float, float] = {}
    for ms in range(1, 101):  # 1..100 ms, one each
        index = latency_bin(float(ms))
        bins[index] = bins.get(index, 0.0) + 1.0

    p50, p95 = percentiles(bins) or (0.0, 0.0)

    assert p50 == pytest.approx(50, rel=0.05)
    assert p95 == pytest.approx(95, rel=0.05)
    assert percentiles({}) is None


# --- the windows --------------------------------------------------------------------------------


def test_a_request_is_counted_by_pool_strategy_reason_and_tokens() -> None:
    window = TrafficWindow(T0)
    record(window, T0 + 1)
    record(window, T0 + 2, ("deep", "rule", "signal:proof"), usage=(1, 2))
    record(window, T0 + 3, ("unrouted", None, None), ttfb=None, instance=None, usage=None)

    view = window.view(300, T0 + 5)

    assert view.requests == {"fast": 1, "deep": 1, "unrouted": 1}
    assert view.total == 3
    assert view.strategies == {"learned": 1, "rule": 1}
    assert view.reasons == {"learned": 1, "signal:proof": 1}
    assert view.tokens == {"fast": (10, 20), "deep": (1, 2)}


def test_errors_retries_failovers_and_fallbacks() -> None:
    window = TrafficWindow(T0)
    record(window, T0 + 1, error=True, attempts=3)  # retried twice, failed anyway
    record(window, T0 + 2, attempts=2)  # retried once, answered: a failover
    record(window, T0 + 3, fallback=True)

    view = window.view(300, T0 + 4)

    assert (view.errors, view.retries, view.failovers, view.fallbacks) == (1, 3, 1, 1)
    stats = view.instances["fast[0]"]
    assert stats.requests == 3
    assert stats.error_rate == pytest.approx(1 / 3)


def test_the_five_minute_window_has_thirty_ten_second_buckets_oldest_first() -> None:
    window = TrafficWindow(T0)
    record(window, T0 + 1)
    record(window, T0 + 11)
    record(window, T0 + 12)

    view = window.view(300, T0 + 15)

    assert (view.seconds, view.bucket_seconds, len(view.buckets)) == (300, 10, 30)
    assert [b.start for b in view.buckets][-2:] == [T0, T0 + 10]
    assert view.buckets[-2].requests == {"fast": 1}
    assert view.buckets[-1].requests == {"fast": 2}
    assert all(b.requests == {} for b in view.buckets[:-2])


def test_the_hour_window_shows_sixty_one_minute_buckets_summing_their_ten_second_ones() -> None:
    window = TrafficWindow(T0)
    for second in range(0, 120, 5):  # 24 requests over two minutes
        record(window, T0 + second)

    view = window.view(3600, T0 + 125)

    assert (view.bucket_seconds, len(view.buckets)) == (60, 60)
    assert sum(sum(b.requests.values()) for b in view.buckets) == 24
    assert view.total == 24
    assert [b.start % 60 == (view.buckets[0].start % 60) for b in view.buckets] == [True] * 60


def test_requests_older_than_the_window_are_not_counted() -> None:
    window = TrafficWindow(T0)
    record(window, T0 + 1)
    record(window, T0 + 400)

    assert window.view(300, T0 + 405).total == 1
    assert window.view(3600, T0 + 405).total == 2
    assert window.view(3600, T0 + 3700).total == 1  # the first one is more than an hour old


def test_a_bucket_slot_reused_an_hour_later_starts_empty() -> None:
    window = TrafficWindow(T0)
    record(window, T0 + 1)
    record(window, T0 + 3601)  # the same ring slot, an hour later

    view = window.view(3600, T0 + 3602)

    assert view.total == 1


def test_instance_latency_percentiles_and_rate_over_the_window() -> None:
    window = TrafficWindow(T0)
    for ms in range(1, 101):
        record(window, T0 + 1 + ms / 100, ms=float(ms), ttfb=ms / 2)

    view = window.view(300, T0 + 3)

    stats = view.instances["fast[0]"]
    assert stats.requests == 100
    assert stats.latency_ms is not None
    assert stats.latency_ms[0] == pytest.approx(50, rel=0.05)
    assert stats.latency_ms[1] == pytest.approx(95, rel=0.05)
    assert view.ttft_ms is not None
    assert view.ttft_ms[0] == pytest.approx(25, rel=0.05)
    assert view.ttft_ms[1] == pytest.approx(47.5, rel=0.05)
    assert view.covered_seconds == pytest.approx(3)
    assert window.instance_stats(300, T0 + 3) == view.instances


def test_a_busy_bucket_keeps_a_bounded_sample_that_weighs_all_its_requests() -> None:
    window = TrafficWindow(T0)
    # A quiet bucket: 10 requests of 100 ms. A busy one: 10 x SAMPLES requests of 1 ms.
    for _ in range(10):
        record(window, T0 + 1, ms=100.0)
    for _ in range(10 * SAMPLES):
        record(window, T0 + BUCKET_SECONDS + 1, ms=1.0)

    view = window.view(300, T0 + 2 * BUCKET_SECONDS + 1)

    stats = view.instances["fast[0]"]
    assert stats.requests == 10 + 10 * SAMPLES
    assert stats.latency_ms is not None
    # The busy bucket's 1 ms requests are nearly all of them: p95 is 1 ms, not 100 ms.
    assert stats.latency_ms[1] == pytest.approx(1.0, rel=0.05)
    assert len(window._ring[1].latency["fast[0]"]) == SAMPLES  # type: ignore[union-attr]


def test_a_closed_bucket_bins_once_and_an_open_one_every_read() -> None:
    window = TrafficWindow(T0)
    record(window, T0 + 1, ms=10.0)
    window.view(300, T0 + 2)  # the bucket is still open: nothing is kept
    record(window, T0 + 3, ms=10.0)

    assert window.view(300, T0 + 4).instances["fast[0]"].requests == 2
    assert window.view(300, T0 + 12).instances["fast[0]"].requests == 2  # closed: binned now
    assert window.view(300, T0 + 13).instances["fast[0]"].latency_ms is not None


# --- the decision ring and the dashboard ---------------------------------------------------------


def decided(number: int, preview: str | None = None) -> Decided:
    return (T0 + number, f"req-{number}", {"route": "chat_completions", "n": number}, preview)


def test_the_ring_keeps_the_newest_decisions_newest_first() -> None:
    ring: DecisionRing[int] = DecisionRing(3)
    for number in range(5):
        ring.append(number)

    assert ring.newest() == [4, 3, 2]
    assert len(ring) == 3


def test_a_resized_ring_keeps_the_newest_that_fit_and_appends_to_the_new_deque() -> None:
    ring: DecisionRing[int] = DecisionRing(5)
    for number in range(5):
        ring.append(number)

    ring.resize(2)
    ring.append(5)

    assert ring.newest() == [5, 4]


def test_the_dashboard_takes_a_reloaded_ui_and_keeps_its_windows() -> None:
    dashboard = Dashboard(UiConfig(decisions=4, show_prompts=True), T0)
    record(dashboard.traffic, T0 + 1)
    for number in range(4):
        dashboard.decided(decided(number, preview=f"prompt {number}"))

    dashboard.configure(UiConfig(decisions=2))

    assert [item[1] for item in dashboard.decisions.newest()] == ["req-3", "req-2"]
    assert all(item[3] is None for item in dashboard.decisions.newest()), "previews dropped"
    assert (dashboard.show_prompts, dashboard.preview_chars) == (False, 200)
    assert dashboard.traffic.view(300, T0 + 2).total == 1


def test_listeners_hear_every_decision() -> None:
    dashboard = Dashboard(UiConfig(), T0)
    heard: list[Decided] = []
    dashboard.listeners.append(heard.append)

    dashboard.decided(decided(1))
    dashboard.decided(decided(2))

    assert [item[1] for item in heard] == ["req-1", "req-2"]


# --- [ui] ---------------------------------------------------------------------------------------

BASE = """
[server]
host = "127.0.0.1"
port = 3000

[[models.fast]]
name = "small"
base_url = "http://127.0.0.1:8001/v1"
max_tokens = 1024

[[models.balanced]]
name = "medium"
base_url = "http://127.0.0.1:8002/v1"
max_tokens = 1024

[[models.deep]]
name = "large"
base_url = "http://127.0.0.1:8003/v1"
max_tokens = 1024

[routing]
strategy = "rule"
"""


def test_ui_defaults_without_the_section() -> None:
    assert parse_config(BASE, environ={}).ui == UiConfig(
        enabled=True, show_prompts=False, decisions=100, prompt_preview_chars=200
    )


def test_ui_keys_are_read() -> None:
    text = BASE + (
        "[ui]\nenabled = false\nshow_prompts = true\ndecisions = 10000\n"
        "prompt_preview_chars = 2000\n"
    )

    assert parse_config(text, environ={}).ui == UiConfig(
        enabled=False, show_prompts=True, decisions=10000, prompt_preview_chars=2000
    )


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("decisions = 0", "ui.decisions"),
        ("decisions = 10001", "ui.decisions"),
        ("prompt_preview_chars = 2001", "ui.prompt_preview_chars"),
        ('enabled = "yes"', "ui.enabled: must be true or false"),
        ("show_prompt = true", "ui.show_prompt: unknown key"),
    ],
)
def test_ui_problems_name_the_key(line: str, problem: str) -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(BASE + f"[ui]\n{line}\n", environ={})

    assert any(p.startswith(problem) for p in caught.value.problems), caught.value.problems


# --- the effective configuration ----------------------------------------------------------------

SECRETS = BASE.replace(
    'base_url = "http://127.0.0.1:8001/v1"',
    'base_url = "http://admin:hunter2-userinfo@127.0.0.1:8001/v1"\napi_key_env = "FAST_KEY"',
) + (
    "[auth]\n[[auth.keys]]\n"
    'name = "ops"\nkey_sha256 = "4a67a34508abd11621b20a6bea3f6b74db7ce8930589b7ec78f87696c8c02b43"\n'
    "admin = true\n"
    '[[auth.keys]]\nname = "laptop"\nkey_env = "LAPTOP_KEY"\n'
    '[state]\nredis_url = "redis://:redis-url-pw@127.0.0.1:6379/0"\npassword_env = "REDIS_PW"\n'
)
ENVIRON = {
    "FAST_KEY": "sk-upstream-secret-key",
    "LAPTOP_KEY": "sk-laptop-client-key",
    "REDIS_PW": "redis-password-secret",
}
CREDENTIALS = (
    "hunter2-userinfo",
    "sk-upstream-secret-key",
    "sk-laptop-client-key",
    "4a67a34508abd11621b20a6bea3f6b74db7ce8930589b7ec78f87696c8c02b43",
    "redis-url-pw",
    "redis-password-secret",
)


def test_the_effective_config_masks_every_credential() -> None:
    config = parse_config(SECRETS, environ=ENVIRON)

    shown = effective_config(config)
    text = orjson.dumps(shown).decode()

    for secret in CREDENTIALS:
        assert secret not in text, secret
    import hashlib

    assert hashlib.sha256(b"sk-laptop-client-key").hexdigest() not in text
    fast = shown["models"]["fast"][0]
    assert fast["base_url"] == "http://admin:***@127.0.0.1:8001/v1"
    assert (fast["api_key"], fast["api_key_env"]) == ("***", "FAST_KEY")
    assert [key["key_sha256"] for key in shown["auth"]["keys"]] == ["***", "***"]
    assert shown["state"]["redis_url"] == "redis://***@127.0.0.1:6379/0"
    assert (shown["state"]["password"], shown["state"]["password_env"]) == ("***", "REDIS_PW")


def test_the_effective_config_shows_what_is_not_secret_as_configured() -> None:
    config = parse_config(BASE, environ={})

    shown = effective_config(config)

    assert shown["routing"]["strategy"] == "rule"
    assert shown["models"]["fast"][0]["base_url"] == "http://127.0.0.1:8001/v1"
    assert shown["models"]["fast"][0]["api_key"] is None
    assert shown["ui"] == {
        "enabled": True,
        "show_prompts": False,
        "decisions": 100,
        "prompt_preview_chars": 200,
    }
    assert shown["auth"] is None
    assert not math.isnan(shown["models"]["fast"][0]["weight"])

"""The dashboard in a real headless browser (Debian's chromium through Selenium, ``tests/browser``)
against the real router in front of a simulated fleet, over real sockets.

What a person at the page would check: it loads with no console error and goes live, it shows
every tier and instance, an instance that dies turns unhealthy within a probe interval (plus the
event's way to the page), a request shows up as a decision, the playground answers exactly what
``POST /route`` answers, an admin key is asked for and used when ``[auth]`` is on, and nothing
scrolls sideways at 1280x800 or on a 390 px phone. Screenshots of each go to
``test-artifacts/screenshots/`` for review.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from openai import AsyncOpenAI
from selenium import webdriver

from octoroute.config import load_config
from octoroute.simulator import SimulatedFleet, SimulatedModel, fleet_config_toml
from octoroute.simulator.behaviour import HttpError
from tests.browser import PHONE, WIDE, Page, find_chromium, start_chromium
from tests.dashboard_keys import ALICE, AUTH, OPS
from tests.harness import RouterHandle, config_for, running_router

pytestmark = pytest.mark.timeout(120)

PROBE_INTERVAL: Final = 1.0
"""``[health] interval_seconds`` of these routers, with ``failure_threshold = 1``."""
EVENT_ALLOWANCE: Final = 1.5
"""What a health change may take beyond the probe interval to show: the fleet event is sent
within 0.25 s of the change, then the page renders it on its next frame."""
HEALTH = f"[health]\ninterval_seconds = {PROBE_INTERVAL}\nfailure_threshold = 1\n"
EXPECTED: Final = {
    "fast": [("fast[0]", "sim-fast-a"), ("fast[1]", "sim-fast-b")],
    "balanced": [("balanced[0]", "sim-balanced")],
    "deep": [("deep[0]", "sim-deep")],
    "embeddings": [("embeddings[0]", "sim-embed")],
}
SHOWN_FLEET: Final = """
[...document.querySelectorAll('#fleet-body .tier-block')].map((block) => [
  block.dataset.tier,
  [...block.querySelectorAll('tr[data-instance]')].map((row) =>
    [row.dataset.instance, row.querySelector('strong').textContent, row.dataset.health]),
])"""
ROWS: Final = "document.querySelectorAll('#fleet-body tr[data-instance]').length"
PROMPT: Final = "Write a Python function that parses a CSV file and returns rows"


@pytest.fixture(scope="module")
def chromium() -> Iterator[webdriver.Chrome]:
    found = find_chromium()
    if isinstance(found, str):
        pytest.fail(found)
    driver = start_chromium(*found)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def page(chromium: webdriver.Chrome) -> Page:
    return Page(chromium)


@pytest.fixture
async def fleet() -> AsyncIterator[SimulatedFleet]:
    """Two fast replicas, one balanced, one deep and an embedding model."""
    models = SimulatedFleet(
        fast=[SimulatedModel("sim-fast-a"), SimulatedModel("sim-fast-b")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
        embeddings=[SimulatedModel("sim-embed")],
    )
    async with models as started:
        yield started


@pytest.fixture
async def router(fleet: SimulatedFleet) -> AsyncIterator[RouterHandle]:
    async with running_router(config_for(fleet, strategy="learned", extra=HEALTH)) as handle:
        yield handle


def errors(entries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [entry for entry in entries if entry["level"] == "SEVERE"]


async def shown_fleet(page: Page) -> dict[str, list[tuple[str, str, str]]]:
    blocks = await page.js(f"return {SHOWN_FLEET.strip()};")
    return {tier: [tuple(row) for row in rows] for tier, rows in blocks}


async def chat(router: RouterHandle, request_id: str, content: str = "hi there") -> str:
    """One chat completion through the openai SDK; the tier the router answered it from."""
    async with AsyncOpenAI(base_url=router.v1, api_key="none", max_retries=0) as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="auto",
            messages=[{"role": "user", "content": content}],
            extra_headers={"x-request-id": request_id},
        )
    return raw.headers["x-octoroute-tier"]


async def test_the_page_loads_live_with_every_tier_and_instance_and_no_console_error(
    page: Page, router: RouterHandle
) -> None:
    await page.open(f"{router.url}/ui")  # the bare path redirects to the page

    await page.until(f"{ROWS} === 5", what="the fleet's five instances on the page")
    await page.until(
        "document.getElementById('connection').textContent === 'live'",
        what="the live event stream",
    )
    await page.until(
        "[...document.querySelectorAll('#fleet-body tr[data-instance]')]"
        ".every((row) => row.dataset.health === 'healthy')",
        what="every instance healthy after the first probes",
    )
    shown = await shown_fleet(page)
    assert {tier: [row[:2] for row in rows] for tier, rows in shown.items()} == EXPECTED
    assert await page.js("return location.pathname;") == "/ui/"
    facts = await page.js("return document.getElementById('router-facts').textContent;")
    assert "learned" in facts
    effective = json.loads(
        await page.js("return document.getElementById('config-json').textContent;")
    )
    assert [m["name"] for m in effective["models"]["fast"]] == ["sim-fast-a", "sim-fast-b"]
    reload_note = await page.js("return document.getElementById('last-reload').textContent;")
    assert reload_note == "Not reloaded since it started."
    await page.screenshot("fleet-1280x800", WIDE)
    assert errors(await page.console()) == []


async def test_a_killed_instance_turns_unhealthy_on_the_page_within_the_probe_interval(
    page: Page, router: RouterHandle, fleet: SimulatedFleet
) -> None:
    watched = "tr[data-instance='fast[0]']"
    await page.open(f"{router.url}/ui/")
    await page.until(
        f"document.querySelector(\"{watched}\")?.dataset.health === 'healthy'",
        what="sim-fast-a healthy on the page",
    )
    await page.until(
        "document.getElementById('connection').textContent === 'live'", what="the event stream"
    )

    killed_at = time.monotonic()
    await fleet.fast[0].stop()
    health = await page.until(
        f"document.querySelector(\"{watched}\").dataset.health !== 'healthy' "
        f'&& document.querySelector("{watched}").dataset.health',
        what="the killed instance shown as not healthy",
    )
    took = time.monotonic() - killed_at

    assert health == "unhealthy"
    assert took <= PROBE_INTERVAL + EVENT_ALLOWANCE, f"the page showed it after {took:.2f} s"
    row = await page.js(f'return document.querySelector("{watched}").textContent;')
    assert "sim-fast-a" in row
    assert "127.0.0.1" in row  # the last error names the address that refused
    other = "tr[data-instance='fast[1]']"
    assert await page.js(f'return document.querySelector("{other}").dataset.health;') == ("healthy")
    summary = await page.js("return document.getElementById('fleet-summary').textContent;")
    assert summary == "4 of 5 instances healthy"
    assert await page.js("return document.title;") == "4/5 healthy · octoroute"
    print(
        f"\nkilled instance shown unhealthy after {took:.2f} s (probe interval {PROBE_INTERVAL} s)"
    )
    await page.screenshot("killed-instance-1280x800", WIDE)
    assert errors(await page.console()) == []


async def test_a_request_shows_up_as_a_decision_and_in_the_traffic(
    page: Page, router: RouterHandle
) -> None:
    await page.open(f"{router.url}/ui/")
    await page.until(
        "document.getElementById('connection').textContent === 'live'", what="the event stream"
    )
    request_id = f"dash-{uuid.uuid4()}"

    tier = await chat(router, request_id, PROMPT)

    row = f"#decisions-table tr[data-request-id='{request_id}']"
    await page.until(f'document.querySelector("{row}")', what="the request's decision row")
    cells = await page.js(
        f'return Object.fromEntries([...document.querySelector("{row}").cells]'
        ".map((cell) => [cell.dataset.label, cell.textContent]));"
    )
    assert cells["Tier"] == tier
    assert cells["Strategy"] == "learned"
    assert cells["Status"] == "200"
    assert cells["Instance"].startswith(f"{tier}[")
    assert cells["Confidence"].endswith("%")
    assert "Prompt preview" not in cells  # [ui] show_prompts is off
    assert PROMPT not in await page.js("return document.body.textContent;")
    await page.until(
        "document.querySelector('#traffic-body .stat .value')?.textContent === '1'",
        what="the request counted in the traffic",
        timeout=15,
    )

    await page.choose("#window-select", "3600")
    await page.until(
        "document.querySelector('#traffic-body .muted.small')?.textContent"
        ".startsWith('Over the last 1 h')",
        what="the hour's window",
    )
    assert errors(await page.console()) == []


async def playground_answer(page: Page) -> dict[str, Any]:
    await page.click("#pg-submit")
    raw = await page.until(
        "document.getElementById('pg-raw')?.textContent", what="the playground's decision"
    )
    answer: dict[str, Any] = json.loads(raw)
    return answer


def comparable(decision: dict[str, Any]) -> dict[str, Any]:
    """A decision without what varies between two identical requests (time taken)."""
    return {key: value for key, value in decision.items() if key != "routing_ms"}


async def test_the_playground_answers_what_post_route_answers(
    page: Page, router: RouterHandle
) -> None:
    await page.open(f"{router.url}/ui/")
    await page.until("document.getElementById('connection').textContent === 'live'", what="live")

    await page.type("#pg-prompt", PROMPT)
    await page.choose("#pg-importance", "high")
    await page.choose("#pg-strategy", "rule")
    shown = await playground_answer(page)
    conversation = [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "Prove that there are infinitely many primes."},
    ]
    await page.type("#pg-prompt", json.dumps(conversation))
    await page.choose("#pg-importance", "")
    await page.choose("#pg-strategy", "")
    await page.until("!document.getElementById('pg-submit').disabled", what="the form ready")
    shown_conversation = await playground_answer(page)
    verdict = await page.js(
        "return Object.fromEntries([...document.querySelectorAll('#pg-decision [data-field]')]"
        ".map((el) => [el.dataset.field, el.textContent]));"
    )

    async with httpx.AsyncClient(base_url=router.url) as http:
        direct = (
            await http.post(
                "/route",
                params={"strategy": "rule"},
                headers={"x-octoroute-importance": "high"},
                json={"model": "auto", "messages": [{"role": "user", "content": PROMPT}]},
            )
        ).json()
        direct_conversation = (
            await http.post("/route", json={"model": "auto", "messages": conversation})
        ).json()

    assert comparable(shown) == comparable(direct)
    assert shown["strategy"] == "rule"  # the strategy picked, not the configured learned
    assert shown["importance"] == "high"
    assert comparable(shown_conversation) == comparable(direct_conversation)
    assert verdict["tier"] == direct_conversation["tier"]
    assert verdict["reason"] == direct_conversation["reason"]
    assert verdict["strategy"] == direct_conversation["strategy"]
    await page.screenshot("playground-1280x800", WIDE)

    await page.type("#pg-prompt", PROMPT)
    await page.click("#pg-compare")
    compared = await page.until(
        "document.querySelectorAll('#pg-result .compare [data-tier]').length === 4 && "
        "Object.fromEntries([...document.querySelectorAll('#pg-result .compare [data-strategy]')]"
        ".map((el) => [el.dataset.strategy, el.querySelector('[data-tier]').dataset.tier]))",
        what="the four strategies compared",
    )
    async with httpx.AsyncClient(base_url=router.url) as http:
        for strategy in ("rule", "llm", "hybrid", "learned"):
            answer = await http.post(
                "/route",
                params={"strategy": strategy},
                json={"model": "auto", "messages": [{"role": "user", "content": PROMPT}]},
            )
            assert compared[strategy] == answer.json()["tier"], strategy
    assert errors(await page.console()) == []


async def test_prompt_previews_show_only_when_the_config_turns_them_on(
    page: Page, fleet: SimulatedFleet
) -> None:
    config = config_for(fleet, strategy="rule", extra=HEALTH + "[ui]\nshow_prompts = true\n")
    async with running_router(config) as router:
        await page.open(f"{router.url}/ui/")
        await page.until(
            "document.getElementById('connection').textContent === 'live'", what="live"
        )
        request_id = f"preview-{uuid.uuid4()}"
        await chat(router, request_id, PROMPT)
        row = f"#decisions-table tr[data-request-id='{request_id}']"
        preview = await page.until(
            f"document.querySelector(\"{row} td[data-label='Prompt preview']\")?.textContent",
            what="the decision's prompt preview",
        )
        note = await page.js("return document.getElementById('decisions-note').textContent;")

    assert preview == PROMPT
    assert "show_prompts = true" in note
    assert errors(await page.console()) == []


async def test_with_auth_the_page_asks_for_an_admin_key_and_works_once_given_one(
    page: Page, fleet: SimulatedFleet
) -> None:
    config = config_for(fleet, strategy="learned", extra=HEALTH + AUTH)
    async with running_router(config) as router:
        await page.open(f"{router.url}/ui/")
        await page.until("!document.getElementById('key-prompt').hidden", what="the key prompt")
        assert await page.js("return document.getElementById('connection').textContent;") == (
            "key needed"
        )
        assert await page.js(f"return {ROWS};") == 0
        await page.screenshot("key-prompt-390x844", PHONE)

        await page.type("#key-input", ALICE)
        await page.click("#key-form button[type=submit]")
        refused = await page.until(
            "document.getElementById('key-reason').textContent.includes('may not see') "
            "&& document.getElementById('key-reason').textContent",
            what="a non-admin key refused with its reason",
        )
        assert "admin" in refused

        await page.type("#key-input", OPS)
        await page.click("#key-form button[type=submit]")
        await page.until(f"{ROWS} === 5", what="the fleet, once an admin key was given")
        await page.until(
            "document.getElementById('connection').textContent === 'live'",
            what="the event stream, with the key in a header",
        )
        assert await page.js("return document.getElementById('key-prompt').hidden;")
        assert await page.js("return sessionStorage.getItem('octoroute.adminKey');") == OPS
        requested = await page.js(
            "return performance.getEntriesByType('resource').map((e) => e.name)"
            ".concat([location.href]);"
        )
        assert any("/admin/events" in url for url in requested)
        assert not [url for url in requested if OPS in url or ALICE in url]
        await chat_with_key(router, OPS)
        await page.until(
            "document.querySelector('#decisions-table td[data-label=Key]')?.textContent === 'ops'",
            what="the decision with the key's name",
        )
        console = await page.console()
        # The refused requests show as network errors; the page's own code raised nothing.
        assert [entry for entry in errors(console) if entry.get("source") != "network"] == []


async def chat_with_key(router: RouterHandle, key: str) -> None:
    async with AsyncOpenAI(base_url=router.v1, api_key=key, max_retries=0) as client:
        await client.chat.completions.create(
            model="auto", messages=[{"role": "user", "content": "hi"}]
        )


@pytest.mark.parametrize(("size", "name"), [(WIDE, "1280x800"), (PHONE, "390x844")])
async def test_the_page_fits_the_screen_at_1280x800_and_on_a_phone(
    page: Page, router: RouterHandle, size: tuple[int, int], name: str
) -> None:
    await page.open(f"{router.url}/ui/", size)
    await page.until("document.getElementById('connection').textContent === 'live'", what="live")
    await chat(router, f"fit-{uuid.uuid4()}", PROMPT)
    await page.until("document.querySelector('#decisions-table tbody tr')", what="a decision")
    await page.type("#pg-prompt", "Design a rate limiter for a multi-region API")
    await playground_answer(page)

    landmarks = await page.js(
        "return ['header', 'nav', 'main', 'footer'].filter((tag) => document.querySelector(tag));"
    )
    unlabelled = await page.js(
        "return [...document.querySelectorAll('input, select, textarea')]"
        ".filter((el) => el.labels.length === 0).map((el) => el.id);"
    )
    overflow = await page.overflow()
    await page.screenshot(f"dashboard-{name}", size)

    assert landmarks == ["header", "nav", "main", "footer"]
    assert unlabelled == []
    assert overflow == 0, f"the page scrolls sideways by {overflow} px at {name}"
    assert errors(await page.console()) == []


async def test_an_ejected_instance_shows_its_cause_and_a_countdown_to_its_return(
    page: Page, fleet: SimulatedFleet
) -> None:
    broken = fleet.fast[0]
    broken.behaviour.fault = HttpError(500)
    broken.config_keys["priority"] = 2  # preferred while admitted, so it is tried first
    extra = "[health]\ninterval_seconds = 60\neject_after_failures = 2\neject_base_seconds = 30\n"
    async with running_router(config_for(fleet, strategy="rule", extra=extra)) as router:
        await page.open(f"{router.url}/ui/")
        await page.until(
            "document.getElementById('connection').textContent === 'live'", what="live"
        )
        async with AsyncOpenAI(base_url=router.v1, api_key="none", max_retries=0) as client:
            for _ in range(2):  # each fails on sim-fast-a, then is answered by sim-fast-b
                await client.chat.completions.create(
                    model="fast", messages=[{"role": "user", "content": "hi"}]
                )

        watched = "tr[data-instance='fast[0]']"
        await page.until(
            f"document.querySelector(\"{watched}\")?.dataset.health === 'ejected'",
            what="sim-fast-a shown as ejected",
        )
        first = await page.js(f'return document.querySelector("{watched} .countdown").textContent;')
        later = await page.until(
            f'document.querySelector("{watched} .countdown").textContent !== arguments[0] '
            f'&& document.querySelector("{watched} .countdown").textContent',
            first,
            what="the countdown to its return moving",
        )
        health = await page.js(
            f'return document.querySelector("{watched} td[data-label=Health]").textContent;'
        )
        await page.until(
            "[...document.querySelectorAll('#decisions-table td[data-label=Attempts]')]"
            ".filter((cell) => cell.textContent.startsWith('2')).length === 2",
            what="both requests shown with two attempts",
        )
        await page.until(
            "[...document.querySelectorAll('#traffic-body .stat')].some((tile) => "
            "tile.querySelector('.label').textContent === 'failovers' && "
            "tile.querySelector('.value').textContent === '2')",
            what="the two failovers in the traffic",
            timeout=15,
        )
        await page.screenshot("ejected-instance-1280x800", WIDE)

    assert "back in" in health
    assert "status" in health or "500" in health  # the cause
    assert first.endswith(" s")
    assert later.endswith(" s")
    assert 0 < int(later.split()[0]) < int(first.split()[0]) <= 30
    assert errors(await page.console()) == []


async def test_without_the_event_stream_the_page_polls_and_still_shows_each_decision(
    page: Page, router: RouterHandle
) -> None:
    await page.block("*/admin/events*")  # a proxy that drops the stream
    try:
        await page.open(f"{router.url}/ui/")
        await page.until(f"{ROWS} === 5", what="the fleet, from /admin/state")
        status = await page.until(
            "document.getElementById('connection').textContent.startsWith('polling') "
            "&& document.getElementById('connection').textContent",
            what="the page polling",
        )
        request_id = f"polled-{uuid.uuid4()}"
        await chat(router, request_id)
        await page.until(
            f"document.querySelector(\"#decisions-table tr[data-request-id='{request_id}']\")",
            what="the decision, from polling",
        )
        console = await page.console()
    finally:
        await page.block()

    assert status == "polling every 2 s"
    # Only the blocked stream failed; the page's own code raised nothing.
    assert [e for e in errors(console) if "admin/events" not in e["message"]] == []


async def test_the_config_section_shows_each_reload_refused_or_applied(
    page: Page, fleet: SimulatedFleet, tmp_path: Path
) -> None:
    path = tmp_path / "octoroute.toml"
    text = fleet_config_toml(fleet, strategy="learned", extra=HEALTH)
    path.write_text(text, encoding="utf-8")
    last = "document.getElementById('last-reload')"
    async with running_router(load_config(path)) as router, httpx.AsyncClient() as http:
        await page.open(f"{router.url}/ui/")
        await page.until(f"{last}?.textContent === 'Not reloaded since it started.'", what="none")

        path.write_text(text.replace('strategy = "learned"', 'strategy = "bogus"'), "utf-8")
        refused = await http.post(f"{router.url}/admin/reload")
        shown_refusal = await page.until(
            f"{last}.querySelector('[data-ok=false]') && {last}.textContent",
            what="the refused reload",
        )
        path.write_text(text.replace('strategy = "learned"', 'strategy = "rule"'), "utf-8")
        applied = await http.post(f"{router.url}/admin/reload")
        shown_change = await page.until(
            f"{last}.querySelector('[data-ok=true]') && {last}.textContent",
            what="the applied reload",
        )
        await page.until(
            "document.getElementById('router-facts').textContent.includes('strategyrule')",
            what="the new strategy in the header",
        )
        await page.screenshot("config-reloaded-1280x800", WIDE)

    assert refused.status_code != 200
    assert "refused" in shown_refusal
    assert "bogus" in shown_refusal  # the problem, as the reload reported it
    assert applied.status_code == 200
    assert "applied" in shown_change
    assert "routing.strategy" in shown_change
    assert errors(await page.console()) == []

"""``[auth]`` over real sockets with the official SDKs: every key header, 401/403/429 in each
dialect's shape, ``auto`` capped by a key's tiers, explicit models refused, operator paths,
limits over time (clock injected) and concurrency, the log line and the metrics."""

from __future__ import annotations

import hashlib
import io
import re
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from datetime import UTC, datetime

import anthropic
import httpx
import msgspec
import ollama
import openai
import orjson
import pytest
import structlog
from openai.types.chat import ChatCompletionMessageParam

from octoroute.access.limits import LocalLimiter
from octoroute.config import Config
from octoroute.enums import LogFormat
from octoroute.fleet.facts import InstanceFacts
from octoroute.observability.logging import configure_logging
from octoroute.simulator import HttpError, SimulatedFleet, SimulatedModel
from tests.harness import (
    RouterHandle,
    config_for,
    endpoint,
    running_router,
    wait_until,
    within,
)

ALICE = "sk-octo-alice-0123456789abcdefghij"
"""Tiers fast and balanced, every limit off unless a test sets one."""
OPS = "sk-octo-ops-0123456789abcdefghijkl"
"""An admin key, every tier."""
WRONG = "sk-octo-not-a-key-0123456789abcdef"
CAROL = "sk-octo-carol-0123456789abcdefghij"
"""Added by the tests that need a key limited to named models."""
DEEP_PROMPT = (
    "Analyze in depth the philosophical implications of quantum mechanics on free will, compare "
    "with determinism and write a thorough essay"
)
"""The rule strategy sends this to deep (``signal:analysis_deep``)."""
CODE_PROMPT = "Write a Python function that parses a CSV file and returns rows"
"""The rule strategy sends this to balanced (``signal:code``)."""


def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def auth_section(alice: str = "", *, public: str | None = None, ops: str = "") -> str:
    """``[auth]`` with alice (fast and balanced, plus ``alice``'s extra lines) and ops (admin)."""
    lines = ["[auth]"]
    if public is not None:
        lines.append(f"public_paths = {public}")
    lines += [
        "[[auth.keys]]",
        'name = "alice"',
        f'key_sha256 = "{sha(ALICE)}"',
        'tiers = ["fast", "balanced"]',
        alice,
        "[[auth.keys]]",
        'name = "ops"',
        f'key_sha256 = "{sha(OPS)}"',
        "admin = true",
        ops,
    ]
    return "\n".join(lines) + "\n"


def keyed_config(fleet: SimulatedFleet, auth: str, **options: object) -> Config:
    return config_for(fleet, strategy="rule", extra=auth, **options)


@asynccontextmanager
async def keyed(fleet: SimulatedFleet, auth: str | None = None) -> AsyncIterator[RouterHandle]:
    async with running_router(keyed_config(fleet, auth or auth_section())) as handle:
        yield handle


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def stepped(router: RouterHandle) -> Clock:
    """Give the router's per-process counters a clock the test moves."""
    clock = Clock()
    router.runtime.limiter.local = LocalLimiter(clock)
    return clock


def chat_body(content: str = "hi", model: str = "auto", **extra: object) -> dict[str, object]:
    return {"model": model, "messages": [{"role": "user", "content": content}], **extra}


def sample(router: RouterHandle, name: str, **labels: str) -> float | None:
    return router.runtime.metrics.registry.get_sample_value(name, labels)


def openai_client(router: RouterHandle, key: str) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=router.v1, api_key=key, max_retries=0)


def anthropic_client(router: RouterHandle, key: str) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(base_url=router.url, api_key=key, max_retries=0)


async def openai_chat(router: RouterHandle, key: str, model: str = "fast") -> str | None:
    """One chat completion through the openai SDK (its key as ``Authorization: Bearer``)."""
    async with openai_client(router, key) as client:
        answer = await client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "hi"}]
        )
        return answer.choices[0].message.content


async def anthropic_message(router: RouterHandle, key: str, model: str = "fast") -> object:
    """One Messages request through the anthropic SDK (its key as ``x-api-key``)."""
    async with anthropic_client(router, key) as client:
        answer = await client.messages.create(
            model=model, max_tokens=50, messages=[{"role": "user", "content": "hi"}]
        )
        return answer.content


async def ollama_refusal(
    router: RouterHandle, key: str, model: str = "fast"
) -> ollama.ResponseError:
    """The error the ollama SDK raises for one chat the router refuses."""
    async with ollama_client(router, key) as client:
        with pytest.raises(ollama.ResponseError) as refused:
            await client.chat(model=model, messages=[{"role": "user", "content": "hi"}])
    return refused.value


@asynccontextmanager
async def holding_a_stream(http: httpx.AsyncClient, url: str, key: str) -> AsyncIterator[None]:
    """A stream of ``key`` on the fast tier, open (its first line read) for the block: it holds
    one of the key's concurrency slots. The fast models must be slow to go on (``token_gap``)."""
    async with http.stream(
        "POST",
        url + "/v1/chat/completions",
        json=chat_body(model="fast", stream=True),
        headers={"x-api-key": key},
    ) as held:
        assert held.status_code == 200
        lines = held.aiter_lines()  # kept: a dropped iterator would close the stream
        await within(anext(lines))
        yield


def ollama_client(router: RouterHandle, key: str) -> ollama.AsyncClient:
    return ollama.AsyncClient(host=router.url, headers={"Authorization": f"Bearer {key}"})


# --- who the client is --------------------------------------------------------------------------


async def test_every_key_header_form_is_accepted_by_its_clients(fleet: SimulatedFleet) -> None:
    async with keyed(fleet) as router:
        by_openai = await openai_chat(router, ALICE)
        by_anthropic = await anthropic_message(router, ALICE)
        async with ollama_client(router, ALICE) as client:
            by_ollama = await client.chat(
                model="fast", messages=[{"role": "user", "content": "hi"}]
            )
        async with httpx.AsyncClient() as http:
            by_azure_header = await http.post(
                router.v1 + "/chat/completions",
                json=chat_body(model="fast"),
                headers={"api-key": ALICE},
            )

    assert by_openai
    assert by_anthropic
    assert by_ollama.message.content
    assert by_azure_header.status_code == 200
    assert [
        r.headers.get("authorization")
        for r in fleet.fast[0].chat_requests + fleet.fast[1].chat_requests
    ] == [None] * 4


async def test_without_a_valid_key_each_dialect_answers_401_invalid_api_key(
    fleet: SimulatedFleet,
) -> None:
    async with keyed(fleet) as router:
        with pytest.raises(openai.AuthenticationError) as by_openai:
            await openai_chat(router, WRONG)
        with pytest.raises(anthropic.AuthenticationError) as by_anthropic:
            await anthropic_message(router, WRONG)
        by_ollama = await ollama_refusal(router, WRONG)
        async with httpx.AsyncClient() as http:
            missing = await http.post(router.v1 + "/chat/completions", json=chat_body())
        failures = (
            sample(router, "octoroute_auth_failures_total", reason="invalid"),
            sample(router, "octoroute_auth_failures_total", reason="missing"),
        )

    assert by_openai.value.status_code == 401
    assert by_openai.value.code == "invalid_api_key"
    assert by_openai.value.type == "invalid_request_error"
    assert by_anthropic.value.status_code == 401
    body = by_anthropic.value.body
    assert isinstance(body, dict)
    assert body["type"] == "error"
    assert body["error"]["type"] == "authentication_error"
    assert body["error"]["message"].startswith("The API key sent is not one this router knows")
    assert by_ollama.status_code == 401
    assert "not one this router knows" in by_ollama.error
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"] == 'Bearer realm="octoroute"'
    assert missing.json()["error"]["code"] == "invalid_api_key"
    assert "Authorization: Bearer" in missing.json()["error"]["message"]
    for error in (by_openai.value, by_anthropic.value):
        assert WRONG not in error.response.text
    assert failures == (3.0, 1.0)
    assert not any(m.chat_requests for m in (*fleet.fast, *fleet.balanced, *fleet.deep))


# --- what it may use ------------------------------------------------------------------------------


async def test_a_model_outside_the_keys_tiers_is_403_model_not_allowed_in_each_dialect(
    fleet: SimulatedFleet,
) -> None:
    async with keyed(fleet) as router:
        with pytest.raises(openai.PermissionDeniedError) as by_openai:
            await openai_chat(router, ALICE, "deep")
        with pytest.raises(anthropic.PermissionDeniedError) as by_anthropic:
            await anthropic_message(router, ALICE, "sim-deep")
        by_ollama = await ollama_refusal(router, ALICE, "deep")
        refused = sample(
            router, "octoroute_key_rejections_total", key="alice", reason="model_not_allowed"
        )

    assert by_openai.value.status_code == 403
    assert by_openai.value.code == "model_not_allowed"
    assert by_openai.value.param == "model"
    assert by_openai.value.body == {
        "message": "The key 'alice' may not use the model 'deep'; it may use tiers fast, balanced.",
        "type": "invalid_request_error",
        "param": "model",
        "code": "model_not_allowed",
    }
    assert by_anthropic.value.status_code == 403
    assert by_anthropic.value.body["error"]["type"] == "permission_error"  # type: ignore[index]
    assert "'sim-deep'" in by_anthropic.value.body["error"]["message"]  # type: ignore[index]
    assert by_ollama.status_code == 403
    assert by_ollama.error.startswith("The key 'alice' may not use the model 'deep'")
    assert refused == 3.0
    assert not fleet.deep[0].chat_requests


async def test_a_models_list_refuses_every_other_name_and_an_alias_reaching_a_refused_tier() -> (
    None
):
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-fast")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
        embeddings=[SimulatedModel("sim-embed")],
    )
    auth = (
        auth_section('models = ["auto", "gpt-4o-mini"]')
        + '\n[aliases]\n"gpt-4o-mini" = "fast"\n"gpt-4o" = "deep"\n'
    )
    async with fleet, keyed(fleet, auth) as router, httpx.AsyncClient() as http:
        answers = {
            model: await http.post(
                router.v1 + "/chat/completions",
                json=chat_body(model=model),
                headers={"x-api-key": ALICE},
            )
            for model in ("auto", "gpt-4o-mini", "fast", "sim-fast", "gpt-4o")
        }
        embedding = await http.post(
            router.v1 + "/embeddings",
            json={"model": "sim-embed", "input": "x"},
            headers={"x-api-key": ALICE},
        )
        ops_embedding = await http.post(
            router.v1 + "/embeddings",
            json={"model": "sim-embed", "input": "x"},
            headers={"x-api-key": OPS},
        )

    assert {model: answer.status_code for model, answer in answers.items()} == {
        "auto": 200,
        "gpt-4o-mini": 200,
        "fast": 403,
        "sim-fast": 403,
        "gpt-4o": 403,
    }
    assert answers["gpt-4o"].json()["error"]["message"] == (
        "The key 'alice' may not use the model 'gpt-4o' (deep); it may use tiers fast, balanced; "
        "models auto, gpt-4o-mini."
    )
    assert embedding.status_code == 403
    assert ops_embedding.status_code == 200


async def test_model_lists_show_a_key_only_what_it_may_use() -> None:
    """``GET /v1/models`` (openai SDK), ``/api/tags`` (ollama SDK) and ``GET /v1/models/{id}``
    with a key limited to fast and balanced, and to fast plus one alias; an admin key sees all."""
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-fast")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
        embeddings=[SimulatedModel("sim-embed")],
    )
    auth = (
        auth_section(
            ops='[[auth.keys]]\nname = "carol"\nkey_sha256 = "' + sha(CAROL) + '"\n'
            'models = ["fast", "gpt-4o-mini"]\n'
        )
        + '\n[aliases]\n"gpt-4o-mini" = "fast"\n"gpt-4o" = "deep"\n'
    )
    async with fleet, keyed(fleet, auth) as router:
        listed = {}
        for who, key in (("alice", ALICE), ("carol", CAROL), ("ops", OPS)):
            async with openai_client(router, key) as client:
                listed[who] = [model.id async for model in client.models.list()]
        async with ollama_client(router, ALICE) as client:
            tags = [model.model for model in (await client.list()).models]
        async with openai_client(router, ALICE) as client:
            shown = await client.models.retrieve("sim-balanced")
            with pytest.raises(openai.PermissionDeniedError) as hidden:
                await client.models.retrieve("sim-deep")
            with pytest.raises(openai.NotFoundError):
                await client.models.retrieve("no-such-model")

    assert listed["alice"] == [
        "auto",
        "fast",
        "balanced",
        "sim-fast",
        "sim-balanced",
        "gpt-4o-mini",
    ]
    assert listed["carol"] == ["fast", "gpt-4o-mini"]
    assert listed["ops"] == [
        "auto", "fast", "balanced", "deep", "sim-fast", "sim-balanced", "sim-deep", "sim-embed",
        "gpt-4o-mini", "gpt-4o",
    ]  # fmt: skip
    assert tags == [
        "auto:latest", "fast:latest", "balanced:latest", "sim-fast:latest",
        "sim-balanced:latest", "gpt-4o-mini:latest",
    ]  # fmt: skip
    assert shown.id == "sim-balanced"
    assert hidden.value.code == "model_not_allowed"


async def test_ollama_show_and_ps_reveal_only_what_the_key_may_use() -> None:
    """``POST /api/show`` of a model the key may not use is 403 ``model_not_allowed`` (as
    ``GET /v1/models/{id}``), and ``GET /api/ps`` lists only the loaded models it may use; an
    admin key sees all of them (ollama SDK)."""
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-fast")],
        balanced=[SimulatedModel("sim-balanced")],
        deep=[SimulatedModel("sim-deep")],
    )
    async with fleet, keyed(fleet) as router:
        for name in ("sim-fast", "sim-deep"):
            endpoint(router, name).observe(InstanceFacts(loaded=True, context_window=8192))
        async with ollama_client(router, ALICE) as client:
            allowed = await client.show("sim-fast")
            with pytest.raises(ollama.ResponseError) as hidden:
                await client.show("sim-deep")
            with pytest.raises(ollama.ResponseError) as hidden_tier:
                await client.show("deep:latest")
            with pytest.raises(ollama.ResponseError) as unknown:
                await client.show("no-such-model")
            alice_ps = [model.model for model in (await client.ps()).models]
        async with ollama_client(router, OPS) as client:
            ops_shown = await client.show("sim-deep")
            ops_ps = [model.model for model in (await client.ps()).models]

    assert allowed.modelinfo is not None
    assert allowed.modelinfo["octoroute.context_length"] == 8192
    assert hidden.value.status_code == 403
    assert hidden.value.error.startswith("The key 'alice' may not use the model 'sim-deep'")
    assert hidden_tier.value.status_code == 403
    assert unknown.value.status_code == 404
    assert alice_ps == ["sim-fast:latest"]
    assert ops_shown.modelinfo is not None
    assert sorted(ops_ps) == ["sim-deep:latest", "sim-fast:latest"]


async def test_previous_response_id_resolves_only_the_keys_own_responses(
    fleet: SimulatedFleet,
) -> None:
    """Another key's response id is answered exactly as an unknown id (400, same message), so a
    key can neither continue nor probe for another key's conversation; its own continues."""
    async with keyed(fleet) as router:
        alice, ops = openai_client(router, ALICE), openai_client(router, OPS)
        first = await alice.responses.create(model="fast", input="Remember: blue.")
        with pytest.raises(openai.BadRequestError) as foreign:
            await ops.responses.create(
                model="fast", previous_response_id=first.id, input="Which colour?"
            )
        with pytest.raises(openai.BadRequestError) as unknown:
            await ops.responses.create(
                model="fast", previous_response_id="resp_unknown", input="Which colour?"
            )
        own = await alice.responses.create(
            model="fast", previous_response_id=first.id, input="Which colour?"
        )
        await alice.close()
        await ops.close()

    assert foreign.value.code == unknown.value.code
    assert foreign.value.param == unknown.value.param == "previous_response_id"
    shown_id = re.compile(r"previous_response_id \S+ ")
    assert shown_id.sub("ID ", str(foreign.value)) == shown_id.sub("ID ", str(unknown.value))
    assert own.previous_response_id == first.id
    sent = [
        [m["role"] for m in r.json["messages"]] for model in fleet.fast for r in model.chat_requests
    ]
    assert sorted(sent) == [["user"], ["user", "assistant", "user"]]  # the foreign one sent nothing


async def test_auto_never_sends_a_capped_key_above_its_tiers(fleet: SimulatedFleet) -> None:
    async with keyed(fleet) as router, httpx.AsyncClient() as http:
        capped = await http.post(
            router.v1 + "/chat/completions",
            json=chat_body(DEEP_PROMPT),
            headers={"x-api-key": ALICE},
        )
        streamed = await http.post(
            router.v1 + "/chat/completions",
            json=chat_body(DEEP_PROMPT, stream=True),
            headers={"x-api-key": ALICE},
        )
        legacy = await http.post(
            router.url + "/chat", json={"message": DEEP_PROMPT}, headers={"x-api-key": ALICE}
        )
        free = await http.post(
            router.v1 + "/chat/completions", json=chat_body(DEEP_PROMPT), headers={"x-api-key": OPS}
        )

    for answer in (capped, streamed, legacy):
        assert answer.status_code == 200
        assert answer.headers["x-octoroute-tier"] == "balanced"
        assert answer.headers["x-octoroute-reason"] == "capped_by_key"
    assert legacy.json()["model_tier"] == "balanced"
    assert free.headers["x-octoroute-tier"] == "deep"
    assert free.headers["x-octoroute-reason"] == "signal:analysis_deep"
    assert len(fleet.deep[0].chat_requests) == 1


async def test_a_cap_between_two_allowed_tiers_prefers_the_cheaper(fleet: SimulatedFleet) -> None:
    auth = auth_section().replace('tiers = ["fast", "balanced"]', 'tiers = ["fast", "deep"]')
    async with keyed(fleet, auth) as router, httpx.AsyncClient() as http:
        answer = await http.post(
            router.v1 + "/chat/completions",
            json=chat_body(CODE_PROMPT),
            headers={"x-api-key": ALICE},
        )

    assert answer.headers["x-octoroute-tier"] == "fast"
    assert answer.headers["x-octoroute-reason"] == "capped_by_key"


async def test_a_context_escalation_stays_inside_the_keys_tiers() -> None:
    small = {"context_window": 3000, "max_tokens": 100}
    fast, balanced = SimulatedModel("sim-fast"), SimulatedModel("sim-balanced")
    fast.config_keys.update(small)
    balanced.config_keys.update(small)
    fleet = SimulatedFleet(fast=[fast], balanced=[balanced], deep=[SimulatedModel("sim-deep")])
    long = "word " * 4000  # ~5,000 tokens: only deep's window (unknown, so assumed big) holds it
    async with fleet, keyed(fleet) as router, httpx.AsyncClient() as http:
        kept = await http.post(
            router.v1 + "/chat/completions",
            json=chat_body(long, max_tokens=10),
            headers={"x-api-key": ALICE},
        )
        escalated = await http.post(
            router.v1 + "/chat/completions",
            json=chat_body(long, max_tokens=10),
            headers={"x-api-key": OPS},
        )

    assert kept.status_code == 400
    assert kept.json()["error"]["code"] == "context_length_exceeded"
    assert escalated.status_code == 200
    assert escalated.headers["x-octoroute-reason"] == "context_overflow"
    assert escalated.headers["x-octoroute-tier"] == "deep"
    assert len(fleet.deep[0].chat_requests) == 1


# --- operator paths ---------------------------------------------------------------------------


OPERATOR = [("GET", "/metrics"), ("GET", "/models"), ("POST", "/route"), ("GET", "/admin/anything")]


@pytest.mark.parametrize(("method", "path"), OPERATOR)
async def test_operator_paths_need_an_admin_key(
    fleet: SimulatedFleet, method: str, path: str
) -> None:
    body = chat_body() if method == "POST" else None
    async with keyed(fleet) as router, httpx.AsyncClient() as http:
        anonymous = await http.request(method, router.url + path, json=body)
        client = await http.request(
            method, router.url + path, json=body, headers={"x-api-key": ALICE}
        )
        admin = await http.request(method, router.url + path, json=body, headers={"x-api-key": OPS})

    assert anonymous.status_code == 401
    assert client.status_code == 403
    assert client.json()["error"]["code"] == "admin_key_required"
    assert admin.status_code == (404 if path.startswith("/admin/") else 200)


async def test_health_is_public_by_default_and_public_paths_open_more(
    fleet: SimulatedFleet,
) -> None:
    async with keyed(fleet) as router, httpx.AsyncClient() as http:
        health = await http.get(router.url + "/health")
        models_list = await http.get(router.v1 + "/models")
        models_with_key = await http.get(router.v1 + "/models", headers={"x-api-key": ALICE})
    opened = auth_section(public='["/health", "/metrics"]')
    async with keyed(fleet, opened) as router, httpx.AsyncClient() as http:
        metrics = await http.get(router.url + "/metrics", headers={"x-api-key": WRONG})
    async with keyed(fleet, auth_section(public="[]")) as router, httpx.AsyncClient() as http:
        closed = await http.get(router.url + "/health")

    assert health.status_code == 200
    assert models_list.status_code == 401
    assert models_with_key.status_code == 200
    assert metrics.status_code == 200
    assert b"octoroute_requests_total" in metrics.content
    assert closed.status_code == 401


async def test_without_auth_nothing_changes(router: RouterHandle) -> None:
    async with httpx.AsyncClient() as http:
        answer = await http.post(router.v1 + "/chat/completions", json=chat_body(DEEP_PROMPT))
        metrics = await http.get(router.url + "/metrics")

    assert answer.status_code == 200
    assert answer.headers["x-octoroute-tier"] == "deep"
    assert not any(name.startswith("x-ratelimit") for name in answer.headers)
    assert metrics.status_code == 200


# --- limits -------------------------------------------------------------------------------------


async def test_requests_per_minute_refuse_with_openais_headers_and_refill_over_time(
    fleet: SimulatedFleet,
) -> None:
    async with keyed(fleet, auth_section("requests_per_minute = 2")) as router:
        clock = stepped(router)
        messages: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]
        async with openai_client(router, ALICE) as client:
            chat = client.chat.completions
            first = await chat.with_raw_response.create(model="fast", messages=messages)
            await chat.create(model="fast", messages=messages)
            with pytest.raises(openai.RateLimitError) as refused:
                await chat.create(model="fast", messages=messages)
            clock.now += 29.9
            with pytest.raises(openai.RateLimitError):
                await chat.create(model="fast", messages=messages)
            clock.now += 0.2
            again = await chat.with_raw_response.create(model="fast", messages=messages)
        counted = (
            sample(router, "octoroute_key_requests_total", key="alice"),
            sample(router, "octoroute_key_rejections_total", key="alice", reason="requests"),
        )

    assert first.headers["x-ratelimit-limit-requests"] == "2"
    assert first.headers["x-ratelimit-remaining-requests"] == "1"
    assert first.headers["x-ratelimit-reset-requests"] == "30s"
    error = refused.value
    assert error.status_code == 429
    assert error.code == "rate_limit_exceeded"
    assert error.type == "requests"
    assert error.body == {
        "message": "Rate limit reached for the key 'alice' on requests per minute: limit 2. "
        "Try again in 30 s.",
        "type": "requests",
        "param": None,
        "code": "rate_limit_exceeded",
    }
    assert error.response.headers["retry-after"] == "30"
    assert error.response.headers["retry-after-ms"] == "30000"
    assert error.response.headers["x-ratelimit-remaining-requests"] == "0"
    assert error.response.headers["x-ratelimit-reset-requests"] == "1m0s"
    assert again.headers["x-ratelimit-remaining-requests"] == "0"
    assert counted == (3.0, 2.0)


async def test_tokens_per_minute_charge_the_prompt_estimate_plus_the_output_limit(
    fleet: SimulatedFleet,
) -> None:
    async with keyed(fleet, auth_section("tokens_per_minute = 3000")) as router:
        clock = stepped(router)
        async with httpx.AsyncClient() as http:

            async def ask(**extra: object) -> httpx.Response:
                return await http.post(
                    router.v1 + "/chat/completions",
                    json=chat_body("x" * 400, model="fast", **extra),
                    headers={"x-api-key": ALICE},
                )

            limited = await ask(max_tokens=100)  # 400 // 4 + 100
            default = await ask()  # 100 + the fast tier's max_tokens, 2048
            refused = await ask(max_completion_tokens=800)
            clock.now += 14
            fits = await ask(max_completion_tokens=800)
            huge = await ask(max_tokens=5000)
        charged = sample(router, "octoroute_key_estimated_tokens_total", key="alice")

    assert limited.headers["x-ratelimit-remaining-tokens"] == "2800"
    assert default.headers["x-ratelimit-remaining-tokens"] == "652"
    assert refused.status_code == 429
    assert refused.json()["error"]["type"] == "tokens"
    assert refused.headers["retry-after-ms"] == "4960"  # (900 - 652) / 50 a second
    assert refused.headers["retry-after"] == "5"
    assert fits.status_code == 200
    assert huge.status_code == 429
    assert "retry-after" not in huge.headers
    assert huge.json()["error"]["message"] == (
        "Request too large for the key 'alice': it needs about 5100 tokens (estimated prompt plus "
        "the most the answer may take), more than the key's tokens_per_minute of 3000. Ask for "
        "fewer output tokens (max_tokens) or send a shorter prompt."
    )
    assert charged == 200 + 2148 + 900


async def test_each_dialect_answers_429_in_its_shape_with_the_rate_headers(
    fleet: SimulatedFleet,
) -> None:
    limits = "requests_per_minute = 1\ntokens_per_minute = 100000"
    async with keyed(fleet, auth_section(limits)) as router:
        stepped(router)
        await anthropic_message(router, ALICE)
        with pytest.raises(anthropic.RateLimitError) as by_anthropic:
            await anthropic_message(router, ALICE)
        refused_at = time.time()
        by_ollama = await ollama_refusal(router, ALICE)
        async with openai_client(router, ALICE) as client:
            with pytest.raises(openai.RateLimitError) as by_openai:
                await client.chat.completions.create(
                    model="fast", messages=[{"role": "user", "content": "hi"}]
                )

    assert by_anthropic.value.status_code == 429
    assert by_anthropic.value.body["error"]["type"] == "rate_limit_error"  # type: ignore[index]
    headers = by_anthropic.value.response.headers
    assert headers["retry-after"] == "60"
    assert headers["x-ratelimit-limit-requests"] == "1"
    # Anthropic's own rate-limit headers, as its API sends them: the reset an RFC 3339 time.
    assert headers["anthropic-ratelimit-requests-limit"] == "1"
    assert headers["anthropic-ratelimit-requests-remaining"] == "0"
    requests_reset = datetime.strptime(
        headers["anthropic-ratelimit-requests-reset"], "%Y-%m-%dT%H:%M:%SZ"
    ).replace(tzinfo=UTC)
    assert 59 <= requests_reset.timestamp() - refused_at <= 62  # full again in a minute
    assert headers["anthropic-ratelimit-tokens-limit"] == "100000"
    assert int(headers["anthropic-ratelimit-tokens-remaining"]) < 100000
    assert headers["anthropic-ratelimit-tokens-reset"].endswith("Z")
    openai_headers = by_openai.value.response.headers
    assert openai_headers["x-ratelimit-limit-requests"] == "1"
    assert not [name for name in openai_headers if name.startswith("anthropic-")]
    assert by_ollama.status_code == 429
    assert by_ollama.error.startswith("Rate limit reached for the key 'alice'")


async def test_max_concurrent_refuses_while_a_stream_holds_the_slot(
    fleet: SimulatedFleet,
) -> None:
    for model in fleet.fast:
        model.behaviour.token_gap = 30.0  # the stream stays open after its first token
    async with (
        keyed(fleet, auth_section("max_concurrent = 1")) as router,
        httpx.AsyncClient(timeout=10) as http,
    ):
        async with holding_a_stream(http, router.url, ALICE):
            busy = await http.post(
                router.v1 + "/chat/completions",
                json=chat_body(model="fast"),
                headers={"x-api-key": ALICE},
            )
            other = await http.post(
                router.v1 + "/chat/completions",
                json=chat_body(model="balanced"),
                headers={"x-api-key": OPS},
            )
            in_flight = router.runtime.limiter.local.busy("alice")
        await wait_until(lambda: router.runtime.limiter.local.busy("alice") == 0, what="slot freed")
        for model in fleet.fast:
            model.behaviour.token_gap = 0.0
        after = await http.post(
            router.v1 + "/chat/completions",
            json=chat_body(model="fast"),
            headers={"x-api-key": ALICE},
        )

    assert busy.status_code == 429
    assert busy.json()["error"]["type"] == "concurrent_requests"
    assert busy.headers["retry-after"] == "1"
    assert busy.json()["error"]["message"] == (
        "Too many requests at once for the key 'alice': 1 are being answered (max_concurrent). "
        "Try again in 1 s."
    )
    assert other.status_code == 200
    assert in_flight == 1
    assert after.status_code == 200


# --- logs, reloads and the key command ---------------------------------------------------------


@contextmanager
def json_logs() -> Iterator[io.StringIO]:
    """Every log line of the block as JSON in the stream yielded; structlog's defaults (what
    other tests read with capsys) come back after it."""
    out = io.StringIO()
    configure_logging("info", LogFormat.JSON, stream=out, cache=False)
    try:
        yield out
    finally:
        structlog.reset_defaults()


async def test_the_log_line_carries_the_keys_name_and_never_a_key(fleet: SimulatedFleet) -> None:
    with json_logs() as out:
        async with keyed(fleet) as router, httpx.AsyncClient() as http:
            await http.post(
                router.v1 + "/chat/completions", json=chat_body(), headers={"x-api-key": ALICE}
            )
            await http.post(
                router.v1 + "/chat/completions",
                json=chat_body(),
                headers={"Authorization": f"Bearer {WRONG}"},
            )
    text = out.getvalue()
    lines = [orjson.loads(line) for line in text.splitlines() if line.startswith("{")]
    (request,) = [line for line in lines if line["event"] == "request"]
    (refused,) = [
        line for line in lines if line["event"] == "refused requests without a valid API key"
    ]

    assert request["key"] == "alice"
    assert refused["reason"] == "invalid"
    assert ALICE not in text
    assert WRONG not in text
    assert sha(ALICE) not in text


async def test_a_new_auth_section_applies_to_the_next_request_and_counters_keep_by_name(
    fleet: SimulatedFleet,
) -> None:
    async with keyed(fleet, auth_section("requests_per_minute = 1")) as router:
        stepped(router)
        async with httpx.AsyncClient() as http:

            async def ask(key: str) -> int:
                answer = await http.post(
                    router.v1 + "/chat/completions",
                    json=chat_body(model="fast"),
                    headers={"x-api-key": key},
                )
                return answer.status_code

            before = await ask(ALICE)
            moved = auth_section("requests_per_minute = 1").replace(sha(ALICE), sha(WRONG))
            newer = keyed_config(fleet, moved)
            router.runtime.config = msgspec.structs.replace(router.runtime.config, auth=newer.auth)
            old_key = await ask(ALICE)
            same_name_new_key = await ask(WRONG)

    assert (before, old_key, same_name_new_key) == (200, 401, 429)


async def test_a_key_from_key_new_is_accepted_by_a_router_configured_with_its_lines(
    fleet: SimulatedFleet, capsys: pytest.CaptureFixture[str]
) -> None:
    from octoroute.cli import main

    assert main(["key", "new", "printed"]) == 0
    out = capsys.readouterr().out
    key = next(line.strip() for line in out.splitlines() if line.startswith("  sk-octo-"))
    async with (
        keyed(fleet, out[out.index("[[auth.keys]]") :]) as router,
        httpx.AsyncClient() as http,
    ):
        answer = await http.post(
            router.v1 + "/chat/completions",
            json=chat_body(),
            headers={"Authorization": f"Bearer {key}"},
        )

    assert answer.status_code == 200


async def test_a_browser_preflight_needs_no_key_and_a_refusal_is_readable_by_the_page(
    fleet: SimulatedFleet,
) -> None:
    origin = "https://app.example.com"
    config = keyed_config(
        fleet,
        auth_section(),
    )
    config = msgspec.structs.replace(
        config, server=msgspec.structs.replace(config.server, cors_origins=(origin,))
    )
    async with running_router(config) as router, httpx.AsyncClient() as http:
        preflight = await http.options(
            router.v1 + "/chat/completions",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "authorization,content-type,api-key",
            },
        )
        refused = await http.post(
            router.v1 + "/chat/completions", json=chat_body(), headers={"Origin": origin}
        )

    assert preflight.status_code == 204
    assert "api-key" in preflight.headers["access-control-allow-headers"]
    assert refused.status_code == 401
    assert refused.headers["access-control-allow-origin"] == origin


async def test_every_way_a_request_can_fail_gives_its_concurrency_slot_back() -> None:
    """200 requests of a key with max_concurrent, each failing differently: invalid body,
    unknown model, a model it may not use, an upstream 500, a stream the client drops midway,
    a wait for a busy server's slot that times out. The key holds no slot afterwards."""
    fleet = SimulatedFleet(
        fast=[SimulatedModel("sim-fast")],
        balanced=[SimulatedModel("sim-balanced", config_keys={"max_concurrent": 1})],
        deep=[SimulatedModel("sim-deep")],
    )
    fleet.fast[0].behaviour.fault = HttpError(500)
    fleet.balanced[0].behaviour.token_gap = 30.0
    auth = auth_section("max_concurrent = 1000") + "\n[limits]\nqueue_timeout_seconds = 0.05\n"
    headers = {"x-api-key": ALICE}
    statuses: list[int] = []
    async with fleet, keyed(fleet, auth) as router, httpx.AsyncClient(timeout=10) as http:
        url = router.v1 + "/chat/completions"
        while len(statuses) < 200:
            for body in (
                {"model": "auto", "messages": "not a list"},
                chat_body(model="no-such-model"),
                chat_body(model="deep"),
                chat_body(model="sim-fast"),
            ):
                statuses.append((await http.post(url, json=body, headers=headers)).status_code)
            async with http.stream(
                "POST", url, json=chat_body(model="sim-balanced", stream=True), headers=headers
            ) as dropped:
                lines = dropped.aiter_lines()  # kept: a dropped iterator closes the stream
                await within(anext(lines))
                queued = await http.post(url, json=chat_body(model="sim-balanced"), headers=headers)
                statuses += [dropped.status_code, queued.status_code]
            # leaving the block closes the stream midway: the client hung up
        await wait_until(
            lambda: router.runtime.limiter.local.busy("alice") == 0, what="every slot given back"
        )
        fleet.balanced[0].behaviour.token_gap = 0.0
        after = await http.post(url, json=chat_body(model="sim-balanced"), headers=headers)

    assert sorted(set(statuses)) == [200, 400, 403, 404, 502, 503]
    assert len(statuses) == 204
    assert statuses[0::6] == [400] * 34
    assert statuses[1::6] == [404] * 34
    assert statuses[2::6] == [403] * 34
    assert set(statuses[3::6]) == {502, 503}  # the failing server is ejected after a while
    assert statuses[4::6] == [200] * 34  # the streams the client dropped midway
    assert statuses[5::6] == [503] * 34  # queue timeouts
    assert after.status_code == 200
    assert after.headers.get("x-ratelimit-limit-requests") is None

"""``octoroute simulate``'s plan, without sockets: which addresses get a simulated server, with
which models and settings, and which endpoints are left out and why."""

from __future__ import annotations

from octoroute.config import parse_config
from octoroute.enums import Kind
from octoroute.simulate import PLACEHOLDER_KEY, bind_host, build, describe, lenient_environ, plan

CONFIG = """
[server]
host = "127.0.0.1"
port = 3000

[[models.fast]]
name = "llama3.1:8b"
base_url = "http://localhost:11434/v1"
max_tokens = 64

[[models.fast]]
name = "llama3.1:8b"
base_url = "http://127.0.0.1:11434/v1/"
max_tokens = 64
max_concurrent = 4

[[models.balanced]]
name = "qwen3:32b"
base_url = "http://127.0.0.1:11434/v1"
max_tokens = 64
kind = "ollama"
context_window = 16384
native = ["ollama", "responses"]

[[models.deep]]
name = "gpt-oss-120b"
base_url = "http://[::1]:8000/v1"
max_tokens = 64

[[models.deep]]
name = "gpt-oss-120b"
base_url = "https://127.0.0.1:8443/v1"
max_tokens = 64

[[models.deep]]
name = "gpt-oss-120b"
base_url = "http://127.0.0.1:8080/openai/v1"
max_tokens = 64

[[models.deep]]
name = "gpt-oss-120b"
base_url = "http://gpu-1:8000/v1"
max_tokens = 64

[[embeddings]]
name = "nomic-embed-text"
base_url = "http://127.0.0.2:9000/v1"

[routing]
strategy = "rule"
"""


def test_each_loopback_address_is_one_server_with_every_name_it_is_given() -> None:
    servers, _ = plan(parse_config(CONFIG))

    assert [(s.host, s.port, s.kind) for s in servers] == [
        ("127.0.0.1", 11434, Kind.OLLAMA),  # localhost is served on 127.0.0.1
        ("::1", 8000, Kind.OPENAI),
        ("127.0.0.2", 9000, Kind.OPENAI),
    ]
    ollama = servers[0]
    assert [(m.name, m.pool, m.endpoints) for m in ollama.models] == [
        ("llama3.1:8b", "fast", ("models.fast[0]", "models.fast[1]")),
        ("qwen3:32b", "balanced", ("models.balanced[0]",)),
    ]
    fast, balanced = ollama.models
    assert (fast.max_concurrent, fast.context_window, fast.native_responses) == (4, None, False)
    assert (balanced.context_window, balanced.native_responses) == (16384, True)
    assert ollama.unsimulated == ("ollama",)
    assert servers[1].url == "http://[::1]:8000"
    assert [m.pool for m in servers[2].models] == ["embeddings"]


def test_endpoints_that_cannot_be_simulated_are_listed_with_the_reason() -> None:
    _, skipped = plan(parse_config(CONFIG))

    reasons = {s.endpoint.base_url: s.reason for s in skipped}
    assert reasons == {
        "https://127.0.0.1:8443/v1": (
            "https: the simulated servers speak plain http; use http:// to try it"
        ),
        "http://127.0.0.1:8080/openai/v1": (
            "its API is under /openai/v1; a simulated server serves /v1 at its root"
        ),
        "http://gpu-1:8000/v1": (
            "gpu-1 is not this machine (only 127.0.0.1, ::1 and localhost are simulated)"
        ),
    }


def test_a_built_server_plays_the_kind_window_slots_and_timing_of_its_endpoints() -> None:
    servers, _ = plan(parse_config(CONFIG))

    server = build(servers[0])

    fast, balanced = server.models
    assert (fast.name, fast.label, fast.behaviour.slots) == ("llama3.1:8b", "fast", 4)
    assert balanced.behaviour.context_window == 16384
    assert balanced.behaviour.native_responses
    assert {m.behaviour.kind for m in server.models} == {Kind.OLLAMA}
    assert (
        fast.behaviour.first_token_delay < build(servers[1]).models[0].behaviour.first_token_delay
    )


def test_the_printed_line_names_the_models_their_endpoints_and_what_is_not_simulated() -> None:
    servers, _ = plan(parse_config(CONFIG))

    assert describe(servers[0]).splitlines() == [
        "  http://127.0.0.1:11434  ollama  llama3.1:8b (models.fast[0], models.fast[1]), "
        "qwen3:32b (models.balanced[0])",
        '      (native "ollama" is not simulated: requests passed through to it get 404)',
    ]


def test_an_unset_key_variable_reads_as_a_placeholder() -> None:
    environ = lenient_environ({"SET": "value"})

    assert (environ["SET"], environ["UNSET"]) == ("value", PLACEHOLDER_KEY)
    text = CONFIG.replace(
        'name = "qwen3:32b"', 'name = "qwen3:32b"\napi_key_env = "NOT_SET_ANYWHERE"'
    )
    assert parse_config(text, environ=environ).models.balanced[0].api_key_env == "NOT_SET_ANYWHERE"


def test_an_ipv4_mapped_loopback_endpoint_is_simulated_on_its_ipv4_address() -> None:
    assert bind_host("::ffff:127.0.0.1") == "127.0.0.1"
    assert bind_host("::1") == "::1"
    assert bind_host("::ffff:10.0.0.1") is None

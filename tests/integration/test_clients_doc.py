"""The recipes of ``docs/clients.md`` hold against a router in front of the demo's fleet.

Each recipe's block carries a marker, an HTML comment on the line above its fence
(``<!-- clients-doc-test: run -->``). ``run`` blocks are Python run as written, as a script in
its own interpreter (``tests.scripts``), with the doc's base URL replaced by the test router's. Configuration blocks are
parsed, checked for what the doc says matters (a ``/v1`` base URL, ``wire_api``, the flags),
and the requests that client makes with them, as measured in the client research, are replayed
over real sockets for the models the block names.
"""

from __future__ import annotations

import ast
import asyncio
import dataclasses
import importlib
import json
import re
import shlex
import tomllib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Final

import httpx
import pytest
from openai import OpenAI

from octoroute.config import parse_config
from octoroute.simulator import SimulatedFleet, demo_fleet, fleet_config_toml
from tests.harness import RouterHandle, running_router
from tests.scripts import run_script

ROOT: Final = Path(__file__).resolve().parents[2]
DOC: Final = ROOT / "docs" / "clients.md"
DOC_URL: Final = "http://127.0.0.1:8080"
"""The router address the doc's runnable blocks use (``octoroute demo``'s)."""

_BLOCK: Final = re.compile(
    r"^<!-- clients-doc-test: (?P<kind>[\w-]+) -->\n```(?P<info>[^\n]*)\n(?P<body>.*?)^```$",
    re.MULTILINE | re.DOTALL,
)
_REASONING_TRAPS: Final = ("o1", "o3", "o4", "gpt-5")
"""Substrings that make Cline and Roo Code treat a model as an OpenAI reasoning model."""


def blocks(kind: str) -> list[str]:
    """The bodies of the doc's blocks marked ``kind``, in order; at least one must exist."""
    found = [m["body"] for m in _BLOCK.finditer(DOC.read_text()) if m["kind"] == kind]
    assert found, f"docs/clients.md has no block marked 'clients-doc-test: {kind}'"
    return found


def only_block(kind: str) -> str:
    (body,) = blocks(kind)
    return body


@dataclasses.dataclass
class Demo:
    router: RouterHandle
    fleet: SimulatedFleet

    def requests(self, path: str) -> list[Any]:
        """The JSON bodies every simulated model received on ``path``."""
        return [r.json for sim in self.fleet.models for r in sim.requests if r.path == path]


@asynccontextmanager
async def running_demo(extra: str = "") -> AsyncIterator[Demo]:
    """The router on the demo's fleet (its embedding model included), without its delays;
    ``extra`` is appended to its configuration (an ``[aliases]`` block)."""
    fleet = demo_fleet()
    for model in fleet.models:
        model.behaviour = dataclasses.replace(
            model.behaviour, latency=0.0, first_token_delay=0.0, token_gap=0.0
        )
    async with fleet:
        text = fleet_config_toml(fleet, strategy="rule", extra=extra)
        async with running_router(parse_config(text, source="<demo>")) as handle:
            yield Demo(handle, fleet)


@pytest.fixture
async def demo() -> AsyncIterator[Demo]:
    """The router on the demo's fleet, without its delays."""
    async with running_demo() as started:
        yield started


async def served(demo: Demo, model: str) -> bool:
    async with httpx.AsyncClient(base_url=demo.router.v1, timeout=5.0) as client:
        return (await client.get(f"/models/{model}")).status_code == 200


def sse_data(text: str) -> list[Any]:
    payloads = [
        line.removeprefix("data: ") for line in text.splitlines() if line.startswith("data: ")
    ]
    assert payloads[-1] == "[DONE]", payloads[-3:]
    return [json.loads(payload) for payload in payloads[:-1]]


# -- python blocks that run ----------------------------------------------------------------------


@pytest.mark.parametrize("index", range(len(blocks("run"))))
async def test_runnable_python_blocks_run_against_the_router(demo: Demo, index: int) -> None:
    code = blocks("run")[index]
    assert DOC_URL + "/v1" in code
    code = code.replace(DOC_URL, demo.router.url)

    await run_script(code, name=f"docs/clients.md run block {index}")

    assert demo.requests("/v1/chat/completions") or demo.requests("/v1/embeddings")
    for embedding in demo.requests("/v1/embeddings"):
        # LangChain's check_embedding_ctx_length=False: text, never token ids.
        inputs = embedding["input"]
        assert all(
            isinstance(item, str) for item in ([inputs] if isinstance(inputs, str) else inputs)
        )


async def test_the_openai_block_reaches_every_endpoint_it_shows(demo: Demo) -> None:
    await test_runnable_python_blocks_run_against_the_router(demo, 0)

    assert demo.requests("/v1/completions")[0]["suffix"] == "\n"
    assert demo.requests("/v1/embeddings")[0]["model"] == "sim-embed"
    streamed = [b for b in demo.requests("/v1/chat/completions") if b.get("stream")]
    assert streamed[0]["stream_options"] == {"include_usage": True}
    assert any("Be brief." in json.dumps(b) for b in demo.requests("/v1/chat/completions"))


# -- LlamaIndex ----------------------------------------------------------------------------------


def _calls(tree: ast.AST, name: str) -> list[dict[str, object]]:
    """The literal keyword arguments of every call to ``name`` in ``tree``."""
    return [
        {k.arg: ast.literal_eval(k.value) for k in node.keywords if k.arg is not None}
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == name
    ]


async def test_llamaindex_recipe_parses_and_its_requests_are_served(demo: Demo) -> None:
    tree = ast.parse(only_block("parse"))
    (llm,) = _calls(tree, "OpenAILike")
    (embed,) = _calls(tree, "OpenAILikeEmbedding")
    assert llm["api_base"] == embed["api_base"] == DOC_URL + "/v1"
    assert llm["is_chat_model"] is True
    model, embed_model = str(llm["model"]), str(embed["model_name"])

    async with httpx.AsyncClient(base_url=demo.router.v1, timeout=5.0) as client:
        headers = {"Authorization": f"Bearer {llm['api_key']}"}
        # OpenAILike's default (is_chat_model=False), measured: the chat flattened into a prompt.
        default = await client.post(
            "/completions",
            headers=headers,
            json={
                "model": model,
                "prompt": "user: hi\nassistant: ",
                "temperature": 0.1,
                "stream": False,
            },
        )
        chat = await client.post(
            "/chat/completions",
            headers=headers,
            json={
                "model": model,
                "messages": [{"role": "user", "content": "hi"}],
                "temperature": 0.1,
            },
        )
        vectors = await client.post(
            "/embeddings", headers=headers, json={"model": embed_model, "input": ["a document"]}
        )

    assert default.status_code == 200, default.text
    assert default.json()["choices"][0]["text"]
    assert demo.requests("/v1/completions")[0]["prompt"] == "user: hi\nassistant: "
    assert chat.status_code == 200, chat.text
    assert vectors.status_code == 200, vectors.text
    assert vectors.json()["data"][0]["embedding"]


# -- Open WebUI ----------------------------------------------------------------------------------


def _env_file(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")]
    return dict(pairs)


async def test_open_webui_env_names_the_router_and_its_requests_are_served(demo: Demo) -> None:
    env = _env_file(only_block("open-webui-env"))
    assert env["OPENAI_API_BASE_URL"].endswith(":8080/v1")
    assert env["RAG_OPENAI_API_BASE_URL"] == env["OPENAI_API_BASE_URL"]
    assert env["RAG_EMBEDDING_ENGINE"] == "openai"
    assert env["OPENAI_API_KEY"]
    assert env["RAG_OPENAI_API_KEY"]
    task_model, embed_model = env["TASK_MODEL_EXTERNAL"], env["RAG_EMBEDDING_MODEL"]

    # Open WebUI's backend is aiohttp; these are its requests as measured against 0.12.4.
    headers = {
        "Authorization": f"Bearer {env['OPENAI_API_KEY']}",
        "User-Agent": "Python/3.11 aiohttp/3.12",
    }
    async with httpx.AsyncClient(base_url=demo.router.v1, headers=headers, timeout=5.0) as client:
        listing = await client.get("/models")
        chat = await client.post(
            "/chat/completions",
            json={"model": "auto", "messages": [{"role": "user", "content": "hi"}], "stream": True},
        )
        title = await client.post(
            "/chat/completions",
            json={
                "model": task_model,
                "messages": [{"role": "user", "content": "### Task:\nGenerate a concise title..."}],
                "stream": False,
                "max_tokens": 1000,
            },
        )
        rag = await client.post(
            "/embeddings", json={"model": embed_model, "input": ["chunk one", "chunk two"]}
        )

    ids = {model["id"] for model in listing.json()["data"]}
    assert {"auto", task_model, embed_model} <= ids
    assert chat.headers["content-type"].startswith("text/event-stream")
    assert "".join(
        c["choices"][0]["delta"].get("content") or "" for c in sse_data(chat.text) if c["choices"]
    )
    assert title.status_code == 200
    assert title.json()["choices"][0]["message"]["content"]
    assert title.headers["x-octoroute-tier"] == task_model
    assert [item["index"] for item in rag.json()["data"]] == [0, 1]


# -- Continue ------------------------------------------------------------------------------------


async def test_continue_config_parses_and_its_requests_are_served(demo: Demo) -> None:
    yaml: Any = importlib.import_module("yaml")
    config = yaml.safe_load(only_block("continue-config"))
    models = config["models"]
    by_role: dict[str, list[str]] = {}
    for model in models:
        assert model["provider"] == "openai"
        assert model["apiBase"] == DOC_URL + "/v1"
        assert model["apiKey"]
        assert await served(demo, model["model"]), model["model"]
        for role in model["roles"]:
            by_role.setdefault(role, []).append(model["model"])
    assert {"chat", "autocomplete", "embed"} <= by_role.keys()

    key = models[0]["apiKey"]
    headers = {"Authorization": f"Bearer {key}", "x-api-key": key, "api-key": key}
    fim = "<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n\nprint(add(1, 2))<|fim_middle|>"
    async with httpx.AsyncClient(base_url=demo.router.v1, headers=headers, timeout=5.0) as client:
        for model in by_role["chat"]:
            chat = await client.post(
                "/chat/completions",
                json={
                    "model": model,
                    "messages": [{"role": "user", "content": "hi"}],
                    "max_tokens": 4096,
                    "stream": True,
                    "stream_options": {"include_usage": True},
                },
            )
            chunks = sse_data(chat.text)
            assert chunks[-1]["choices"] == []
            assert chunks[-1]["usage"]["total_tokens"] > 0
        for model in by_role["autocomplete"]:
            completion = await client.post(
                "/completions",
                json={
                    "model": model,
                    "prompt": fim,
                    "max_tokens": 256,
                    "temperature": 0.01,
                    "stop": ["<|endoftext|>", "\n\n"],
                    "stream": True,
                },
            )
            assert completion.status_code == 200, completion.text
            assert "".join(
                c["choices"][0]["text"] for c in sse_data(completion.text) if c["choices"]
            )
        for model in by_role["embed"]:
            vectors = await client.post(
                "/embeddings", json={"model": model, "input": ["def add(a, b):"]}
            )
            assert vectors.status_code == 200, vectors.text

    assert [body["prompt"] for body in demo.requests("/v1/completions")] == [fim]


# -- aider ---------------------------------------------------------------------------------------


def _aider_commands(text: str) -> tuple[dict[str, str], list[list[str]]]:
    env: dict[str, str] = {}
    commands = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            key, value = words[1].split("=", 1)
            env[key] = value
        elif words[:1] == ["aider"]:
            commands.append(words[1:])
    return env, commands


def _flag(words: list[str], name: str) -> str | None:
    return words[words.index(name) + 1] if name in words else None


async def test_aider_commands_name_a_served_model_and_its_request_is_served(demo: Demo) -> None:
    env, commands = _aider_commands(only_block("aider"))
    assert commands
    models = []
    for words in commands:
        model = _flag(words, "--model")
        assert model is not None
        assert model.startswith("openai/")
        base = _flag(words, "--openai-api-base") or env["OPENAI_API_BASE"]
        assert base == DOC_URL + "/v1"
        assert "/v1/v1" not in base
        assert _flag(words, "--openai-api-key") or env["OPENAI_API_KEY"]
        models.append(model.removeprefix("openai/"))

    messages = [
        {"role": "system", "content": "Act as an expert software developer..."},
        {"role": "user", "content": "I am working with you on code in a git repository."},
        {"role": "assistant", "content": "Ok."},
        {"role": "user", "content": "fix the bug in add"},
    ]
    async with httpx.AsyncClient(base_url=demo.router.v1, timeout=5.0) as client:
        for model in models:
            answer = await client.post(
                "/chat/completions",
                headers={"Authorization": "Bearer unused"},
                json={"model": model, "messages": messages, "temperature": 0, "stream": True},
            )
            chunks = sse_data(answer.text)
            assert chunks[-1]["choices"], "no usage chunk without stream_options"
            assert "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)


# -- Codex CLI -----------------------------------------------------------------------------------


async def test_codex_config_speaks_responses_and_its_request_is_served(demo: Demo) -> None:
    config = tomllib.loads(only_block("codex-config"))
    provider = config["model_providers"][config["model_provider"]]
    assert provider["wire_api"] == "responses"
    assert provider["base_url"] == DOC_URL + "/v1"
    model = config["model"]
    shell_tool = {
        "type": "function",
        "name": "shell",
        "description": "Runs a shell command and returns its output.",
        "strict": False,
        "parameters": {
            "type": "object",
            "properties": {"command": {"type": "array", "items": {"type": "string"}}},
            "required": ["command"],
        },
    }

    request: dict[str, Any] = {
        "model": model,
        "instructions": "You are Codex, a coding agent.",
        "input": [
            {
                "type": "message",
                "role": "user",
                "content": [{"type": "input_text", "text": "list the files"}],
            }
        ],
        "tools": [shell_tool],
        "tool_choice": "auto",
        "parallel_tool_calls": False,
        "reasoning": {"effort": "medium", "summary": "auto"},
        "store": False,
        "include": ["reasoning.encrypted_content"],
        "prompt_cache_key": "session-1",
    }

    def codex_turn() -> list[Any]:
        with OpenAI(base_url=demo.router.v1, api_key="unused", max_retries=0) as client:
            return list(client.responses.create(**request, stream=True))

    events = await asyncio.wait_for(asyncio.to_thread(codex_turn), 30)

    assert events[-1].type == "response.completed"
    (call,) = events[-1].response.output
    assert call.type == "function_call"
    assert call.name == "shell"
    assert json.loads(call.arguments) == {"command": []}


# -- Cline and Roo Code: aliases -----------------------------------------------------------------


async def test_suggested_aliases_load_avoid_the_substring_trap_and_are_served() -> None:
    block = only_block("aliases")
    aliases = tomllib.loads(block)["aliases"]
    assert aliases
    assert not [alias for alias in aliases if any(trap in alias for trap in _REASONING_TRAPS)]
    fleet = demo_fleet()
    async with fleet:
        config = parse_config(fleet_config_toml(fleet, extra=block), source="<clients.md>")
        async with (
            running_router(config) as router,
            httpx.AsyncClient(base_url=router.v1) as client,
        ):
            for alias in aliases:
                assert (await client.get(f"/models/{alias}")).status_code == 200, alias


# -- the doc is linked -------------------------------------------------------------------------


@pytest.mark.parametrize("page", ["README.md", "docs/api.md"])
def test_the_clients_page_is_linked(page: str) -> None:
    assert "clients.md" in (ROOT / page).read_text()

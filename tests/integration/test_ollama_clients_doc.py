"""The Ollama recipes of ``docs/clients.md`` hold against a router in front of the demo's fleet.

As in ``test_clients_doc``: the python block runs as written with the doc's address swapped for
the test router's; the configuration blocks (Open WebUI's env, Continue's YAML, the CLI commands,
the JavaScript snippet) are parsed and the requests each client makes with them, as its source
sends them, are replayed over real sockets.
"""

from __future__ import annotations

import importlib
import json
import re
import shlex
from typing import Any, Final

import httpx

from tests.integration.test_clients_doc import DOC_URL, Demo, demo, only_block
from tests.scripts import run_script

__all__ = ["demo"]  # the fixture, shared with test_clients_doc

GO_HEADERS: Final = {
    "Content-Type": "application/json",
    "Accept": "application/x-ndjson",
    "User-Agent": "ollama/0.12.0 (amd64 linux) Go/go1.24.1",
}
"""What the ``ollama`` CLI's Go client sends with every request."""
JS_HEADERS: Final = {
    "Content-Type": "application/json",
    "Accept": "application/json",
    "User-Agent": "ollama-js/0.6.0 (x64 linux Node.js/v20.20.2)",
}
"""What ``ollama-js`` sends with every request (``utils.fetchWithHeaders``)."""
HI: Final = [{"role": "user", "content": "hi"}]


def ndjson(response: httpx.Response) -> list[Any]:
    """Every line of a streamed answer, each decoded; the last must be the ``done`` one."""
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/x-ndjson"
    assert response.text.endswith("\n")
    lines = [json.loads(line) for line in response.text.splitlines()]
    assert all(line["done"] is False for line in lines[:-1])
    assert lines[-1]["done"] is True
    return lines


def received(demo: Demo, path: str) -> list[Any]:
    """The JSON bodies the fleet received on ``path``, in the order they arrived (replicas
    answer in any order, so ``Demo.requests``' fleet order will not do)."""
    found = [r for sim in demo.fleet.models for r in sim.requests if r.path == path]
    return [r.json for r in sorted(found, key=lambda r: r.received_at)]


def tag_names(listing: httpx.Response) -> set[str]:
    return {model["model"] for model in listing.json()["models"]}


def router_client(demo: Demo, headers: dict[str, str]) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=demo.router.url, headers=headers, timeout=5.0)


# -- the python client ---------------------------------------------------------------------------


async def test_the_python_block_runs_against_the_router(demo: Demo) -> None:
    code = only_block("ollama-run")
    assert f'host="{DOC_URL}"' in code
    code = code.replace(DOC_URL, demo.router.url)

    await run_script(code, name="docs/clients.md ollama-run block")

    chats = received(demo, "/v1/chat/completions")
    assert [bool(body.get("stream")) for body in chats] == [False, True]
    assert demo.requests("/v1/embeddings")[0]["input"] == ["a document"]


# -- Open WebUI ----------------------------------------------------------------------------------


def _env(text: str) -> dict[str, str]:
    pairs = [line.split("=", 1) for line in text.splitlines() if line and not line.startswith("#")]
    return dict(pairs)


async def test_open_webui_ollama_connection_requests_are_served(demo: Demo) -> None:
    env = _env(only_block("open-webui-ollama-env"))
    assert env["ENABLE_OLLAMA_API"] == "True"
    for key in ("OLLAMA_BASE_URL", "RAG_OLLAMA_BASE_URL"):
        assert env[key].endswith(":8080"), key  # the router's root, no /v1
    assert env["RAG_EMBEDDING_ENGINE"] == "ollama"
    task, embed = env["TASK_MODEL"], env["RAG_EMBEDDING_MODEL"]

    # Open WebUI's backend (routers/ollama.py) is aiohttp with a JSON Content-Type throughout.
    headers = {"Content-Type": "application/json", "User-Agent": "Python/3.11 aiohttp/3.12"}
    async with router_client(demo, headers) as client:
        version = (await client.get("/api/version")).json()["version"]
        listing = await client.get("/api/tags")
        running = await client.get("/api/ps")
        chat = await client.post(
            "/api/chat",
            json={
                "model": "auto:latest",
                "messages": [{"role": "system", "content": "Be helpful."}, *HI],
                "stream": True,
                "options": {"temperature": 0.8, "num_ctx": 4096, "new_topic_penalty": 0.5},
            },
        )
        title = await client.post(
            "/api/chat",
            json={
                "model": f"{task}:latest",
                "messages": [
                    {"role": "user", "content": "### Task:\\nGenerate a concise title..."}
                ],
                "stream": False,
                "options": {"num_predict": 1000},
            },
        )
        rag = await client.post("/api/embed", json={"model": embed, "input": ["one", "two"]})

    # How Open WebUI compares versions: numbers only, "v" and suffixes dropped.
    assert tuple(map(int, re.sub(r"^v|-.*", "", version).split(".")))
    assert {"auto:latest", f"{task}:latest", f"{embed}:latest"} <= tag_names(listing)
    assert running.json() == {"models": []}
    assert "".join(line["message"]["content"] for line in ndjson(chat))
    assert title.status_code == 200, title.text
    assert title.json()["message"]["content"]
    assert title.headers["x-octoroute-tier"] == task
    assert len(rag.json()["embeddings"]) == 2
    first, second = received(demo, "/v1/chat/completions")
    assert first["temperature"] == 0.8
    assert "new_topic_penalty" not in first
    assert second["max_tokens"] == 1000


# -- Continue ------------------------------------------------------------------------------------


async def test_continue_ollama_provider_requests_are_served(demo: Demo) -> None:
    yaml: Any = importlib.import_module("yaml")
    models = yaml.safe_load(only_block("continue-ollama-config"))["models"]
    by_role: dict[str, list[str]] = {}
    for model in models:
        assert model["provider"] == "ollama"
        assert model["apiBase"] == DOC_URL
        for role in model["roles"]:
            by_role.setdefault(role, []).append(model["model"])
    assert {"chat", "autocomplete", "embed"} <= by_role.keys()

    fim = "<|fim_prefix|>def add(a, b):\n    <|fim_suffix|>\n\nprint(add(1, 2))<|fim_middle|>"
    tool = {
        "type": "function",
        "function": {
            "name": "read_file",
            "description": "Read a file",
            "parameters": {"type": "object", "properties": {"path": {"type": "string"}}},
        },
    }
    async with router_client(demo, {"Content-Type": "application/json"}) as client:
        listed = tag_names(await client.get("/api/tags"))
        for model in models:
            assert f"{model['model']}:latest" in listed
            shown = await client.post("/api/show", json={"name": model["model"]})
            assert shown.status_code == 200, shown.text
            assert ".Suffix" not in shown.json()["template"]  # so Continue templates FIM itself
        options = {"temperature": 0.5, "num_predict": 4096, "num_ctx": 32768}
        for model in by_role["chat"]:
            chat = {"model": model, "messages": HI, "options": options, "keep_alive": 1800}
            ndjson(await client.post("/api/chat", json={**chat, "stream": True}))
            # Continue turns streaming off when it offers tools.
            with_tools = await client.post(
                "/api/chat", json={**chat, "stream": False, "tools": [tool]}
            )
            (call,) = with_tools.json()["message"]["tool_calls"]
            assert call["function"] == {
                "index": 0,
                "name": "read_file",
                "arguments": {"path": "sim"},
            }
        for model in by_role["autocomplete"]:
            lines = ndjson(
                await client.post(
                    "/api/generate",
                    json={
                        "model": model,
                        "prompt": fim,
                        "raw": True,
                        "options": {"num_predict": 256, "temperature": 0.01, "stop": ["\n\n"]},
                        "keep_alive": 1800,
                        "stream": True,
                    },
                )
            )
            assert "".join(line["response"] for line in lines)
        for model in by_role["embed"]:
            vectors = await client.post("/api/embed", json={"model": model, "input": ["def f():"]})
            assert vectors.status_code == 200, vectors.text

    assert [body["prompt"] for body in demo.requests("/v1/completions")] == [fim]


# -- the ollama CLI ------------------------------------------------------------------------------


async def test_ollama_cli_requests_are_served(demo: Demo) -> None:
    env: dict[str, str] = {}
    commands: list[list[str]] = []
    for line in only_block("ollama-cli").splitlines():
        words = shlex.split(line, comments=True)
        if words[:1] == ["export"]:
            key, value = words[1].split("=", 1)
            env[key] = value
        elif words[:1] == ["ollama"]:
            commands.append(words[1:])
    assert env["OLLAMA_HOST"] == DOC_URL
    (run,) = [words for words in commands if words[0] == "run"]
    model, prompt = run[1], run[2]
    assert {"list", "ps"} <= {words[0] for words in commands}

    # The Go client writes every field without omitempty, empty or not (api/types.go).
    show = {
        "model": model,
        "system": "",
        "template": "",
        "verbose": False,
        "options": None,
        "name": "",
    }
    generate = {"model": model, "suffix": "", "system": "", "template": "", "options": {}}
    async with router_client(demo, GO_HEADERS) as client:
        heartbeat = await client.head("/")
        listing = await client.get("/api/tags")
        shown = await client.post("/api/show", json=show)
        loaded = await client.post(
            "/api/generate", json={**generate, "prompt": "", "options": None}
        )
        answer = await client.post("/api/generate", json={**generate, "prompt": prompt})
        running = await client.get("/api/ps")
        missing = await client.post("/api/show", json={**show, "model": "llama3"})

    assert heartbeat.status_code == 200
    assert f"{model}:latest" in tag_names(listing)
    assert shown.json()["capabilities"] == ["completion", "tools"]
    assert loaded.json()["done_reason"] == "load"
    assert "".join(line["response"] for line in ndjson(answer))
    assert running.status_code == 200
    # The CLI offers to pull a model on a 404 whose error says "not found".
    assert missing.status_code == 404
    assert "not found" in missing.json()["error"]
    (sent,) = demo.requests("/v1/chat/completions")
    assert sent["messages"] == [{"role": "user", "content": prompt}]


# -- the JavaScript client -----------------------------------------------------------------------


async def test_ollama_js_requests_are_served(demo: Demo) -> None:
    code = only_block("ollama-js")
    (host,) = re.findall(r"host: '([^']+)'", code)
    assert host == DOC_URL
    models = re.findall(r"model: '([^']+)'", code)
    assert models

    async with router_client(demo, JS_HEADERS) as client:
        # processStreamableRequest writes `stream` out: `request.stream ?? false`.
        whole = await client.post(
            "/api/chat", json={"model": models[0], "messages": HI, "stream": False}
        )
        for model in models[1:]:
            ndjson(
                await client.post(
                    "/api/chat", json={"model": model, "messages": HI, "stream": True}
                )
            )
        missing = await client.post(
            "/api/chat", json={"model": "nope", "messages": HI, "stream": False}
        )

    assert whole.json()["message"]["content"]
    # checkOk reads the error from a JSON body only when the Content-Type says JSON.
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/json"
    assert missing.json()["error"].startswith("model 'nope' not found")

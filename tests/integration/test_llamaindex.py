"""LlamaIndex's ``OpenAILike`` against the router, for real, from a venv of its own.

LlamaIndex pins an older openai SDK than the rest of the suite uses, so ``make test`` builds
``.venv-llamaindex`` (pinned by ``constraints-llamaindex.txt``) and this test runs LlamaIndex
there as a child process against a router on 127.0.0.1: the docs/clients.md recipe as written,
and ``OpenAILike`` with its default settings (which go to ``/v1/completions``).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Final

import pytest

from tests.integration.test_clients_doc import DOC_URL, Demo, demo, only_block

__all__ = ["demo"]  # the fixture, shared with the clients doc tests

LLAMA_PYTHON: Final = Path(__file__).resolve().parents[2] / ".venv-llamaindex" / "bin" / "python"

DEFAULTS_SCRIPT: Final = """
from llama_index.core.llms import ChatMessage
from llama_index.llms.openai_like import OpenAILike

llm = OpenAILike(model="fast", api_base=URL + "/v1", api_key="unused")
print("COMPLETE", llm.complete("hi").text)
print("CHAT", llm.chat([ChatMessage(role="user", content="hi")]).message.content)
print("STREAM", "".join(part.delta for part in llm.stream_complete("hi")))
"""


async def run_llamaindex(code: str) -> str:
    """``code`` run by LlamaIndex's own interpreter; its standard output."""
    if not LLAMA_PYTHON.exists():
        pytest.fail(f"{LLAMA_PYTHON} is missing: `make test` builds it (make .venv-llamaindex)")
    process = await asyncio.create_subprocess_exec(
        str(LLAMA_PYTHON),
        "-c",
        code,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    out, err = await asyncio.wait_for(process.communicate(), 60)
    assert process.returncode == 0, err.decode()[-2000:]
    return out.decode()


async def test_the_documented_llamaindex_recipe_runs_against_the_router(demo: Demo) -> None:
    code = only_block("parse").replace(DOC_URL, demo.router.url)

    out = await run_llamaindex(code)

    lines = out.splitlines()
    assert "You asked" in lines[0]  # llm.complete through chat (is_chat_model=True)
    assert int(lines[1]) > 0  # the embedding's length
    assert demo.requests("/v1/chat/completions")
    assert demo.requests("/v1/embeddings")


async def test_openai_like_with_its_default_settings_is_served_by_completions(demo: Demo) -> None:
    out = await run_llamaindex(f"URL = {demo.router.url!r}\n" + DEFAULTS_SCRIPT)

    assert out.count("You asked") == 3
    bodies = demo.requests("/v1/completions")
    assert len(bodies) == 3  # complete, chat (flattened) and the stream all used completions
    assert not demo.requests("/v1/chat/completions")
    flattened = next(body for body in bodies if body["prompt"] != "hi")
    assert flattened["prompt"] == "user: hi\nassistant: "
    assert flattened["temperature"] == 0.1

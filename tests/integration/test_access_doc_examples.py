"""The curl examples of docs/operations.md and docs/security.md hold, replayed in order.

Both pages run their examples against ``octoroute demo``'s fleet with the ``[auth]`` section that
docs/operations.md shows (its first ``toml fragment`` holding ``[[auth.keys]]``), so the keys in
the commands must be the ones that section's hashes accept. Each page is replayed from a fresh
router, command after command, because its examples build on each other (a key's second request
meets the limit the first one used). Outputs are compared as docs/api.md's are
(``test_api_doc_examples``): status, the headers shown, the JSON body field by field.
"""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import pytest

from octoroute.config import parse_config
from octoroute.simulator import demo_fleet, fleet_config_toml
from tests.harness import RouterHandle, running_router
from tests.integration.test_api_doc_examples import (
    CurlExample,
    curl_examples,
    demo_strategy,
    differences,
    header_differences,
    replay,
    split_output,
    unwrap_json,
)
from tests.unit.test_docs_commands import blocks

ROOT: Final = Path(__file__).resolve().parents[2]
DOCS: Final = ("docs/operations.md", "docs/security.md")
AUTH_SECTIONS: Final = {
    "docs/operations.md": ("Client keys", "Rate limits", "Shared state with Redis"),
    "docs/security.md": (
        "Threat model: auth off",
        "Threat model: auth on",
        "Client keys and permissions",
    ),
}
"""The sections about keys and limits; the pages' other sections (live reload, exposing the
router) replay their examples against routers of their own (``test_reload_doc``,
``test_allowed_hosts``)."""


def auth_examples(doc: str) -> list[CurlExample]:
    """The curl examples of ``doc``'s :data:`AUTH_SECTIONS`, in order, with their page lines."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    kept: list[str] = []
    keep = False
    for line in text.splitlines():
        if line.startswith("## "):
            keep = line[3:].strip() in AUTH_SECTIONS[doc]
        # Lines outside the sections stay as blank lines, so example line numbers hold.
        kept.append(line if keep else "")
    return curl_examples(doc, "\n".join(kept) + "\n")


def auth_fragment() -> str:
    """The ``[auth]`` section the examples run with, as docs/operations.md shows it."""
    return next(
        block.body
        for block in blocks("docs/operations.md")
        if block.lang == "toml" and "[[auth.keys]]" in block.body and "sk-octo" not in block.body
    )


@asynccontextmanager
async def demo_with_keys() -> AsyncIterator[RouterHandle]:
    fleet = demo_fleet()
    for model in fleet.models:
        model.behaviour = dataclasses.replace(
            model.behaviour, latency=0.0, first_token_delay=0.0, token_gap=0.0
        )
    async with fleet:
        text = fleet_config_toml(fleet, strategy=demo_strategy(), host="127.0.0.1", port=0)
        config = parse_config(text + "\n" + auth_fragment(), source="<demo with keys>")
        async with running_router(config) as handle:
            yield handle


def test_each_page_has_curl_examples_with_their_output() -> None:
    for doc in DOCS:
        examples = auth_examples(doc)
        assert examples, doc
        assert all(example.output for example in examples), doc


@pytest.mark.parametrize("doc", DOCS)
async def test_the_pages_examples_answer_as_shown_in_order(doc: str) -> None:
    problems: list[str] = []
    async with demo_with_keys() as router:
        for example in auth_examples(doc):
            shown = split_output(example)
            response = await replay(router, example)
            where = f"{doc}:{example.line} `{example.command}`"
            found: list[str] = []
            if shown.status is not None and response.status_code != shown.status:
                found.append(f"status: doc {shown.status}, code {response.status_code}")
            found += header_differences(shown.headers, response)
            (body,) = unwrap_json(shown.body, where)
            found += differences(body, response.json())
            problems += [f"{where}\n  {line}" for line in found]

    assert not problems, "\n".join(problems)

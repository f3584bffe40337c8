"""The live-reload docs stay true: docs/operations.md's walk-through is replayed, docs/api.md's
answers have the shape the code answers, the unit file reloads with SIGHUP.

The "Live reload" section of docs/operations.md is read block by block, in order: each
``toml fragment`` is appended to the ``config.toml`` of a router on ``octoroute demo``'s fleet
(started from that file, in its directory), each ``$ curl`` command is sent to it, and the answer
must match what the doc shows (as docs/api.md's examples are checked: status, JSON field by
field), the fleet's ports aside.
"""

from __future__ import annotations

import dataclasses
import json
import re
import shlex
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Final

import pytest

from octoroute.config import ConfigError, load_config, parse_config
from octoroute.enums import Tier
from octoroute.simulator import demo_fleet, fleet_config_toml
from tests.harness import RouterHandle, running_router
from tests.integration.test_api_doc_examples import (
    curl_examples,
    demo_strategy,
    differences,
    replay,
    split_output,
    unwrap_json,
)

ROOT: Final = Path(__file__).resolve().parents[2]
OPERATIONS: Final = "docs/operations.md"
_FENCE: Final = re.compile(
    r"^```(?P<info>[^\n`]*)\n(?P<body>.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL
)
_PORT: Final = re.compile(r"127\.0\.0\.1:\d+")


def section(doc: str, title: str) -> str:
    """The text of ``## title`` in ``doc``, up to the next ``## ``."""
    text = (ROOT / doc).read_text(encoding="utf-8")
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else len(text)]


def steps() -> list[tuple[str, str]]:
    """The section's ``toml fragment`` and ``console`` blocks, in order: ``(kind, text)``."""
    found = []
    for match in _FENCE.finditer(section(OPERATIONS, "Live reload")):
        info = match["info"].split()
        if info == ["toml", "fragment"]:
            found.append(("toml", match["body"]))
        elif info[:1] == ["console"]:
            found.append(("console", match.group(0)))
    return found


def portless(value: Any) -> Any:
    """``value`` with every loopback port replaced: the demo fleet's ports change per run."""
    return json.loads(_PORT.sub("127.0.0.1:PORT", json.dumps(value)))


def append(path: Path, text: str) -> None:
    with path.open("a", encoding="utf-8") as file:
        file.write("\n" + text)


@pytest.fixture
async def demo_from_a_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[RouterHandle]:
    """The demo's fleet and strategy behind a router started from ``./config.toml``."""
    fleet = demo_fleet()
    for model in fleet.models:
        model.behaviour = dataclasses.replace(
            model.behaviour, latency=0.0, first_token_delay=0.0, token_gap=0.0
        )
    monkeypatch.chdir(tmp_path)
    async with fleet:
        text = fleet_config_toml(fleet, strategy=demo_strategy(), host="127.0.0.1", port=0)
        (tmp_path / "config.toml").write_text(text)
        async with running_router(load_config("config.toml")) as router:
            yield router


def test_the_walk_through_edits_then_reloads_twice() -> None:
    kinds = [kind for kind, _ in steps()]

    assert kinds == ["toml", "console", "toml", "console"]


async def test_the_operations_walk_through_answers_as_shown(
    demo_from_a_file: RouterHandle, tmp_path: Path
) -> None:
    problems: list[str] = []
    for kind, text in steps():
        if kind == "toml":
            append(tmp_path / "config.toml", text)
            continue
        for example in curl_examples(OPERATIONS, text):
            shown = split_output(example)
            response = await replay(demo_from_a_file, example)
            (body,) = unwrap_json(shown.body, example.label)
            where = f"{OPERATIONS}: `{example.command}`"
            status = response.status_code
            failed = "error" in body
            if failed != (status >= 400):
                problems.append(
                    f"{where}: doc shows {'a refusal' if failed else 'success'}, got {status}"
                )
            problems += [
                f"{where}: {difference}"
                for difference in differences(portless(body), portless(response.json()))
            ]

    assert not problems, "\n".join(problems)


# --- docs/api.md -------------------------------------------------------------------------------


def api_answers() -> list[Any]:
    blocks = [m["body"] for m in _FENCE.finditer(section("docs/api.md", "POST /admin/reload"))]
    return [json.loads(block) for block in blocks]


def shape(value: Any) -> Any:
    """The keys of ``value`` at every level (lists by their first item)."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(value[0])] if value and isinstance(value[0], dict) else []
    return None


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert old in text
    path.write_text(text.replace(old, new, 1), encoding="utf-8")


async def test_the_api_docs_answers_have_the_shape_of_real_ones(
    demo_from_a_file: RouterHandle, tmp_path: Path
) -> None:
    shown_ok, shown_rejected = api_answers()
    reload = curl_examples(OPERATIONS, steps()[1][1])[0]
    config = tmp_path / "config.toml"
    moved = demo_from_a_file.runtime.fleet.tiers[Tier.FAST][1].base_url
    edit(config, 'strategy = "', 'default_tier = "deep"\nstrategy = "')
    edit(config, moved, moved.replace("/v1", "/moved/v1"))  # one endpoint removed, one added
    reloaded = await replay(demo_from_a_file, reload)
    edit(config, 'strategy = "', 'strategy = "smart')
    rejected = await replay(demo_from_a_file, reload)

    assert reloaded.status_code == 200
    got = reloaded.json()
    assert got["changed"] == ["routing.default_tier"]
    assert [e["url"] for e in got["endpoints"]["removed"]] == [moved]
    assert shape(got) == shape(shown_ok)
    assert rejected.status_code == 422
    assert shape(rejected.json()) == shape(shown_rejected)


def test_the_api_docs_problem_is_the_loaders_own_message() -> None:
    (problem,) = api_answers()[1]["problems"]
    text = (ROOT / "docs/configuration.md").read_text(encoding="utf-8")
    minimal = _FENCE.search(text[text.index("## A minimal configuration") :])
    assert minimal is not None
    broken = re.sub(r'^strategy = "\w+"$', 'strategy = "smart"', minimal["body"], flags=re.M)
    assert broken != minimal["body"]

    with pytest.raises(ConfigError) as caught:
        parse_config(broken)
    assert caught.value.problems == (problem,)


# --- the unit file ------------------------------------------------------------------------------


def test_the_unit_reloads_by_sending_sighup_to_the_main_process() -> None:
    unit = (ROOT / "deploy/octoroute.service").read_text(encoding="utf-8")
    (line,) = re.findall(r"^ExecReload=(.*)$", unit, re.MULTILINE)

    assert shlex.split(line) == ["/bin/kill", "-HUP", "$MAINPID"]

"""``[server] watch_config``'s watcher on a real file: a change is reported once, after it has
settled; rewriting the same content, or a file missing for a while, is not a change."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from octoroute.config_watch import ConfigWatcher
from tests.harness import wait_until

POLL = 0.01


def put(path: Path, text: str) -> None:
    path.write_text(text)
    stamp = path.stat()
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000))  # coarse clocks


@asynccontextmanager
async def watching(path: Path) -> AsyncIterator[tuple[ConfigWatcher, list[int]]]:
    calls: list[int] = []
    watcher = ConfigWatcher(str(path), lambda: calls.append(1), poll_seconds=POLL)
    watcher.start()
    try:
        yield watcher, calls
    finally:
        await watcher.stop()


async def passes(watcher: ConfigWatcher, polls: int = 3) -> None:
    """Wait until ``polls`` more polls have run."""
    target = watcher.polls + polls
    await wait_until(lambda: watcher.polls >= target, what=f"{polls} polls")


async def test_a_change_is_reported_once_after_it_settles(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    put(path, "a = 1\n")
    async with watching(path) as (watcher, calls):
        put(path, "a = 2\n")
        await wait_until(lambda: len(calls) == 1, what="the change")
        await passes(watcher)

    assert len(calls) == 1
    assert not watcher.running


async def test_the_same_content_written_again_is_no_change(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    put(path, "a = 1\n")
    async with watching(path) as (watcher, calls):
        put(path, "a = 1\n")
        await passes(watcher)
        quiet = len(calls)
        put(path, "a = 3\n")
        await wait_until(lambda: len(calls) == 1, what="the real change")

    assert quiet == 0


async def test_a_file_gone_for_a_while_is_waited_for(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    put(path, "a = 1\n")
    async with watching(path) as (watcher, calls):
        path.unlink()
        await passes(watcher)
        missing = len(calls)
        put(path, "a = 4\n")
        await wait_until(lambda: len(calls) == 1, what="the file back, changed")

    assert missing == 0


async def test_a_reload_from_elsewhere_is_not_reported_again(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    put(path, "a = 1\n")
    async with watching(path) as (watcher, calls):
        put(path, "a = 5\n")
        watcher.seen()  # SIGHUP read it first
        await passes(watcher)

    assert calls == []

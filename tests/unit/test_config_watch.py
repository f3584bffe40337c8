"""``[server] watch_config``'s watcher on a real file: a change is reported once, after it has
settled; rewriting the same content, or a file missing for a while, is not a change; the
baseline is the content the configuration was loaded from, not what the first poll finds; a
file that stops answering is given up on without blocking the event loop."""

from __future__ import annotations

import asyncio
import hashlib
import os
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TypeVar

import pytest
import structlog

from octoroute.config_watch import ConfigWatcher, FileStuck, OffLoop, digest
from tests.harness import wait_until, within

POLL = 0.01
T = TypeVar("T")


def put(path: Path, text: str) -> None:
    path.write_text(text)
    stamp = path.stat()
    os.utime(path, ns=(stamp.st_atime_ns, stamp.st_mtime_ns + 1_000_000))  # coarse clocks


def sha(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


@asynccontextmanager
async def watching(
    path: Path,
    baseline: str | None = None,
    reads: OffLoop | None = None,
    on_stuck: Callable[[str], None] | None = None,
) -> AsyncIterator[tuple[ConfigWatcher, list[int]]]:
    """A watcher whose baseline is the file as it is now, unless ``baseline`` is given."""
    calls: list[int] = []

    async def changed() -> None:
        calls.append(1)

    watcher = ConfigWatcher(
        str(path),
        changed,
        baseline=digest(str(path)) if baseline is None else baseline,
        poll_seconds=POLL,
        reads=reads,
        on_stuck=on_stuck,
    )
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
        watcher.seen(sha("a = 5\n"))  # SIGHUP read it first
        await passes(watcher)

    assert calls == []


async def test_an_edit_before_the_first_poll_is_a_change(tmp_path: Path) -> None:
    """The baseline is what the configuration was loaded from: a file edited between loading
    and the watcher's first look is reloaded."""
    path = tmp_path / "config.toml"
    put(path, "a = 1\n")
    loaded = digest(str(path))
    put(path, "a = 6\n")  # edited before the watcher starts
    async with watching(path, baseline=loaded) as (_, calls):
        await wait_until(lambda: len(calls) == 1, what="the edit made before the first poll")


@pytest.fixture
def fifo(tmp_path: Path) -> Iterator[Path]:
    """A named pipe: reading it blocks until a writer comes, as a file on a hung mount does.
    Opened for writing at the end, so the reader's thread returns."""
    path = tmp_path / "config.toml"
    os.mkfifo(path)
    yield path
    writer = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    os.close(writer)


async def test_a_read_that_hangs_is_given_up_while_the_loop_keeps_running(fifo: Path) -> None:
    reads = OffLoop(timeout=0.2)
    ticks = 0

    async def tick() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    ticker = asyncio.get_running_loop().create_task(tick())
    started = time.monotonic()
    with pytest.raises(FileStuck) as stuck:
        await reads.run(lambda: digest(str(fifo)), str(fifo))
    waited = time.monotonic() - started
    with pytest.raises(FileStuck) as still:
        await reads.run(lambda: digest(str(fifo)), str(fifo))
    ticker.cancel()

    assert 0.2 <= waited < 2
    assert ticks >= 5  # the event loop ran meanwhile
    assert "did not finish within 0.2 s" in str(stuck.value)
    assert "has not returned yet" in str(still.value)


async def test_a_watched_file_that_hangs_is_reported_as_stuck_not_changed(fifo: Path) -> None:
    problems: list[str] = []
    async with watching(
        fifo, baseline=sha("a = 1\n"), reads=OffLoop(timeout=0.05), on_stuck=problems.append
    ) as (_, calls):
        await wait_until(lambda: len(problems) >= 2, what="the stuck reads reported")

    assert calls == []
    assert "hung network mount" in problems[0]


async def test_the_watcher_logs_in_a_context_of_its_own_not_the_one_that_started_it(
    tmp_path: Path,
) -> None:
    """Started while answering ``POST /admin/reload``, the watcher must not carry that
    request's id into the log lines of every reload it triggers later."""
    path = tmp_path / "config.toml"
    put(path, "a = 1\n")
    seen: list[dict[str, object]] = []

    async def changed() -> None:
        seen.append(structlog.contextvars.get_contextvars())

    structlog.contextvars.bind_contextvars(request_id="the-admin-reload")
    try:
        watcher = ConfigWatcher(str(path), changed, baseline=digest(str(path)), poll_seconds=POLL)
        watcher.start()
    finally:
        structlog.contextvars.clear_contextvars()
    try:
        put(path, "a = 2\n")
        await wait_until(lambda: len(seen) == 1, what="the change")
    finally:
        await watcher.stop()
    assert "request_id" not in seen[0]


async def test_a_read_cancelled_just_as_it_finished_is_still_cancelled() -> None:
    """The read's result is on its way to the awaiting task when the task is cancelled (a
    shutdown at that instant): the task must end cancelled, not carry on with the result, or
    the watcher it belongs to never stops. ``asyncio.wait_for`` on Python 3.11 returned the
    result here, every time; ``_fut_waiter`` is CPython's record of what a task awaits."""
    outcomes: list[object] = []
    for _ in range(20):
        reads = OffLoop(timeout=5.0)
        task = asyncio.ensure_future(reads.run(lambda: 42, "the file"))
        while not task.done():
            await asyncio.sleep(0)
            waiter = getattr(task, "_fut_waiter", None)
            if waiter is not None and waiter.done():
                task.cancel()  # after the result reached the task's waiter, before it resumed
                break
        try:
            outcomes.append(await within(task, 2.0))
        except asyncio.CancelledError:
            outcomes.append("cancelled")
    assert outcomes == ["cancelled"] * 20


class SwallowingReads(OffLoop):
    """Reads that swallow the first cancellation they meet, as Python 3.11's ``wait_for`` did
    when a read finished at that instant: the watcher must stop anyway."""

    def __init__(self) -> None:
        super().__init__()
        self.swallowed = 0
        self.reading = False

    async def run(self, call: Callable[[], T], what: str) -> T:
        self.reading = True
        try:
            await asyncio.sleep(0.05)
        except asyncio.CancelledError:
            if self.swallowed:
                raise
            self.swallowed += 1
        finally:
            self.reading = False
        return call()


async def test_stop_ends_the_watcher_even_if_a_read_swallows_the_cancellation(
    tmp_path: Path,
) -> None:
    path = tmp_path / "config.toml"
    put(path, "a = 1\n")
    reads = SwallowingReads()

    async def changed() -> None:
        pass

    watcher = ConfigWatcher(
        str(path), changed, baseline=digest(str(path)), poll_seconds=POLL, reads=reads
    )
    watcher.start()
    await passes(watcher, 1)
    await wait_until(lambda: reads.reading, what="a read under way")
    stopping = asyncio.ensure_future(watcher.stop())
    done, _ = await asyncio.wait({stopping}, timeout=2.0)
    assert stopping in done  # the lost cancellation used to leave stop() waiting for ever
    assert reads.swallowed == 1
    assert not watcher.running

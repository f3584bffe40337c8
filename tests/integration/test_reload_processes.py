"""Live reload of real ``octoroute serve`` processes: ``SIGHUP``, and ``--workers 2``.

Each test runs the command as a user does (JSON log lines on stderr), rewrites its config file,
triggers a reload and waits, with a deadline, for the log lines that say it happened, then checks
the next requests. With workers, which one answers a connection is the kernel's choice, so the
log lines (each carries its process id) say that every worker reloaded, and requests on fresh
connections say that whichever answers has.
"""

from __future__ import annotations

import asyncio
import errno
import json
import os
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp

from octoroute.simulator import SimulatedFleet, fleet_config_toml
from tests.integration.test_cli import OCTOROUTE

RESTART_WARNING = (
    "config reload: these settings take effect only after a restart; their previous values "
    "stay in force until then"
)
JSON_LOGS = '[observability]\nlog_format = "json"\n[health]\ninterval_seconds = 300\n'
Line = dict[str, Any]


class Served:
    """A running ``octoroute serve`` and every line it wrote to stderr so far."""

    def __init__(self, process: asyncio.subprocess.Process) -> None:
        self.process = process
        self.lines: list[Line] = []
        self.url = ""

    async def wait_for(
        self, what: str, done: Callable[[list[Line]], bool], timeout: float = 30.0
    ) -> None:
        """Read stderr until ``done`` holds for the lines read so far (text lines become
        ``{"text": ...}``)."""
        assert self.process.stderr is not None
        try:
            async with asyncio.timeout(timeout):
                while not done(self.lines):
                    raw = await self.process.stderr.readline()
                    if not raw:
                        raise AssertionError(f"exited before {what}: {self.lines}")
                    try:
                        self.lines.append(json.loads(raw))
                    except json.JSONDecodeError:
                        self.lines.append({"text": raw.decode(errors="replace").rstrip()})
        except TimeoutError:
            raise AssertionError(f"no {what} within {timeout} s: {self.lines}") from None

    def events(self, event: str) -> list[Line]:
        return lines_of(self.lines, event)


def reloaded_by(generation: int) -> Callable[[list[Line]], set[int]]:
    """The pids that logged ``config reloaded`` to ``generation``."""

    def pids(lines: list[Line]) -> set[int]:
        return {
            line["pid"]
            for line in lines
            if line.get("event") == "config reloaded" and line.get("generation") == generation
        }

    return pids


@asynccontextmanager
async def serve(config_path: Path, *extra: str, listening: int = 1) -> AsyncIterator[Served]:
    """``octoroute serve`` on an ephemeral port, once ``listening`` processes listen (``0``: at
    once, still starting)."""
    process = await asyncio.create_subprocess_exec(
        *OCTOROUTE,
        "serve",
        "--config",
        str(config_path),
        "--port",
        "0",
        *extra,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    served = Served(process)
    try:
        if listening:
            await served.wait_for(
                "listening", lambda lines: len(lines_of(lines, "listening")) >= listening
            )
            served.url = str(served.events("listening")[0]["url"])
        yield served
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 20)
            except TimeoutError:
                process.kill()
                await process.wait()


async def writer_of(fifo: Path, timeout: float = 30.0) -> int:
    """A descriptor writing into the named pipe ``fifo``, once a process has opened it to read
    (that process is then waiting for what is written)."""
    async with asyncio.timeout(timeout):
        while True:
            try:
                fd = os.open(fifo, os.O_WRONLY | os.O_NONBLOCK)
            except OSError as error:
                if error.errno != errno.ENXIO:  # ENXIO: no reader yet
                    raise
                await asyncio.sleep(0.01)
                continue
            os.set_blocking(fd, True)
            return fd


def feed(fd: int, text: str) -> None:
    """Write ``text`` and close: the reader gets the whole file, then its end."""
    try:
        os.write(fd, text.encode())
    finally:
        os.close(fd)


def lines_of(lines: list[Line], event: str) -> list[Line]:
    return [line for line in lines if line.get("event") == event]


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new, 1))


def write(path: Path, fleet: SimulatedFleet, alias: str | None = None) -> None:
    extra = JSON_LOGS + (f'[aliases]\n"{alias}" = "deep"\n' if alias else "")
    path.write_text(fleet_config_toml(fleet, strategy="rule", extra=extra))


async def answered_by(url: str, model: str, times: int = 1) -> list[int]:
    """The statuses of ``times`` requests for ``model``, each on a connection of its own."""
    statuses = []
    body = {"model": model, "messages": [{"role": "user", "content": "hello there"}]}
    connector = aiohttp.TCPConnector(force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        for _ in range(times):
            async with session.post(url + "/v1/chat/completions", json=body) as response:
                await response.read()
                statuses.append(response.status)
    return statuses


async def test_sighup_reloads_the_file_and_a_broken_one_is_logged_and_kept_out(
    tmp_path: Path, fleet: SimulatedFleet
) -> None:
    path = tmp_path / "config.toml"
    write(path, fleet)
    async with serve(path) as server:
        assert await answered_by(server.url, "house-model") == [404]
        write(path, fleet, alias="house-model")

        server.process.send_signal(signal.SIGHUP)
        await server.wait_for("a reload", lambda lines: bool(reloaded_by(2)(lines)))
        after = await answered_by(server.url, "house-model")
        path.write_text(path.read_text().replace('strategy = "rule"', 'strategy = "smart"'))
        server.process.send_signal(signal.SIGHUP)
        rejected = "config reload rejected; still running the previous configuration"
        await server.wait_for(
            "a refusal", lambda lines: any(x.get("event") == rejected for x in lines)
        )
        still = await answered_by(server.url, "house-model")

    (done,) = server.events("config reloaded")
    assert (done["trigger"], done["changed"]) == ("SIGHUP", ['aliases."house-model"'])
    assert after == [200]
    (problem,) = server.events("config reload: problem in the file")
    assert problem["problem"].startswith("routing.strategy: ")
    assert still == [200]


async def test_with_two_workers_post_admin_reload_and_sighup_reload_every_worker(
    tmp_path: Path, fleet: SimulatedFleet
) -> None:
    path = tmp_path / "config.toml"
    write(path, fleet)
    async with serve(path, "--workers", "2", listening=2) as server:
        workers = {line["pid"] for line in server.events("listening")}
        write(path, fleet, alias="first")

        async with (
            aiohttp.ClientSession() as session,
            session.post(server.url + "/admin/reload") as response,
        ):
            status, body = response.status, await response.json()
        await server.wait_for("both to reload", lambda lines: reloaded_by(2)(lines) == workers)
        first = await answered_by(server.url, "first", times=12)
        write(path, fleet, alias="second")
        server.process.send_signal(signal.SIGHUP)
        await server.wait_for("both again", lambda lines: reloaded_by(3)(lines) == workers)
        second = await answered_by(server.url, "second", times=12)

    assert len(workers) == 2
    assert (status, body["status"], body["workers_signalled"]) == (200, "reloaded", True)
    assert first == [200] * 12
    assert second == [200] * 12
    triggers = {line["trigger"] for line in server.events("config reloaded")}
    assert triggers == {"POST /admin/reload", "SIGHUP"}


async def test_workers_from_the_file_and_a_changed_count_needs_a_restart(
    tmp_path: Path, fleet: SimulatedFleet
) -> None:
    path = tmp_path / "config.toml"
    write(path, fleet)
    edit(path, "port = 0", "port = 0\nworkers = 2")
    async with serve(path, listening=2) as server:
        edit(path, "workers = 2", "workers = 3")
        async with (
            aiohttp.ClientSession() as session,
            session.post(server.url + "/admin/reload") as response,
        ):
            body = await response.json()
        await server.wait_for(
            "the other worker",
            lambda lines: len({line["pid"] for line in lines_of(lines, RESTART_WARNING)}) == 2,
        )

    assert len({line["pid"] for line in server.events("listening")}) == 2
    assert (body["status"], body["restart_needed"]) == ("unchanged", ["server.workers"])
    assert {line["pid"] for line in server.events(RESTART_WARNING)} == {
        line["pid"] for line in server.events("listening")
    }


async def test_a_sighup_while_the_router_starts_waits_for_it_and_reloads_then(
    tmp_path: Path, fleet: SimulatedFleet
) -> None:
    # `systemctl reload` right after `systemctl start`: SIGHUP's default action ends a process,
    # and systemd counts that as a clean exit, which Restart=on-failure does not restart. The
    # config file is a named pipe so that the router is held at a known point of its start-up
    # (reading the file) while the signal arrives.
    path = tmp_path / "config.toml"
    os.mkfifo(path)
    text = fleet_config_toml(fleet, strategy="rule", extra=JSON_LOGS)
    async with serve(path, listening=0) as server:
        reading = await writer_of(path)
        server.process.send_signal(signal.SIGHUP)
        feed(reading, text)
        await server.wait_for("start-up", lambda lines: bool(lines_of(lines, "router ready")))
        feed(await writer_of(path), text)  # the reload, once its handler exists, reads it again
        unchanged = "config reload: nothing changed"
        await server.wait_for("the reload", lambda lines: bool(lines_of(lines, unchanged)))
        await server.wait_for("listening", lambda lines: bool(lines_of(lines, "listening")))
        answers = await answered_by(str(server.events("listening")[0]["url"]), "fast")

    (reload,) = server.events(unchanged)
    assert reload["trigger"] == "SIGHUP"
    assert answers == [200]


async def test_a_worker_restarted_while_the_file_is_broken_waits_for_a_fix_and_the_others_serve(
    tmp_path: Path, fleet: SimulatedFleet
) -> None:
    # A rejected reload keeps the workers on their configuration; a worker that dies meanwhile
    # (the OOM killer, a crash) is restarted on the file as it is now, and cannot start.
    path = tmp_path / "config.toml"
    write(path, fleet)
    async with serve(path, "--workers", "2", listening=2) as server:
        first = {line["pid"] for line in server.events("listening")}
        good = path.read_text()
        path.write_text(good.replace('strategy = "rule"', 'strategy = "smart"'))
        died = min(first)
        os.kill(died, signal.SIGKILL)
        await server.wait_for(
            "the restart to fail",
            lambda lines: any("cannot start" in line.get("text", "") for line in lines),
        )
        meanwhile = await answered_by(server.url, "fast", times=6)
        path.write_text(good)
        await server.wait_for(
            "a new worker", lambda lines: len(lines_of(lines, "listening")) == 3, timeout=60
        )
        after = await answered_by(server.url, "fast", times=6)
        alive = server.process.returncode is None

    assert meanwhile == [200] * 6
    assert after == [200] * 6
    assert alive
    texts = [line.get("text", "") for line in server.lines]
    assert any(text.startswith("  routing.strategy: ") and "smart" in text for text in texts)
    notice = next(text for text in texts if "cannot start" in text)
    assert "the other workers keep serving" in notice


async def test_when_no_worker_can_start_on_the_broken_file_the_server_stops_with_exit_code_2(
    tmp_path: Path, fleet: SimulatedFleet
) -> None:
    path = tmp_path / "config.toml"
    write(path, fleet)
    async with serve(path, "--workers", "2", listening=2) as server:
        workers = {line["pid"] for line in server.events("listening")}
        path.write_text(path.read_text().replace('strategy = "rule"', 'strategy = "smart"'))
        for pid in workers:
            os.kill(pid, signal.SIGKILL)
        code = await asyncio.wait_for(server.process.wait(), 60)

    assert code == 2

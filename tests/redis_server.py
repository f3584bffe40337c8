"""A real ``redis-server`` (the Debian package's) for the shared-state tests.

Started on a free 127.0.0.1 port with persistence off, waited on with a deadline, stopped (or
killed) and restarted on the same port by the tests that take it away mid-run. When
``redis-server`` is not installed the tests fail with the command that installs it: ``make test``
installs it itself (``scripts/ensure-redis-server.sh``), so a missing server is a broken set-up,
not something to skip.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Final

import pytest
from redis.asyncio import Redis

CANDIDATES: Final = ("/usr/bin/redis-server", "/usr/local/bin/redis-server")
START_SECONDS: Final = 10.0


def redis_server_binary() -> str:
    """The ``redis-server`` to run; fails the test loudly when there is none."""
    found = shutil.which("redis-server") or next(
        (path for path in CANDIDATES if Path(path).is_file()), None
    )
    if found is None:
        pytest.fail(
            "redis-server is not installed, and the shared-state tests need a real one: run "
            "`make test` (it installs it with scripts/ensure-redis-server.sh) or "
            "`apt-get install -y redis-server`"
        )
    return found


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


class RedisServer:
    """One ``redis-server`` process on ``port``; :meth:`stop` and :meth:`start` take it away
    and bring it back (empty: nothing is persisted) on the same port."""

    def __init__(self, directory: Path, *, password: str | None = None) -> None:
        self.binary = redis_server_binary()
        self.directory = directory
        self.password = password
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``[state] redis_url`` of this server."""
        return f"redis://127.0.0.1:{self.port}/0"

    async def start(self) -> None:
        """Start the server and wait until it answers PING (at most ``START_SECONDS``)."""
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", ""]
        command += ["--appendonly", "no", "--dir", str(self.directory), "--protected-mode", "no"]
        if self.password is not None:
            command += ["--requirepass", self.password]
        # Popen returns at once; the wait for the server to answer is below, on the loop.
        self.process = subprocess.Popen(  # noqa: ASYNC220
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + START_SECONDS
        client = self.client()
        try:
            while True:
                if self.process.poll() is not None:
                    raise AssertionError(
                        f"redis-server exited with {self.process.returncode} on port {self.port}"
                    )
                try:
                    if await client.ping():
                        return
                except OSError:
                    pass
                except Exception as error:  # redis-py's ConnectionError while it boots
                    if "connect" not in str(error).lower():
                        raise
                if time.monotonic() > deadline:
                    raise AssertionError(f"redis-server did not answer within {START_SECONDS} s")
                await asyncio.sleep(0.02)
        finally:
            await client.aclose()

    def client(self) -> Redis:
        """A client of this server, for the tests' own reads."""
        return Redis(
            host="127.0.0.1",
            port=self.port,
            password=self.password,
            decode_responses=True,
            socket_timeout=2,
        )

    async def stop(self) -> None:
        """Stop the server (SIGTERM) and wait for it to exit."""
        process = self.process
        if process is None:
            return
        process.terminate()
        await asyncio.to_thread(process.wait, 10)
        self.process = None

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server go on (SIGCONT)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)


@asynccontextmanager
async def started_redis(
    directory: Path, *, password: str | None = None
) -> AsyncIterator[RedisServer]:
    """A running server for one test, stopped after it (the body of the ``redis`` fixtures);
    with ``password`` it refuses clients that do not give it."""
    server = RedisServer(directory, password=password)
    await server.start()
    try:
        yield server
    finally:
        if server.process is not None:
            server.resume()
            await server.stop()

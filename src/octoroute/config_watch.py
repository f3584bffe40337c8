"""``[server] watch_config``: notice that the configuration file changed, and say so once.

A background task polls the file every :data:`POLL_SECONDS`: its size and modification time
first (one ``stat``), its content's SHA-256 only when those moved. A change is reported when the
new content has stayed the same for one more poll, so an editor that writes the file in several
steps (or renames a temporary file over it) is reloaded once, whole, one to two polls after it
stopped writing. Saving the same content again (``touch``) reports nothing. A file that cannot
be read (removed mid-rename) is waited for, never reported.

No dependency (inotify would need one, and misses files on network mounts and in containers
with bind-mounted directories): a ``stat`` per second costs nothing measurable.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Callable
from typing import Final

POLL_SECONDS: Final = 1.0
TASK_NAME: Final = "octoroute-config-watch"

_Stamp = tuple[int, int]
"""Size and modification time (ns) of the file."""


def _stamp(path: str) -> _Stamp | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


def _digest(path: str) -> bytes | None:
    try:
        with open(path, "rb") as file:
            return hashlib.sha256(file.read()).digest()
    except OSError:
        return None


class ConfigWatcher:
    """Calls ``on_change`` (on the event loop) each time ``path``'s content changed and then
    stayed put for a poll; started and stopped by its owner (``octoroute.reload``)."""

    def __init__(
        self, path: str, on_change: Callable[[], None], *, poll_seconds: float = POLL_SECONDS
    ) -> None:
        self._path = path
        self._on_change = on_change
        self._poll = poll_seconds
        self._task: asyncio.Task[None] | None = None
        self._stamp = _stamp(path)
        self._seen = _digest(path)
        """The content last reported (or found at start): a change is measured against it."""
        self.polls = 0
        """Polls done so far (a test waits for one to pass)."""

    @property
    def running(self) -> bool:
        """Whether the polling task is alive."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start polling; the file as it is now is the baseline."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(self._watch(), name=TASK_NAME)

    async def stop(self) -> None:
        """Stop polling and wait for the task to end."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    def cancel(self) -> None:
        """Stop polling, without waiting for the task to end (from synchronous code)."""
        task, self._task = self._task, None
        if task is not None:
            task.cancel()

    def seen(self) -> None:
        """The file was just read by a reload from elsewhere (``SIGHUP``, the admin route): take
        its current content as the baseline, so it is not reported again."""
        self._stamp = _stamp(self._path)
        self._seen = _digest(self._path)

    async def _watch(self) -> None:
        pending: bytes | None = None
        while True:
            await asyncio.sleep(self._poll)
            self.polls += 1
            stamp = _stamp(self._path)
            if stamp is None:
                pending = None  # gone for now (an editor's rename): wait for it to come back
                continue
            if stamp == self._stamp and pending is None:
                continue
            self._stamp = stamp
            digest = _digest(self._path)
            if digest is None or digest == self._seen:
                pending = None
                continue
            if digest != pending:
                pending = digest  # changed: report it once it has stayed so for a poll
                continue
            pending = None
            self._seen = digest
            try:
                self._on_change()
            except Exception as error:  # a bug must not end the watching for good
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "config watch: the reload raised", "exception": error}
                )

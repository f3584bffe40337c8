"""``[server] watch_config``: notice that the configuration file changed, and say so once; and
the off-loop file reads that the watcher and every reload use.

A background task polls the file every :data:`POLL_SECONDS`: its size and modification time
first (one ``stat``), its content's SHA-256 only when those moved. A change is reported when the
new content has stayed the same for one more poll, so an editor that writes the file in several
steps (or renames a temporary file over it) is reloaded once, whole, one to two polls after it
stopped writing. Saving the same content again (``touch``) reports nothing. A file that cannot
be read (removed mid-rename) is waited for, never reported.

The baseline is the content the running configuration was parsed from (``Config.digest``), not
what the file holds when the watcher first looks: an edit made between loading the file and the
first poll is a change like any other.

No dependency (inotify would need one, and misses files on network mounts and in containers
with bind-mounted directories): a ``stat`` per second costs nothing measurable.

**Off the event loop.** A file on a network mount that stopped answering blocks whoever reads
it, in the kernel. So every ``stat`` and read of the configuration (the watcher's, and a
reload's ``load_config``) runs in a thread of its own (:class:`OffLoop`), with a deadline
(:data:`READ_TIMEOUT_SECONDS`): past it the caller gets :class:`FileStuck` and the router keeps
serving. The thread is a daemon, so one stuck for good never holds up shutdown, and while it is
stuck no other is started (a hung mount costs one thread, not one per poll).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import hashlib
import os
import threading
from collections.abc import Awaitable, Callable
from typing import Final, TypeVar

POLL_SECONDS: Final = 1.0
READ_TIMEOUT_SECONDS: Final = 5.0
"""How long a ``stat`` or read of the configuration file may take before it is given up."""
TASK_NAME: Final = "octoroute-config-watch"
THREAD_NAME: Final = "octoroute-config-read"

T = TypeVar("T")

_Stamp = tuple[int, int]
"""Size and modification time (ns) of the file."""


class FileStuck(Exception):
    """A ``stat`` or read of the configuration file did not return in time (a hung network
    mount, say); the message says so in words an operator can act on."""


def _settle(future: asyncio.Future[T], result: T | None, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)  # type: ignore[arg-type]


def _retrieved(future: asyncio.Future[T]) -> None:
    """Mark the outcome of a call given up on as seen (asyncio logs one nobody read)."""
    if not future.cancelled():
        future.exception()


class OffLoop:
    """Blocking file calls in a daemon thread each, awaited with a deadline."""

    def __init__(self, timeout: float = READ_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout
        self._pending: asyncio.Future[object] | None = None

    async def run(self, call: Callable[[], T], what: str) -> T:
        """``call()``'s result, computed in a thread; :class:`FileStuck` naming ``what`` when
        it takes longer than :attr:`timeout`, or while an earlier call still has not
        returned."""
        pending = self._pending
        if pending is not None and not pending.done():
            raise FileStuck(
                f"an earlier read of {what} has not returned yet (a hung network mount?); "
                "nothing was read this time"
            )
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        future.add_done_callback(_retrieved)

        def work() -> None:
            result: T | None = None
            error: BaseException | None = None
            try:
                result = call()
            except BaseException as raised:  # handed to the awaiting task as it is
                error = raised
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody waits any more
                loop.call_soon_threadsafe(_settle, future, result, error)

        threading.Thread(target=work, name=THREAD_NAME, daemon=True).start()
        self._pending = future  # type: ignore[assignment]
        try:
            # asyncio.timeout, not wait_for: on Python 3.11, wait_for returns the result of a
            # future that finished just as its task was cancelled, swallowing the cancellation,
            # and the watcher it runs in then never stops (a shutdown that hangs)
            async with asyncio.timeout(self.timeout):
                return await asyncio.shield(future)
        except TimeoutError:
            raise FileStuck(
                f"reading {what} did not finish within {self.timeout:g} s (a hung network "
                "mount?); the router keeps running its current configuration"
            ) from None


def stamp(path: str) -> _Stamp | None:
    """The file's size and modification time; ``None`` when it cannot be read."""
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_size, status.st_mtime_ns


def digest(path: str) -> str | None:
    """The SHA-256 (hex) of the file's bytes, as ``Config.digest`` says the text it was parsed
    from; ``None`` when it cannot be read."""
    try:
        with open(path, "rb") as file:
            return hashlib.sha256(file.read()).hexdigest()
    except OSError:
        return None


class ConfigWatcher:
    """Awaits ``on_change`` (on the event loop) each time ``path``'s content changed from
    ``baseline`` (the SHA-256 the running configuration was parsed from) and then stayed put for
    a poll; started and stopped by its owner (``octoroute.reload``). ``on_stuck`` is told once
    each time the file stops answering (see :class:`OffLoop`)."""

    def __init__(
        self,
        path: str,
        on_change: Callable[[], Awaitable[None]],
        *,
        baseline: str | None,
        poll_seconds: float = POLL_SECONDS,
        reads: OffLoop | None = None,
        on_stuck: Callable[[str], None] | None = None,
    ) -> None:
        self._path = path
        self._on_change = on_change
        self._poll = poll_seconds
        self._reads = reads or OffLoop()
        self._on_stuck = on_stuck
        self._task: asyncio.Task[None] | None = None
        self._stamp: _Stamp | None = None
        """Unknown until the first poll, which therefore reads the content."""
        self._seen = baseline
        """The content last reported or loaded: a change is measured against it."""
        self.polls = 0
        """Polls done so far (a test waits for one to pass)."""

    @property
    def running(self) -> bool:
        """Whether the polling task is alive."""
        return self._task is not None and not self._task.done()

    def start(self) -> None:
        """Start polling, in a context of its own: started by ``POST /admin/reload``, the task
        would otherwise keep that request's log context, and every later line of the watcher
        would carry the id of a request long answered."""
        if not self.running:
            self._task = asyncio.get_running_loop().create_task(
                self._watch(), name=TASK_NAME, context=contextvars.Context()
            )

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

    def _stopped(self) -> bool:
        """Whether this task is no longer the watcher's own (:meth:`stop` or :meth:`cancel`
        let it go, perhaps for a new one): it then ends at its next turn, even if the
        cancellation itself was lost on the way (an awaited call may swallow one)."""
        return self._task is not asyncio.current_task()

    def seen(self, content: str) -> None:
        """A reload from elsewhere (``SIGHUP``, the admin route) just read content whose
        SHA-256 is ``content``: take it as the baseline, so it is not reported again."""
        self._seen = content
        self._stamp = None

    async def _read(self, call: Callable[[str], T]) -> tuple[T | None, bool]:
        """``call(path)`` off the loop; and whether the file answered."""
        try:
            return await self._reads.run(lambda: call(self._path), self._path), True
        except FileStuck as stuck:
            if self._on_stuck is not None:
                self._on_stuck(str(stuck))
            return None, False

    async def _watch(self) -> None:
        pending: str | None = None
        stuck = False
        while True:
            await asyncio.sleep(self._poll)
            if self._stopped():
                return
            self.polls += 1
            stamped, answered = await self._read(stamp)
            if not answered or stamped is None:
                pending = None  # gone for now (an editor's rename, a stuck mount): wait
                stuck = not answered
                continue
            if stamped == self._stamp and pending is None and not stuck:
                continue
            self._stamp = stamped
            content, answered = await self._read(digest)
            stuck = not answered
            if content is None or content == self._seen:
                pending = None
                continue
            if content != pending:
                pending = content  # changed: report it once it has stayed so for a poll
                continue
            pending = None
            self._seen = content
            try:
                await self._on_change()
            except Exception as error:  # a bug must not end the watching for good
                asyncio.get_running_loop().call_exception_handler(
                    {"message": "config watch: the reload raised", "exception": error}
                )

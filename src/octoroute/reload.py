"""Live reload: read the configuration file again, check it as start-up does, and swap it in; or
keep running the previous configuration and say everything that is wrong with the new one.

Three triggers end here, in :meth:`Reloader.reload`:

* ``SIGHUP`` (``server.py``; with ``--workers`` the parent passes it on to every worker);
* ``POST /admin/reload`` (``api/reload.py``; with ``--workers`` the worker that got it reloads,
  answers with its own result, and asks its parent to pass a ``SIGHUP`` to every worker, so all
  of them reload the same file; one that already has it finds nothing changed);
* ``[server] watch_config = true`` (``config_watch.py``).

The file is read and parsed off the event loop (``config_watch.OffLoop``: a thread with a
deadline, so a configuration on a network mount that stopped answering rejects the reload after
``READ_TIMEOUT_SECONDS`` instead of freezing the router); from there to the swap a reload is one
synchronous step, and reloads are taken one at a time, so they never overlap and no request sees
half of one. The file goes through the loader of start-up (``config.load_config``: every problem
at once, files named by TLS keys and the environment included) with the command line's overrides (``config.overrides``), then
through what start-up does after it (the open-file limit, ``ReloadOptions.prepare``), then the
runtime builds what the new endpoints need (``Runtime.plan``: their TLS contexts). Any problem
on the way rejects the whole file: nothing changes, each problem is logged on a line of its own
and listed in the answer. Otherwise ``Runtime.commit`` swaps it in, and what changed is logged
and answered: the settings (key paths, never values), the endpoints added, removed (draining)
and kept, and the settings that only a restart applies (``config.diff.RESTART_KEYS``), which keep
their running values meanwhile.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import shlex
import time
from collections.abc import Callable
from typing import Any, Final, Literal, NamedTuple

import msgspec

from octoroute.config import ConfigError, parse_config, read_config_file
from octoroute.config.diff import changed_keys, keep_running, restart_needed
from octoroute.config.overrides import Overrides
from octoroute.config.redact import redact_url
from octoroute.config.schema import Config
from octoroute.config_watch import ConfigWatcher, FileStuck, OffLoop
from octoroute.fleet.endpoint import Endpoint
from octoroute.observability.logging import RateLimitedWarning, get_logger
from octoroute.runtime import Runtime, log_drained

log = get_logger("octoroute.reload")

SIGNAL_TRIGGER: Final = "SIGHUP"
ADMIN_TRIGGER: Final = "POST /admin/reload"
WATCH_TRIGGER: Final = "watch_config"
STUCK_WARNING_SECONDS: Final = 60.0
"""At most one "the file does not answer" warning from the watcher per this many seconds."""

Status = Literal["reloaded", "unchanged", "rejected"]


class ReloadOptions(NamedTuple):
    """How this process was started, which a reload must repeat."""

    overrides: Overrides = Overrides()
    """The command line's values, which win over the reloaded file's as they did at start."""
    prepare: Callable[[Config], Config] | None = None
    """What start-up did to the loaded configuration after the overrides (fitting
    ``max_in_flight`` to the open-file limit)."""
    fan_out: Callable[[], None] | None = None
    """Ask every other worker of ``serve --workers`` to reload (``None``: one process)."""


DEFAULT_OPTIONS: Final = ReloadOptions()
"""One process started from a file without command-line overrides."""


class ReloadReport:
    """What one reload did, for the log and the admin answer."""

    __slots__ = (
        "added",
        "changed",
        "drained",
        "generation",
        "kept",
        "problems",
        "removed",
        "restart_needed",
        "source",
        "status",
        "trigger",
        "workers_signalled",
    )

    def __init__(
        self,
        status: Status,
        trigger: str,
        source: str,
        generation: int,
        *,
        problems: tuple[str, ...] = (),
        changed: tuple[str, ...] = (),
        restart: tuple[str, ...] = (),
        added: tuple[dict[str, Any], ...] = (),
        removed: tuple[dict[str, Any], ...] = (),
        kept: tuple[dict[str, Any], ...] = (),
        drained: tuple[Endpoint, ...] = (),
    ) -> None:
        self.status = status
        self.trigger = trigger
        self.source = source
        self.generation = generation
        """The configuration now running: 1 at start-up, one more per reload that applied."""
        self.problems = problems
        self.changed = changed
        self.restart_needed = restart
        self.added = added
        self.removed = removed
        self.kept = kept
        self.drained = drained
        """Removed instances that were idle and drained at once (for the log only)."""
        self.workers_signalled = False

    @property
    def rejected(self) -> bool:
        """The file was not applied: ``problems`` says why."""
        return self.status == "rejected"

    def body(self) -> dict[str, Any]:
        """The admin answer (``docs/api.md``, ``POST /admin/reload``); a rejected file's is also
        an error envelope, so clients that only read ``error`` understand it."""
        body: dict[str, Any] = {}
        if self.rejected:
            count = len(self.problems)
            advice = (
                "Fix the file and reload again (octoroute check --config "
                f"{shlex.quote(self.source)} lists them too)."
                if _from_a_file(self.source)
                else "Start the router with --config FILE to reload from a file."
            )
            body["error"] = {
                "message": (
                    f"{self.source}: {count} {'problem' if count == 1 else 'problems'}; the "
                    f"router keeps running its previous configuration. {advice}"
                ),
                "type": "invalid_request_error",
                "param": None,
                "code": "config_invalid",
            }
        body |= {
            "status": self.status,
            "trigger": self.trigger,
            "source": self.source,
            "generation": self.generation,
            "problems": list(self.problems),
            "changed": list(self.changed),
            "restart_needed": list(self.restart_needed),
            "endpoints": {
                "added": list(self.added),
                "removed": list(self.removed),
                "kept": list(self.kept),
            },
            "workers_signalled": self.workers_signalled,
        }
        return body


def _described(endpoint: Endpoint) -> dict[str, Any]:
    return {"id": endpoint.id, "name": endpoint.name, "url": redact_url(endpoint.base_url)}


def _from_a_file(source: str) -> bool:
    """Whether ``source`` names a file (``parse_config``'s sources are ``<...>``)."""
    return not (source.startswith("<") and source.endswith(">"))


class Reloader:
    """Reloads ``runtime``'s configuration file on demand, and on change with
    ``[server] watch_config``; one per server process."""

    def __init__(self, runtime: Runtime, options: ReloadOptions = DEFAULT_OPTIONS) -> None:
        self._runtime = runtime
        self._options = options
        self._path = runtime.config.source
        self._running = runtime.config
        """What the process started with: the baseline of the settings only a restart
        changes."""
        self._watcher: ConfigWatcher | None = None
        self.last: tuple[float, ReloadReport] | None = None
        """The wall-clock time and report of the latest reload, whatever triggered it (``None``
        before the first); the dashboard shows it."""
        self.reads = OffLoop()
        """Where the file is read, off the event loop, with its deadline (``timeout``)."""
        self._one_at_a_time = asyncio.Lock()
        self._signalled: set[asyncio.Task[ReloadReport]] = set()
        """Reloads asked for by ``SIGHUP`` (:meth:`reload_soon`) still under way."""
        self._stuck = RateLimitedWarning(
            log,
            "config watch: the configuration file does not answer; still running the current "
            "configuration",
            STUCK_WARNING_SECONDS,
        )

    @property
    def watching(self) -> bool:
        """Whether ``watch_config`` is on and its task is polling the file."""
        return self._watcher is not None and self._watcher.running

    def start(self) -> None:
        """Start watching the file if the configuration says so (inside the event loop)."""
        self._follow_watch_setting()

    async def stop(self) -> None:
        """Stop watching the file, and any reload a signal started."""
        watcher, self._watcher = self._watcher, None
        if watcher is not None:
            await watcher.stop()
        for task in list(self._signalled):
            task.cancel()
        await asyncio.gather(*self._signalled, return_exceptions=True)

    def reload_soon(self, trigger: str) -> None:
        """Start a reload now, from synchronous code (a signal handler); logged when done."""
        task = asyncio.get_running_loop().create_task(self.reload(trigger))
        self._signalled.add(task)
        task.add_done_callback(self._signalled.discard)

    async def reload(self, trigger: str, *, everywhere: bool = False) -> ReloadReport:
        """Reload the file now; logged, and returned for an answer. ``everywhere``: also ask
        the other workers to reload (``POST /admin/reload``), unless the file was rejected."""
        async with self._one_at_a_time:
            report, content = await self._reload(trigger)
            self.last = (time.time(), report)
            _log(report)
            if self._watcher is not None and content is not None:
                self._watcher.seen(content)
            self._follow_watch_setting()
        if everywhere and not report.rejected and self._options.fan_out is not None:
            self._options.fan_out()
            report.workers_signalled = True
        return report

    def _rejected(self, trigger: str, problems: tuple[str, ...]) -> ReloadReport:
        runtime = self._runtime
        return ReloadReport("rejected", trigger, self._path, runtime.generation, problems=problems)

    async def _reload(self, trigger: str) -> tuple[ReloadReport, str | None]:
        """What the reload did, and the SHA-256 of the content it read (``None``: none)."""
        if not _from_a_file(self._path):
            return self._rejected(
                trigger,
                (
                    f"this router's configuration did not come from a file ({self._path}); "
                    "there is nothing to reload",
                ),
            ), None
        path = self._path
        try:
            loaded = await self.reads.run(lambda: _load(path), path)
        except FileStuck as stuck:
            return self._rejected(trigger, (f"{path}: {stuck}",)), None
        if isinstance(loaded, tuple):
            error, content = loaded
            problems = error.problems
            if error.file_level:  # no key path to prefix it: say which file
                problems = tuple(f"{path}: {problem}" for problem in problems)
            return self._rejected(trigger, problems), content
        return self._apply(trigger, loaded), loaded.digest

    def _apply(self, trigger: str, loaded: Config) -> ReloadReport:
        """Check ``loaded`` as start-up does and swap it in (one synchronous step)."""
        runtime = self._runtime
        requested = self._options.overrides.apply(loaded)
        restart = restart_needed(self._running, requested)
        config = keep_running(requested, self._running)
        if self._options.prepare is not None:
            config = self._options.prepare(config)
        plan = runtime.plan(config)
        if plan.problems:
            return self._rejected(trigger, tuple(plan.problems))
        same = msgspec.structs.replace(config, digest=runtime.config.digest) == runtime.config
        if same and not plan.added and not plan.removed:
            return ReloadReport(
                "unchanged",
                trigger,
                self._path,
                runtime.generation,
                restart=restart,
                kept=tuple(_described(lane.endpoint) for lane, _ in plan.kept),
            )
        changed = changed_keys(runtime.config, config)
        swapped = runtime.commit(plan)
        return ReloadReport(
            "reloaded",
            trigger,
            self._path,
            runtime.generation,
            changed=changed + swapped.changed,
            restart=restart,
            added=tuple(_described(endpoint) for endpoint in swapped.added),
            removed=tuple(
                _described(endpoint) | {"in_flight": endpoint.in_flight}
                for endpoint in swapped.removed
            ),
            kept=tuple(_described(endpoint) for endpoint in swapped.kept),
            drained=swapped.drained,
        )

    def _follow_watch_setting(self) -> None:
        """Watch the file while ``[server] watch_config`` is on (a reload may turn it on or
        off)."""
        wanted = self._runtime.config.server.watch_config and _from_a_file(self._path)
        if wanted and self._watcher is None:
            self._watcher = ConfigWatcher(
                self._path,
                self._on_file_change,
                baseline=self._runtime.config.digest or None,
                reads=self.reads,
                on_stuck=self._on_stuck,
            )
            self._watcher.start()
            log.info("watching the configuration file for changes", source=self._path)
        elif not wanted and self._watcher is not None:
            self._watcher.cancel()
            self._watcher = None
            log.info("stopped watching the configuration file", source=self._path)

    def _on_stuck(self, problem: str) -> None:
        self._stuck.warn(source=self._path, problem=problem)

    async def _on_file_change(self) -> None:
        await self.reload(WATCH_TRIGGER)


def _load(path: str) -> Config | tuple[ConfigError, str | None]:
    """``load_config(path)`` (in the reader's thread, the file read once); when the file is
    rejected, the error and the SHA-256 of what it held, so the watcher does not report the
    same content again."""
    try:
        text = read_config_file(path)
    except ConfigError as error:
        return error, None
    try:
        return parse_config(text, source=path)
    except ConfigError as error:
        return error, hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _log(report: ReloadReport) -> None:
    """One line per problem, or per endpoint added and removed; then one line saying what the
    reload did; a warning naming the settings that wait for a restart."""
    where = {"trigger": report.trigger, "source": report.source, "pid": os.getpid()}
    if report.rejected:
        for problem in report.problems:
            log.error("config reload: problem in the file", problem=problem, **where)
        log.error(
            "config reload rejected; still running the previous configuration",
            problems=len(report.problems),
            generation=report.generation,
            **where,
        )
        return
    for endpoint in report.added:
        log.info("endpoint added by reload; probing it now", **endpoint)
    for endpoint in report.removed:
        log.info("endpoint removed by reload; draining it", **endpoint)
    if report.status == "unchanged":
        log.info("config reload: nothing changed", generation=report.generation, **where)
    else:
        log.info(
            "config reloaded",
            generation=report.generation,
            changed=list(report.changed),
            added=[endpoint["id"] for endpoint in report.added],
            removed=[endpoint["id"] for endpoint in report.removed],
            kept=len(report.kept),
            restart_needed=list(report.restart_needed),
            **where,
        )
    for instance in report.drained:
        log_drained(instance)
    if report.restart_needed:
        log.warning(
            "config reload: these settings take effect only after a restart; their previous "
            "values stay in force until then",
            keys=list(report.restart_needed),
            **where,
        )

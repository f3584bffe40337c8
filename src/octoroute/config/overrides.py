"""What the command line says instead of the file: ``--host``, ``--port``, ``--workers`` and the
log level (``--log-level``, else ``$OCTOROUTE_LOG``).

One definition, applied at start-up and again to every reloaded file, so a reload compares
like with like: with ``--port 9000`` on the command line, a file whose ``port`` changed asks
for nothing new.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Final, NamedTuple

import msgspec

from octoroute.config import rules

if TYPE_CHECKING:
    from octoroute.config.schema import Config


class Overrides(NamedTuple):
    """Command-line values that win over the file's; ``None``: the file decides."""

    host: str | None = None
    port: int | None = None
    workers: int | None = None
    log_level: str | None = None
    """``--log-level``, else ``$OCTOROUTE_LOG``."""

    def apply(self, config: Config) -> Config:
        """``config`` with these values in place of the file's (the same object when none)."""
        server: dict[str, Any] = {}
        if self.host is not None:
            server["host"] = self.host
        if self.port is not None:
            server["port"] = self.port
        if self.workers is not None:
            server["workers"] = self.workers
        changes: dict[str, Any] = {}
        if server:
            changes["server"] = msgspec.structs.replace(config.server, **server)
        if self.log_level is not None:
            level = rules.normalize_log_level(self.log_level) or self.log_level
            changes["observability"] = msgspec.structs.replace(
                config.observability, log_level=level
            )
        return msgspec.structs.replace(config, **changes) if changes else config


NO_OVERRIDES: Final = Overrides()
"""The file decides everything."""

"""Fit the process's open-file limit to the load it is configured for, once at start-up.

Every request in flight holds two file descriptors (the client's socket and one upstream
connection), so ``server.max_in_flight = 1024`` needs more than the 1024 descriptors many
systems allow by default. Past the limit the router still answers (503 ``server_overloaded``,
never blamed on an upstream), but a limit that is merely low by default should not cause that.
Like Go's runtime, the soft limit is raised towards the hard limit when it is too low; when the
hard limit itself is too low, one warning says what to change.
"""

from __future__ import annotations

import resource
from typing import Final, NamedTuple

FDS_PER_REQUEST: Final = 2
"""The client's socket and one upstream connection."""
FD_RESERVE: Final = 64
"""The listening socket, idle pooled connections, probes, log files: a margin, not a count."""


class FdLimit(NamedTuple):
    """What fitting the limit did: the soft limit before and after, and what was wanted."""

    before: int
    after: int
    wanted: int

    @property
    def raised(self) -> bool:
        """The soft limit was raised."""
        return self.after > self.before

    @property
    def enough(self) -> bool:
        """The limit now covers ``max_in_flight`` requests."""
        return self.after >= self.wanted


def fit_fd_limit(max_in_flight: int) -> FdLimit:
    """Raise the soft ``RLIMIT_NOFILE`` towards the hard one until ``max_in_flight`` fits."""
    wanted = max_in_flight * FDS_PER_REQUEST + FD_RESERVE
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY or soft >= wanted:
        return FdLimit(soft, soft, wanted)
    target = wanted if hard == resource.RLIM_INFINITY else min(hard, wanted)
    if target <= soft:
        return FdLimit(soft, soft, wanted)
    try:
        resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
    except (ValueError, OSError):
        return FdLimit(soft, soft, wanted)
    return FdLimit(soft, target, wanted)


def in_flight_that_fits(limit: FdLimit, max_in_flight: int) -> int:
    """``max_in_flight``, lowered when the open-file limit cannot hold that many requests:
    past it every upstream connect would fail, and refusing at the door (503, connection
    closed) frees descriptors where failing later would hold them."""
    if limit.enough:
        return max_in_flight
    return max(1, min(max_in_flight, (limit.after - FD_RESERVE) // FDS_PER_REQUEST))

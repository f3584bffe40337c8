"""Fixtures shared by the integration tests: a started simulated fleet and a router on it."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Iterator

import aiohttp
import pytest
import structlog

from octoroute.simulator import SimulatedFleet
from tests.harness import RouterHandle, config_for, running_router, standard_fleet


@pytest.fixture(autouse=True)
def isolated_logging() -> Iterator[None]:
    """Each test ends with the logging it started with (structlog's configuration, the stdlib
    root logger's handlers and level, aiohttp's access log level).

    Some tests configure the router's logging (a level, JSON into a buffer); had they set it back
    to anything but what the suite started with, a later test reading its lines from ``capsys``
    would pass or fail by the order the tests ran in.
    """
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    access = logging.getLogger("aiohttp.access")
    access_level = access.level
    yield
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)
    access.setLevel(access_level)


@pytest.fixture
async def fleet() -> AsyncIterator[SimulatedFleet]:
    """The standard simulated fleet, started on ephemeral loopback ports."""
    async with standard_fleet() as started:
        yield started


@pytest.fixture
async def router(fleet: SimulatedFleet) -> AsyncIterator[RouterHandle]:
    """The router with strategy ``rule`` in front of the standard fleet."""
    async with running_router(config_for(fleet, strategy="rule")) as handle:
        yield handle


@pytest.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    """One client session per test, closed after it: the raw-HTTP side of the tests."""
    async with aiohttp.ClientSession() as client:
        yield client

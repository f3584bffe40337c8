"""Fixtures shared by the integration tests: a started simulated fleet and a router on it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest

from octoroute.simulator import SimulatedFleet
from tests.harness import RouterHandle, config_for, running_router, standard_fleet


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

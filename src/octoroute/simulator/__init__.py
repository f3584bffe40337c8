"""A scriptable, simulated fleet of OpenAI-compatible model servers.

The test suite's fake upstream and the built-in fleet of ``octoroute demo``. Each
``SimulatedModel`` is a real aiohttp server on loopback whose ``behaviour`` (reply, timing,
faults, health) can be changed while it runs, and which records every request it received::

    async with SimulatedModel("sim-llama-8b", label="fast") as sim:
        sim.behaviour.fault = HttpError(503)
        sim.behaviour.fault_times = 1          # fail once, then answer
        ...                                     # point a client or the router at sim.base_url
        await sim.wait_for_requests(2)
        assert sim.chat_requests[1].json["model"] == "sim-llama-8b"
"""

from octoroute.simulator.behaviour import Behaviour, Drop, Fault, Hang, HttpError, RecordedRequest
from octoroute.simulator.fleet import SimulatedFleet, demo_fleet, fleet_config_toml, pool_behaviour
from octoroute.simulator.multimodel import MultiModelServer
from octoroute.simulator.replies import ROUTER_PROMPT_SIGNATURE, ReplyFn, route_heuristic, tokenize
from octoroute.simulator.server import CHAT_PATH, COMPLETIONS_PATH, MODELS_PATH, SimulatedModel

__all__ = [
    "CHAT_PATH",
    "COMPLETIONS_PATH",
    "MODELS_PATH",
    "ROUTER_PROMPT_SIGNATURE",
    "Behaviour",
    "Drop",
    "Fault",
    "Hang",
    "HttpError",
    "MultiModelServer",
    "RecordedRequest",
    "ReplyFn",
    "SimulatedFleet",
    "SimulatedModel",
    "demo_fleet",
    "fleet_config_toml",
    "pool_behaviour",
    "route_heuristic",
    "tokenize",
]

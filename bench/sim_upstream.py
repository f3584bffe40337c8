"""The project's simulator (``octoroute.simulator.SimulatedModel``) as a standalone fake upstream.

Used with ``--upstream sim`` when nginx is not installed. It costs far more CPU per request than
nginx, and it sits on the load core with the generator, so at high rates it, not the proxy, may
be the bottleneck: the harness prints a warning when it is used.

``python -m bench.sim_upstream --port 18081 [--max-seconds 900]``
"""

from __future__ import annotations

import argparse
import asyncio

import uvloop

from octoroute.simulator import SimulatedModel

_RESET_EVERY_SECONDS = 1.0


async def serve(port: int, max_seconds: float) -> None:
    """Serve for at most ``max_seconds``, forgetting recorded requests so memory stays flat."""
    model = SimulatedModel("bench-model")
    await model.start(port=port)
    try:
        for _ in range(int(max_seconds / _RESET_EVERY_SECONDS)):
            await asyncio.sleep(_RESET_EVERY_SECONDS)
            model.reset()
    finally:
        await model.stop()


def main() -> None:
    """Parse the command line and serve."""
    parser = argparse.ArgumentParser(prog="python -m bench.sim_upstream")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--max-seconds", type=float, default=900.0)
    args = parser.parse_args()
    uvloop.run(serve(args.port, args.max_seconds))


if __name__ == "__main__":
    main()

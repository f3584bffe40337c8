"""``octoroute demo``: the router in front of a simulated fleet, with examples to paste.

Everything runs in one process on loopback: five simulated model servers (two fast replicas, one
balanced that also plays the router model, one deep, one embedding model) and the router. Ctrl-C stops it all.
"""

from __future__ import annotations

from octoroute.config import parse_config
from octoroute.observability.logging import configure_logging
from octoroute.server import serve
from octoroute.simulator import demo_fleet, fleet_config_toml


def examples(url: str) -> str:
    """Copy-pasteable ways to call the router at ``url``."""
    return f"""
octoroute demo is running at {url} (strategy and fleet: simulated, on this machine).

Ask it something; the answer says which tier and model served it:

  curl -s {url}/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{{"model": "auto", "messages": [{{"role": "user", "content": "hi there!"}}]}}'

  curl -sN {url}/v1/chat/completions -H 'Content-Type: application/json' \\
    -d '{{"model": "auto", "stream": true, "messages": [{{"role": "user", "content": "Prove that there are infinitely many primes."}}]}}'

See why a prompt goes where it goes, without generating:

  curl -s {url}/route -H 'Content-Type: application/json' \\
    -d '{{"model": "auto", "messages": [{{"role": "user", "content": "Design a rate limiter for a multi-region API"}}]}}'

Embed text with the embedding model (sim-embed; "auto" picks it too):

  curl -s {url}/v1/embeddings -H 'Content-Type: application/json' \\
    -d '{{"model": "sim-embed", "input": ["first document", "second document"]}}'

With the openai SDK (pip install openai):

  python3 -c "from openai import OpenAI; c = OpenAI(base_url='{url}/v1', api_key='none'); \\
print(c.chat.completions.create(model='auto', messages=[{{'role': 'user', 'content': 'Write a Python function that reverses a list'}}]).choices[0].message.content)"

What placement sees of each instance (the two fast replicas have 4 slots each: in_flight,
max_concurrent, the queue, affinity_share):

  curl -s {url}/models

Also: {url}/v1/models  {url}/health  {url}/metrics
Press Ctrl-C to stop.
"""


async def run_demo(*, port: int = 8080, strategy: str = "hybrid", log_level: str = "info") -> None:
    """Start the simulated fleet and the router; return after Ctrl-C (or SIGTERM)."""
    fleet = demo_fleet()
    async with fleet:
        config = parse_config(
            fleet_config_toml(fleet, strategy=strategy, host="127.0.0.1", port=port),
            source="<demo>",
        )
        configure_logging(log_level, config.observability.log_format)

        def ready(url: str) -> None:
            print(examples(url), flush=True)

        await serve(config, on_ready=ready)

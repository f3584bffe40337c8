"""Several simulated models started together, and the octoroute config that points at them.

``octoroute demo`` runs ``demo_fleet()`` and feeds ``fleet_config_toml(fleet)`` to the normal
config loader, so the demo exercises exactly the code path of a real deployment.
"""

from __future__ import annotations

import asyncio
import json
from typing import TYPE_CHECKING, Self

from octoroute.enums import TIERS, Tier
from octoroute.simulator.behaviour import Behaviour
from octoroute.simulator.server import SimulatedModel

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from types import TracebackType

_DEFAULT_MAX_TOKENS = {Tier.FAST: 2048, Tier.BALANCED: 4096, Tier.DEEP: 8192}


class SimulatedFleet:
    """The simulated models of the three tiers, and optionally embedding models (written as
    ``[[embeddings]]``); a model without a label is labelled by its tier, or ``embeddings``."""

    def __init__(
        self,
        *,
        fast: Sequence[SimulatedModel],
        balanced: Sequence[SimulatedModel],
        deep: Sequence[SimulatedModel],
        embeddings: Sequence[SimulatedModel] = (),
    ) -> None:
        self._tiers: dict[Tier, tuple[SimulatedModel, ...]] = {
            Tier.FAST: tuple(fast),
            Tier.BALANCED: tuple(balanced),
            Tier.DEEP: tuple(deep),
        }
        for tier, models in self._tiers.items():
            for model in models:
                model.label = model.label or tier.value
        self.embeddings: tuple[SimulatedModel, ...] = tuple(embeddings)
        """The embedding models, in config order."""
        for model in self.embeddings:
            model.label = model.label or "embeddings"

    @property
    def fast(self) -> tuple[SimulatedModel, ...]:
        """The fast tier's models."""
        return self._tiers[Tier.FAST]

    @property
    def balanced(self) -> tuple[SimulatedModel, ...]:
        """The balanced tier's models."""
        return self._tiers[Tier.BALANCED]

    @property
    def deep(self) -> tuple[SimulatedModel, ...]:
        """The deep tier's models."""
        return self._tiers[Tier.DEEP]

    def tier(self, tier: Tier | str) -> tuple[SimulatedModel, ...]:
        """The models of ``tier`` in config order."""
        return self._tiers[Tier(tier)]

    @property
    def models(self) -> tuple[SimulatedModel, ...]:
        """Every model, fast then balanced then deep, then the embedding models."""
        return self.fast + self.balanced + self.deep + self.embeddings

    async def start(self, host: str = "127.0.0.1") -> None:
        """Start every model on its own ephemeral port; on any failure none is left running."""
        try:
            async with asyncio.TaskGroup() as group:
                for model in self.models:
                    group.create_task(model.start(host))
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Stop every model (those not running are skipped)."""
        await asyncio.gather(*(model.stop() for model in self.models))

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.stop()


POOL_TIMINGS: dict[str, tuple[float, float, float]] = {
    "fast": (0.01, 0.05, 0.02),
    "balanced": (0.02, 0.15, 0.03),
    "deep": (0.03, 0.4, 0.05),
    "embeddings": (0.005, 0.0, 0.0),
}
"""Seconds of latency, to the first token and between tokens, for a model of each pool: bigger
is slower, as on real hardware (the demo's and ``octoroute simulate``'s timing)."""


def pool_behaviour(pool: str) -> Behaviour:
    """A fresh behaviour with :data:`POOL_TIMINGS`' timing for ``pool`` (a tier or
    ``embeddings``)."""
    latency, first_token, gap = POOL_TIMINGS[pool]
    return Behaviour(latency=latency, first_token_delay=first_token, token_gap=gap)


DEMO_SLOTS = 4
"""Requests each demo fast replica serves at once (and its ``max_concurrent``)."""


def _demo_fast(label: str) -> SimulatedModel:
    behaviour = pool_behaviour("fast")
    behaviour.slots = DEMO_SLOTS
    keys: dict[str, object] = {"max_concurrent": DEMO_SLOTS}
    return SimulatedModel("sim-llama-8b", label=label, behaviour=behaviour, config_keys=keys)


def demo_fleet() -> SimulatedFleet:
    """The built-in fleet of ``octoroute demo``, with realistic timing (bigger is slower).

    Two ``sim-llama-8b`` replicas (one name, two ports, labelled ``fast #1``/``fast #2`` so the
    demo shows load balancing), ``sim-qwen-32b`` (balanced, which also answers the LLM router's
    prompts), ``sim-gpt-oss-120b`` (deep) and the embedding model ``sim-embed``. The fast
    replicas serve 4 requests at once and are configured with ``max_concurrent = 4``, so
    ``/models`` shows their slots and a burst of requests queues in the router. They keep the
    default ``kind`` (``openai``): another kind would change what the router's Ollama
    ``/api/ps`` lists, which the client recipes show empty.
    """
    return SimulatedFleet(
        fast=[_demo_fast("fast #1"), _demo_fast("fast #2")],
        balanced=[
            SimulatedModel("sim-qwen-32b", behaviour=pool_behaviour("balanced")),
        ],
        deep=[
            SimulatedModel("sim-gpt-oss-120b", behaviour=pool_behaviour("deep")),
        ],
        embeddings=[
            SimulatedModel("sim-embed", behaviour=pool_behaviour("embeddings")),
        ],
    )


def _toml_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        # A JSON string is a valid TOML basic string (same escapes, \uXXXX included).
        return json.dumps(value)
    if isinstance(value, list | tuple):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"cannot write {value!r} as a TOML value")


def fleet_config_toml(
    fleet: SimulatedFleet,
    *,
    strategy: str = "hybrid",
    host: str = "127.0.0.1",
    port: int = 0,
    router_tier: str = "balanced",
    default_importance: str | None = None,
    request_timeout_seconds: float | None = None,
    health_interval_seconds: float | None = None,
    routing: Mapping[str, object] | None = None,
    extra: str = "",
) -> str:
    """A valid octoroute TOML config whose endpoints are the fleet's (started) models.

    Each model's ``config_keys`` are written into its endpoint table, so a test can give one
    replica ``priority = 2``. ``routing`` adds keys to ``[routing]`` (``placement = "static"``,
    ``prewarm = true``). ``extra`` is appended verbatim for any other section (not one
    this function already wrote: TOML forbids defining a table twice).
    """
    lines = ["# Generated by octoroute.simulator.fleet_config_toml.", "[server]"]
    lines += [f"host = {_toml_value(host)}", f"port = {port}"]
    if request_timeout_seconds is not None:
        lines.append(f"request_timeout_seconds = {_toml_value(request_timeout_seconds)}")
    for tier in TIERS:
        for model in fleet.tier(tier):
            keys: dict[str, object] = {
                "name": model.name,
                "base_url": model.base_url,
                "max_tokens": _DEFAULT_MAX_TOKENS[tier],
            }
            keys.update(model.config_keys)
            lines += ["", f"[[models.{tier.value}]]"]
            lines += [f"{key} = {_toml_value(value)}" for key, value in keys.items()]
    for model in fleet.embeddings:
        keys = {"name": model.name, "base_url": model.base_url, **model.config_keys}
        lines += ["", "[[embeddings]]"]
        lines += [f"{key} = {_toml_value(value)}" for key, value in keys.items()]
    lines += ["", "[routing]", f"strategy = {_toml_value(strategy)}"]
    lines.append(f"router_tier = {_toml_value(router_tier)}")
    if default_importance is not None:
        lines.append(f"default_importance = {_toml_value(default_importance)}")
    lines += [f"{key} = {_toml_value(value)}" for key, value in (routing or {}).items()]
    if health_interval_seconds is not None:
        lines += ["", "[health]", f"interval_seconds = {_toml_value(health_interval_seconds)}"]
    text = "\n".join(lines) + "\n"
    return text + ("\n" + extra.strip() + "\n" if extra.strip() else "")

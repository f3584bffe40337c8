"""The closed vocabularies shared by config, routing, fleet and the API.

They are ``StrEnum``s so that their values are exactly the lowercase strings that appear in
TOML, JSON bodies, headers and metric labels; nothing needs a translation table.
"""

from collections.abc import Mapping
from enum import StrEnum
from types import MappingProxyType


class Tier(StrEnum):
    """A model size class. Order matters: it is the order of cost, cheapest first."""

    FAST = "fast"
    BALANCED = "balanced"
    DEEP = "deep"


TIERS: tuple[Tier, ...] = (Tier.FAST, Tier.BALANCED, Tier.DEEP)
"""Every tier, cheapest first: the order used for config walks, listings and metrics."""


class Pool(StrEnum):
    """A group of endpoints the fleet balances within: the three tiers, plus the embedding models.

    Distinct from ``Tier`` so that routing, ``router_tier`` and ``default_tier`` can never name
    the embedding models (nothing generates text there), while everything that only needs a
    group (endpoint ids such as ``embeddings[0]``, the ``tier`` metric label, health, selection,
    the forwarder's accounting) treats the four alike. Values are the tiers' strings, plus
    ``embeddings``.
    """

    FAST = "fast"
    BALANCED = "balanced"
    DEEP = "deep"
    EMBEDDINGS = "embeddings"


POOLS: tuple[Pool, ...] = (Pool.FAST, Pool.BALANCED, Pool.DEEP, Pool.EMBEDDINGS)
"""Every pool: the tiers cheapest first, then the embedding models."""

TIER_POOLS: Mapping[Tier, Pool] = MappingProxyType({tier: Pool(tier.value) for tier in TIERS})
"""The pool holding each tier's endpoints."""


class Importance(StrEnum):
    """How much the caller cares about quality over cost for one request."""

    LOW = "low"
    NORMAL = "normal"
    HIGH = "high"


class TaskType(StrEnum):
    """What kind of work a request asks for; v1's six categories."""

    CASUAL_CHAT = "casual_chat"
    CODE = "code"
    CREATIVE_WRITING = "creative_writing"
    DEEP_ANALYSIS = "deep_analysis"
    DOCUMENT_SUMMARY = "document_summary"
    QUESTION_ANSWER = "question_answer"


class Strategy(StrEnum):
    """How ``model: auto`` requests are routed (``routing.strategy``)."""

    RULE = "rule"
    LLM = "llm"
    HYBRID = "hybrid"
    LEARNED = "learned"


class DecisionSource(StrEnum):
    """Who made a routing decision: reported in ``x-octoroute-strategy`` and metric labels.

    Never ``hybrid``: a hybrid router reports whichever of its halves decided.
    """

    RULE = "rule"
    LLM = "llm"
    DIRECT = "direct"
    LEARNED = "learned"


class LogFormat(StrEnum):
    """The shape of log lines on stderr."""

    TEXT = "text"
    JSON = "json"


class Native(StrEnum):
    """A protocol an endpoint's server speaks itself (its ``native`` list): requests in that
    protocol are passed through with only ``model`` replaced instead of being translated to chat
    completions (``ollama``: Ollama's ``/api/chat``, ``/api/generate``, ``/api/embed`` and
    ``/api/embeddings``, sent to the server's root, ``base_url`` without its ``/v1``)."""

    RESPONSES = "responses"
    MESSAGES = "messages"
    OLLAMA = "ollama"


class Kind(StrEnum):
    """The kind of server behind an endpoint (its ``kind``): what its status endpoints say
    beyond the OpenAI API (which models are loaded, context length, slots, queue), read by the
    prober's per-kind readers in ``fleet.kinds``. ``openai`` learns nothing beyond health."""

    OPENAI = "openai"
    OLLAMA = "ollama"
    LLAMACPP = "llamacpp"
    VLLM = "vllm"


class Placement(StrEnum):
    """How an instance of a tier is chosen (``routing.placement``)."""

    FLEET = "fleet"
    """Fleet-aware: slots and queueing, least outstanding requests, warm models first, context
    windows and conversation affinity."""
    STATIC = "static"
    """v1's selection: healthy instances of the best priority, drawn by weight, nothing else
    (no slot limits, queue, context check, warm preference or affinity). For comparison."""


class Overflow(StrEnum):
    """What a routed request does when its tier is full (``routing.overflow``)."""

    OFF = "off"
    """Wait in the tier's queue."""
    UP = "up"
    """After ``overflow_after_ms`` in the queue, go one tier up if that tier has room."""


class Compat(StrEnum):
    """A rewrite for a server that rejects a newer chat field (an endpoint's ``compat`` list),
    applied to that endpoint's requests only; with none, bodies are forwarded byte-faithful."""

    DEVELOPER_TO_SYSTEM = "developer_to_system"
    """Messages with role ``developer`` are sent as ``system`` (Qwen/Llama chat templates on
    vLLM and Ollama reject the role: "Unexpected message role")."""
    MAX_COMPLETION_TOKENS_TO_MAX_TOKENS = "max_completion_tokens_to_max_tokens"
    """``max_completion_tokens`` is sent as ``max_tokens`` (Ollama's and LM Studio's OpenAI
    layers honour only ``max_tokens``; strict vLLM builds reject the newer name)."""
    STRIP_STREAM_OPTIONS = "strip_stream_options"
    """``stream_options`` is left out (older servers answer 400 to it)."""

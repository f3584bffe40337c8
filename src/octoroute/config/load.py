"""Read a TOML file into a validated ``Config``, or explain everything that is wrong with it.

The schema is v1's (``octoroute-v1.md`` §1.2) plus the optional keys of ``contract.md`` §2. Every
table is walked with a ``Table`` reader, so one run reports every problem of the file, each
prefixed by its key path; a ``Config`` exists only when there was none. Reading the file and the
TOML syntax fail first, on their own, because nothing can be checked before they succeed.

The environment is read here (``api_key_env``, resolved in ``endpoints``) and nowhere else in the
library.
"""

from __future__ import annotations

import ast
import hashlib
import os
import re
import shlex
import tomllib
from pathlib import Path
from typing import TYPE_CHECKING, Final, Literal

import msgspec

from octoroute.config import rules
from octoroute.config.aliases import Targets, check_aliases
from octoroute.config.auth import check_auth, servable
from octoroute.config.cors import check_cors_origins
from octoroute.config.endpoints import check_embeddings, check_models
from octoroute.config.hosts import check_allowed_hosts
from octoroute.config.reader import Problems, Table
from octoroute.config.schema import (
    DEFAULT_CONFIDENCE_THRESHOLD,
    DEFAULT_STREAM_KEEPALIVE_SECONDS,
    AuthConfig,
    Config,
    EndpointConfig,
    HealthConfig,
    LimitsConfig,
    ModelsConfig,
    ObservabilityConfig,
    RoutingConfig,
    ServerConfig,
    TierSeconds,
    TimeoutsConfig,
)
from octoroute.config.state import check_state
from octoroute.config.ui import check_ui
from octoroute.enums import TIERS, Importance, LogFormat, Overflow, Placement, Strategy, Tier
from octoroute.routing.model_file import ModelFileError, read_model_file, shipped_model_path

if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence

MAX_REQUEST_BYTES_LIMIT: Final = 1024**3
"""A request body limit above 1 GiB would let one client exhaust the router's memory."""
MAX_IN_FLIGHT_LIMIT: Final = 1_000_000
MAX_UPSTREAM_BYTES_LIMIT: Final = 4 * 1024**3
RESPONSES_STORE_LIMIT: Final = 1_000_000
"""More stored responses than this is a typo: each one holds a whole conversation in memory."""
"""Upstream answer and event limits: above 4 GiB a limit no longer protects anything."""
MAX_QUEUE_LIMIT: Final = 1_000_000
"""Each waiting request holds a connection and a handler: more than this is a typo."""
QUEUE_TIMEOUT_LIMIT: Final = 3600
OVERFLOW_AFTER_LIMIT_MS: Final = 3_600_000
MAX_WORKERS: Final = 1024
"""More server processes than this is a typo: each is a whole router with its own pool."""

BYTE_ORDER_MARK: Final = "\ufeff"
"""What a file saved as "UTF-8 with BOM" starts with; tomllib refuses it, so it is skipped."""

_OBSERVABILITY_HINTS: Final = {
    "metrics_enabled": "metrics are always served at GET /metrics; remove this key",
    "metrics_port": "metrics are served on the server port at GET /metrics; remove this key",
}
_TOML_POSITION = re.compile(
    r"(?P<message>.*) \(at (?:line (?P<line>\d+), column (?P<column>\d+)|end of document)\)"
)
_TOML_DECLARED_TWICE = re.compile(r"Cannot declare \((?P<keys>.*)\) twice")
_TOML_HINTS: Final = {
    "Invalid value": "is a string missing its double quotes?",
    "Cannot overwrite a value": "is a key set twice?",
}


class ConfigError(Exception):
    """The configuration cannot be used: the file is unreadable, is not TOML, or breaks a rule.

    ``source`` is the file path (``'<string>'`` for ``parse_config`` text) and ``problems`` holds
    one line per problem, each ``'key.path: message'``. Raised for every problem we can foresee,
    so callers print ``str(error)`` and never a traceback.
    """

    def __init__(self, source: str, problems: Sequence[str], *, file_level: bool = False) -> None:
        self.source = source
        self.problems: tuple[str, ...] = tuple(problems)
        self.file_level = file_level
        """True when the file could not be read or parsed, so there is one problem without a key."""
        super().__init__(source, self.problems)

    def __str__(self) -> str:
        if self.file_level and len(self.problems) == 1:
            return f"{self.source}: {self.problems[0]}"
        count = len(self.problems)
        noun = "problem" if count == 1 else "problems"
        return "\n".join([f"{self.source}: {count} {noun}", *(f"  {p}" for p in self.problems)])


def load_config(
    path: str | os.PathLike[str], *, environ: Mapping[str, str] | None = None
) -> Config:
    """The validated configuration in the TOML file ``path``; ``Config.source`` is ``path``.

    ``environ`` (default ``os.environ``) resolves ``api_key_env``. Raises ``ConfigError``.
    """
    source = os.fspath(path)
    return parse_config(read_config_file(source), source=source, environ=environ)


def parse_config(
    text: str, *, source: str = "<string>", environ: Mapping[str, str] | None = None
) -> Config:
    """The validated configuration in TOML ``text``; ``source`` names it in messages.

    ``environ`` (default ``os.environ``) resolves ``api_key_env``. Raises ``ConfigError`` listing
    every problem at once. A leading UTF-8 byte-order mark (Windows editors write one) is
    skipped, as most TOML tools do; ``Config.digest`` still covers the text as given, so it
    matches the file's bytes.
    """
    toml = text.removeprefix(BYTE_ORDER_MARK)
    try:
        data = tomllib.loads(toml)
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(source, [_toml_problem(str(error), toml)], file_level=True) from None
    except ValueError:
        # tomllib lets int()'s digit-count guard (CVE-2020-10735) escape as a bare ValueError.
        problem = "invalid TOML: an integer has more digits than any setting could need"
        raise ConfigError(source, [problem], file_level=True) from None
    except RecursionError:
        # tomllib parses nested arrays and inline tables recursively (a few thousand ``[``).
        problem = "invalid TOML: arrays or inline tables nested too deeply to read"
        raise ConfigError(source, [problem], file_level=True) from None
    problems = Problems()
    config = _config(Table(problems, data, ""), source, os.environ if environ is None else environ)
    if problems.items or config is None:
        raise ConfigError(source, problems.items)
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()
    return msgspec.structs.replace(config, digest=digest)


def read_config_file(source: str) -> str:
    """The text of the file ``source``, or a ``ConfigError`` saying what to check (what
    :func:`load_config` reads; a reload reads it once for both the checks and its digest)."""
    try:
        data = Path(source).read_bytes()
    except FileNotFoundError:
        raise ConfigError(source, [_not_found(source)], file_level=True) from None
    except IsADirectoryError:
        message = (
            f"is a directory; give the path of a TOML file, e.g. --config {source}/config.toml"
        )
        raise ConfigError(source, [message], file_level=True) from None
    except PermissionError:
        message = (
            "permission denied; check that the user running octoroute can read the file "
            "(chmod +r) and enter each parent directory (chmod +x)"
        )
        raise ConfigError(source, [message], file_level=True) from None
    except OSError as error:
        raise ConfigError(
            source, [f"cannot read the file: {error.strerror}"], file_level=True
        ) from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        line = data[: error.start].count(b"\n") + 1
        message = f"is not UTF-8 text (invalid byte at line {line}); TOML files must be UTF-8"
        raise ConfigError(source, [message], file_level=True) from None


def _not_found(source: str) -> str:
    """Where we looked, and how to get a file there."""
    where = "" if os.path.isabs(source) else f" (relative to the working directory {os.getcwd()})"
    command = f"octoroute config -o {shlex.quote(source)}"
    return f"file not found{where}; check the path, or create the file with: {command}"


def _toml_problem(message: str, text: str) -> str:
    """tomllib's message reworded as 'invalid TOML at line L, column C: ...'."""
    match = _TOML_POSITION.fullmatch(message)
    if match is None:
        return f"invalid TOML: {message}"
    what = match["message"]
    if declared := _TOML_DECLARED_TWICE.fullmatch(what):
        what = f"table [{_dotted(declared['keys'])}] is declared twice"
    hint = _TOML_HINTS.get(what)
    detail = what[:1].lower() + what[1:] + (f" ({hint})" if hint else "")
    if match["line"] is None:
        last_line = text.count("\n") + 1
        return f"invalid TOML at the end of the file (line {last_line}): {detail}"
    return f"invalid TOML at line {match['line']}, column {match['column']}: {detail}"


def _dotted(keys: str) -> str:
    """``'a', 'b'`` (a Python tuple's inside, as tomllib prints it) as the TOML header ``a.b``."""
    try:
        parts = ast.literal_eval(f"({keys})")
    except (ValueError, SyntaxError):
        return keys
    return ".".join(parts) if isinstance(parts, tuple) else str(parts)


def _config(root: Table, source: str, environ: Mapping[str, str]) -> Config | None:
    """Every section checked, in schema order; ``None`` when any has a problem."""
    server = _server(root)
    models = check_models(root, environ)
    chat_names = () if models is None else tuple(e.name for e in models.all())
    embeddings = check_embeddings(root, environ, chat_names)
    routing = _routing(root, source)
    observability = _observability(root)
    timeouts = _timeouts(root)
    health = _health(root)
    limits = _limits(root)
    # Checked even when the fleet is not: what can be known about [aliases] is still reported,
    # and the table is read, so the root does not call it an unknown key.
    aliases = check_aliases(
        root,
        Targets.unknown() if models is None or embeddings is None else _targets(models, embeddings),
    )
    auth = check_auth(
        root,
        environ,
        None
        if models is None or embeddings is None or aliases is None
        else servable(models, embeddings, aliases),
    )
    state = check_state(root, environ)
    ui = check_ui(root)
    root.close()
    if auth is None or state is None or ui is None:
        return None
    if (
        server is None
        or models is None
        or embeddings is None
        or routing is None
        or observability is None
        or timeouts is None
        or health is None
        or limits is None
        or aliases is None
    ):
        return None
    return Config(
        server=server,
        models=models,
        routing=routing,
        observability=observability,
        timeouts=timeouts,
        health=health,
        limits=limits,
        embeddings=embeddings,
        aliases=aliases,
        auth=auth if isinstance(auth, AuthConfig) else None,
        state=state,
        ui=ui,
        source=source,
    )


def _targets(models: ModelsConfig, embeddings: tuple[EndpointConfig, ...]) -> Targets:
    """What ``[aliases]`` may name: ``auto``, the tiers, every endpoint name and every
    embedding model."""
    if not embeddings:
        return Targets(endpoints=(endpoint.name for endpoint in models.all()))
    return Targets(
        endpoints=(endpoint.name for endpoint in models.all()),
        embedding_models=(endpoint.name for endpoint in embeddings),
    )


def _server(root: Table) -> ServerConfig | None:
    """``[server]``: where to listen, the request-wide timeout and the body size limit."""
    table = root.table("server", required=True)
    if table is None:
        return None
    host = table.string("host")
    if host is not None and (problem := rules.host_problem(host)):
        table.fail("host", problem)
        host = None
    port = table.integer("port", low=0, high=65535)
    timeout = table.number(
        "request_timeout_seconds", 30.0, bounds="a number of seconds from 1 to 300", low=1, high=300
    )
    max_bytes = table.integer(
        "max_request_bytes", 8 * 1024 * 1024, low=1024, high=MAX_REQUEST_BYTES_LIMIT
    )
    max_in_flight = table.integer("max_in_flight", 1024, low=1, high=MAX_IN_FLIGHT_LIMIT)
    header_timeout = table.number(
        "client_header_timeout_seconds", 10.0, bounds="a number of seconds from 0.1 to 3600",
        low=0.1, high=3600,
    )  # fmt: skip
    keepalive = table.number(
        "keepalive_idle_seconds", 75.0, bounds="a number of seconds from 0.1 to 3600",
        low=0.1, high=3600,
    )  # fmt: skip
    stream_keepalive = table.number(
        "stream_keepalive_seconds", DEFAULT_STREAM_KEEPALIVE_SECONDS,
        bounds="a positive number of seconds, at most 3600", low=0, high=3600, low_open=True,
    )  # fmt: skip
    cors_origins = check_cors_origins(table)
    allowed_hosts = check_allowed_hosts(table)
    workers = table.integer("workers", 1, low=1, high=MAX_WORKERS)
    watch_config = table.boolean("watch_config", False)
    table.close()
    if (
        cors_origins is None
        or allowed_hosts is None
        or workers is None
        or watch_config is None
        or host is None
        or port is None
        or timeout is None
        or max_bytes is None
        or max_in_flight is None
        or header_timeout is None
        or keepalive is None
        or stream_keepalive is None
    ):
        return None
    return ServerConfig(
        host=host,
        port=port,
        request_timeout_seconds=timeout,
        max_request_bytes=max_bytes,
        max_in_flight=max_in_flight,
        client_header_timeout_seconds=header_timeout,
        keepalive_idle_seconds=keepalive,
        stream_keepalive_seconds=stream_keepalive,
        cors_origins=cors_origins,
        allowed_hosts=allowed_hosts,
        workers=workers,
        watch_config=watch_config,
    )


def _routing(root: Table, source: str) -> RoutingConfig | None:
    """``[routing]``: the strategy, the tiers it falls back on and the learned model."""
    table = root.table("routing", required=True)
    if table is None:
        return None
    strategy = table.choice(
        "strategy",
        Strategy,
        rejected={
            "tool": "'tool' routing is not implemented; use 'rule', 'learned', 'llm' or 'hybrid'"
        },
    )
    importance = table.choice(
        "default_importance",
        Importance,
        Importance.NORMAL,
        rejected={
            "critical": "'critical' is not an importance level (v1's template listed it, but v1 "
            "rejected it too); use 'low', 'normal' or 'high'"
        },
    )
    router_tier = table.choice("router_tier", Tier, Tier.BALANCED)
    default_tier = table.choice("default_tier", Tier, Tier.BALANCED)
    router_timeouts = _router_timeouts(table)
    placement = table.choice("placement", Placement, Placement.FLEET)
    overflow = table.choice("overflow", Overflow, Overflow.OFF)
    overflow_after = table.integer("overflow_after_ms", 1000, low=0, high=OVERFLOW_AFTER_LIMIT_MS)
    cold_after = table.integer("cold_after_ms", 10_000, low=0, high=OVERFLOW_AFTER_LIMIT_MS)
    prewarm = table.boolean("prewarm", False)
    affinity = table.boolean("affinity", True)
    imbalance = table.number(
        "affinity_imbalance", 2.0, bounds="a number of requests of at least 0", low=0
    )
    model_file = _model_file(table, source)
    if model_file is None and strategy in (Strategy.LEARNED, Strategy.HYBRID):
        try:
            read_model_file(shipped_model_path())
        except ModelFileError as error:
            table.fail(
                "strategy",
                f"the learned model shipped with octoroute cannot be used ({error}); reinstall "
                "octoroute, or set model_file to a model trained with `octoroute train`",
            )
            strategy = None
    threshold = table.number(
        "confidence_threshold", DEFAULT_CONFIDENCE_THRESHOLD, bounds="a probability from 0 to 1",
        low=0, high=1,
    )  # fmt: skip
    table.close()
    if (
        strategy is None
        or importance is None
        or router_tier is None
        or default_tier is None
        or router_timeouts is None
        or placement is None
        or overflow is None
        or overflow_after is None
        or cold_after is None
        or prewarm is None
        or affinity is None
        or imbalance is None
        or model_file is False
        or threshold is None
    ):
        return None
    return RoutingConfig(
        strategy=strategy,
        default_importance=importance,
        router_tier=router_tier,
        default_tier=default_tier,
        router_timeouts=router_timeouts,
        placement=placement,
        overflow=overflow,
        overflow_after_ms=overflow_after,
        cold_after_ms=cold_after,
        prewarm=prewarm,
        affinity=affinity,
        affinity_imbalance=imbalance,
        model_file=model_file,
        confidence_threshold=threshold,
    )


def _model_file(table: Table, source: str) -> str | Literal[False] | None:
    """``model_file``: resolved against the config file's folder and read now, so a missing,
    corrupt or mismatched model is a line of this report (``False``), not a start-up crash."""
    given = table.string("model_file", None)
    if given is None:
        return False if "model_file" in table.data else None
    if not given.strip():
        table.fail("model_file", "is empty; remove the key to use the model shipped with octoroute")
        return False
    path = Path(given).expanduser()
    if not path.is_absolute() and source != "<string>":
        path = Path(source).resolve().parent / path
    path = Path(os.path.abspath(path))
    try:
        read_model_file(path)
    except ModelFileError as error:
        table.fail("model_file", str(error))
        return False
    return str(path)


def _router_timeouts(routing: Table) -> TierSeconds | None:
    """``[routing.router_timeouts]``: how long the router model may answer; tiers may be absent."""
    table = routing.table("router_timeouts")
    if table is None:
        return None
    seconds = [
        table.number(tier.value, 10.0, bounds="a positive number of seconds", low=0, low_open=True)
        for tier in TIERS
    ]
    table.close()
    fast, balanced, deep = seconds
    if fast is None or balanced is None or deep is None:
        return None
    return TierSeconds(fast=fast, balanced=balanced, deep=deep)


def _observability(root: Table) -> ObservabilityConfig | None:
    """``[observability]``: log level and format."""
    table = root.table("observability", hints=_OBSERVABILITY_HINTS)
    if table is None:
        return None
    level = table.string("log_level", "info")
    canonical = None if level is None else rules.normalize_log_level(level)
    if level is not None and canonical is None:
        table.fail("log_level", rules.log_level_problem(level))
    log_format = table.choice("log_format", LogFormat, LogFormat.TEXT)
    table.close()
    if canonical is None or log_format is None:
        return None
    return ObservabilityConfig(log_level=canonical, log_format=log_format)


def _timeouts(root: Table) -> TimeoutsConfig | None:
    """``[timeouts]``: optional per-tier (and embeddings) overrides of
    ``server.request_timeout_seconds``."""
    table = root.table("timeouts")
    if table is None:
        return None
    bounds = "a number of seconds from 1 to 300"
    seconds = {
        tier: table.number(tier.value, None, bounds=bounds, low=1, high=300) for tier in TIERS
    }
    embeddings = table.number("embeddings", None, bounds=bounds, low=1, high=300)
    stream_total = table.number(
        "stream_total_seconds", None, bounds="a positive number of seconds", low=0, low_open=True
    )
    table.close()
    if any(tier.value in table.data and seconds[tier] is None for tier in TIERS):
        return None
    if "stream_total_seconds" in table.data and stream_total is None:
        return None
    if "embeddings" in table.data and embeddings is None:
        return None
    return TimeoutsConfig(
        fast=seconds[Tier.FAST],
        balanced=seconds[Tier.BALANCED],
        deep=seconds[Tier.DEEP],
        embeddings=embeddings,
        stream_total_seconds=stream_total,
    )


def _health(root: Table) -> HealthConfig | None:
    """``[health]``: how often endpoints are probed and when one counts as down."""
    table = root.table("health")
    if table is None:
        return None
    interval = table.number(
        "interval_seconds", 30.0, bounds="a number of seconds of at least 0.1", low=0.1
    )
    threshold = table.integer("failure_threshold", 3, low=1)
    probe_timeout = table.number(
        "probe_timeout_seconds", 5.0, bounds="a positive number of seconds", low=0, low_open=True
    )
    eject_after = table.integer("eject_after_failures", 3, low=1)
    positive = "a positive number of seconds"
    eject_base = table.number("eject_base_seconds", 30.0, bounds=positive, low=0, low_open=True)
    eject_max = table.number("eject_max_seconds", 300.0, bounds=positive, low=0, low_open=True)
    if eject_base is not None and eject_max is not None and eject_max < eject_base:
        table.fail(
            "eject_max_seconds",
            f"must be at least eject_base_seconds ({eject_base:g}), got {eject_max:g}",
        )
        eject_max = None
    table.close()
    if (
        interval is None
        or threshold is None
        or probe_timeout is None
        or eject_after is None
        or eject_base is None
        or eject_max is None
    ):
        return None
    return HealthConfig(
        interval_seconds=interval,
        failure_threshold=threshold,
        probe_timeout_seconds=probe_timeout,
        eject_after_failures=eject_after,
        eject_base_seconds=eject_base,
        eject_max_seconds=eject_max,
    )


def _limits(root: Table) -> LimitsConfig | None:
    """``[limits]``: bounds on one chat request's conversation and on upstream answers."""
    table = root.table("limits")
    if table is None:
        return None
    max_messages = table.integer("max_messages", 2048, low=1)
    max_chars = table.integer("max_content_chars", 2_000_000, low=1)
    max_response = table.integer(
        "max_response_bytes", 64 * 1024 * 1024, low=1024, high=MAX_UPSTREAM_BYTES_LIMIT
    )
    max_event = table.integer(
        "max_event_bytes", 4 * 1024 * 1024, low=1024, high=MAX_UPSTREAM_BYTES_LIMIT
    )
    responses_store = table.integer("responses_store", 1000, low=0, high=RESPONSES_STORE_LIMIT)
    queue_timeout = table.number(
        "queue_timeout_seconds", 30.0, bounds=f"a number of seconds from 0 to {QUEUE_TIMEOUT_LIMIT}",
        low=0, high=QUEUE_TIMEOUT_LIMIT,
    )  # fmt: skip
    max_queue = table.integer("max_queue", 256, low=0, high=MAX_QUEUE_LIMIT)
    table.close()
    if (
        max_messages is None
        or max_chars is None
        or max_response is None
        or max_event is None
        or responses_store is None
        or queue_timeout is None
        or max_queue is None
    ):
        return None
    return LimitsConfig(
        max_messages=max_messages,
        max_content_chars=max_chars,
        max_response_bytes=max_response,
        max_event_bytes=max_event,
        responses_store=responses_store,
        queue_timeout_seconds=queue_timeout,
        max_queue=max_queue,
    )

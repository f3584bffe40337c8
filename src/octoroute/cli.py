"""The ``octoroute`` command: argument parsing and hand-off, no logic of its own.

``octoroute`` alone (or ``octoroute serve``) runs the server; ``config`` writes a template,
``check`` validates a file, ``simulate`` serves simulated models at a file's local endpoints,
``demo`` runs the router in front of a simulated fleet, ``eval`` measures routing quality on a
labelled set, ``train`` fits the learned router to one, ``key new`` makes a client key for
``[auth]``. Heavy modules (aiohttp) are imported only by the subcommands that need them, so
``--version``, ``config``, ``check`` and ``key`` answer instantly.

Configuration problems are printed to stderr with exit code 2, never as a traceback. ``check``
exits 1 for a valid file that cannot serve as it is: a placeholder host left from the template,
or (with ``--probe``) an endpoint that does not answer or does not serve its model.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Coroutine, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from octoroute import __version__

if TYPE_CHECKING:
    from octoroute.config import Config
    from octoroute.config.overrides import Overrides
    from octoroute.observability.tracing import Tracing, TracingSettings
    from octoroute.workers import WorkerSpec

DEFAULT_CONFIG: Final = "config.toml"
LOG_ENV: Final = "OCTOROUTE_LOG"
EXIT_CONFIG_ERROR: Final = 2
EXIT_NOT_READY: Final = 1
"""``check``: the file is valid but names a placeholder host, or ``--probe`` found a problem."""


def _serve_options(parser: argparse.ArgumentParser, *, suppress: bool) -> None:
    default: Any = argparse.SUPPRESS if suppress else None
    parser.add_argument(
        "-c",
        "--config",
        default=argparse.SUPPRESS if suppress else DEFAULT_CONFIG,
        help=f"configuration file (default: ./{DEFAULT_CONFIG})",
    )
    parser.add_argument("--host", default=default, help="listen address (overrides the file)")
    parser.add_argument(
        "--port", type=int, default=default, help="listen port (overrides the file)"
    )
    parser.add_argument(
        "--log-level",
        default=default,
        help=f"debug, info, warning or error (overrides ${LOG_ENV} and the file)",
    )


def build_parser() -> argparse.ArgumentParser:
    """The argument parser for every subcommand."""
    parser = argparse.ArgumentParser(
        prog="octoroute",
        description="An OpenAI-compatible router that sends each request to the cheapest "
        "model tier of your own LLM fleet that will answer it well.",
    )
    parser.add_argument("--version", action="version", version=f"octoroute {__version__}")
    _serve_options(parser, suppress=False)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    serve = commands.add_parser("serve", help="run the router (the default command)")
    _serve_options(serve, suppress=True)
    serve.add_argument(
        "--workers",
        type=int,
        default=None,
        help="server processes sharing the port (SO_REUSEPORT); default: [server] workers, 1",
    )

    config = commands.add_parser("config", help="print or write a commented config template")
    config.add_argument("-o", "--output", help="write to this file (never overwrites)")

    check = commands.add_parser(
        "check",
        help="validate a config file and summarise it",
        description="Validate a config file and summarise it. Exit code 2: the file is invalid; "
        "1: it is valid but names a placeholder host (or, with --probe, an endpoint is "
        "unreachable or does not serve its model); 0: ready.",
    )
    check.add_argument("-c", "--config", default=argparse.SUPPRESS, help="file to check")
    check.add_argument(
        "--probe",
        action="store_true",
        help="also reach every endpoint: list its models, check its name, suggest its kind "
        "(exit 1 if one is unreachable or does not serve its model)",
    )

    simulate = commands.add_parser(
        "simulate",
        help="serve simulated models at every 127.0.0.1/localhost endpoint of a config",
        description="Serve simulated models at every endpoint of the file on this machine "
        "(127.0.0.1, ::1, localhost), so the router can run on the file before it points at "
        "real servers. Other endpoints are listed as not simulated. Ctrl-C stops.",
    )
    simulate.add_argument("-c", "--config", default=argparse.SUPPRESS, help="config file")

    demo = commands.add_parser("demo", help="run the router in front of a simulated fleet")
    demo.add_argument("--port", type=int, default=8080, help="router port (default 8080)")
    demo.add_argument("--strategy", choices=STRATEGIES, default="learned", help="routing strategy")
    demo.add_argument("--log-level", default=argparse.SUPPRESS, help="log level (default info)")

    key = commands.add_parser("key", help="make client keys for [auth]")
    key_commands = key.add_subparsers(dest="key_command", metavar="ACTION", required=True)
    key_new = key_commands.add_parser(
        "new", help="print a fresh client key once, and the TOML lines (with its hash) to paste"
    )
    key_new.add_argument("name", help="the key's name, as logs and metrics will show it")
    key_new.add_argument(
        "--admin", action="store_true", help="let it use /metrics, /models, /route, /admin/*"
    )

    evaluate = commands.add_parser("eval", help="measure routing quality on a labelled set")
    evaluate.add_argument("dataset", nargs="+", help="JSONL files of labelled requests")
    evaluate.add_argument("-c", "--config", default=argparse.SUPPRESS, help="config file")
    evaluate.add_argument("--strategy", choices=STRATEGIES, help="override routing.strategy")
    evaluate.add_argument(
        "--cv",
        type=int,
        metavar="K",
        help="cross-validate the learned strategy on the datasets with K folds (no config "
        "needed): each fold is decided by a model trained on the others",
    )
    evaluate.add_argument(
        "--by",
        action="append",
        default=[],
        metavar="FIELD",
        help="also report per value of a row field (lang, category, file...); repeatable",
    )

    fit = commands.add_parser(
        "train", help="train the learned router on labelled sets and write a model file"
    )
    fit.add_argument("dataset", nargs="+", help="JSONL files of labelled requests")
    fit.add_argument(
        "-o", "--output", required=True, help="model file to write (.json or .json.gz)"
    )
    fit.add_argument("--folds", type=int, default=5, help="cross-validation folds (default 5)")
    fit.add_argument("--seed", type=int, default=0, help="seed of the fold split and the fit")
    fit.add_argument(
        "--under-cost",
        type=float,
        help="cost of routing balanced when deep was right, against 1 for one tier too pricey "
        "(default 3)",
    )
    fit.add_argument(
        "--fast-under-cost",
        type=float,
        help="cost of routing fast when balanced was right (default 1.5); fast when deep was "
        "right costs the two under-costs together",
    )
    fit.add_argument(
        "--group-by",
        metavar="FIELD",
        help="also cross-validate holding out each value of FIELD in turn (file: each input file)",
    )
    return parser


STRATEGIES: Final = ("rule", "learned", "hybrid", "llm")


def _fail(message: str) -> int:
    print(message, file=sys.stderr)
    return EXIT_CONFIG_ERROR


def _run(coro: Coroutine[Any, Any, None]) -> None:
    try:
        import uvloop
    except ImportError:  # pragma: no cover - uvloop is a dependency except on Windows
        asyncio.run(coro)
    else:
        uvloop.run(coro)


def _cmd_config(args: argparse.Namespace) -> int:
    from octoroute.config.template import TEMPLATE

    if args.output is None:
        sys.stdout.write(TEMPLATE)
        return 0
    path = Path(args.output)
    try:
        with path.open("x", encoding="utf-8") as out:
            out.write(TEMPLATE)
    except FileExistsError:
        return _fail(f"octoroute: {path} already exists; not overwriting it. Choose another path.")
    except OSError as error:
        return _fail(f"octoroute: cannot write {path}: {error.strerror or error}")
    print(f"Wrote a configuration template to {path}.", file=sys.stderr)
    print(f"Edit its endpoints, then run: octoroute --config {path}", file=sys.stderr)
    return 0


def _cmd_check(args: argparse.Namespace) -> int:
    from octoroute.config import ConfigError, load_config
    from octoroute.config.placeholders import placeholder_problems
    from octoroute.config.summary import summarize

    try:
        config = load_config(args.config)
    except ConfigError as error:
        return _fail(str(error))
    print(summarize(config), flush=True)
    placeholders = placeholder_problems(config)
    if placeholders:
        count = len(placeholders)
        print(
            f"{config.source}: {count} placeholder{'' if count == 1 else 's'} left; the router "
            "cannot serve with this file until each names a real server:",
            *(f"  {problem}" for problem in placeholders),
            "  (to try the file first without servers, point base_url at 127.0.0.1 ports and run "
            f"octoroute simulate --config {config.source})",
            sep="\n",
            file=sys.stderr,
            flush=True,
        )
    ready = not placeholders
    if args.probe:
        from octoroute.probe_check import check_probe

        text, probed_ok = asyncio.run(check_probe(config))
        print()
        print(text)
        ready = ready and probed_ok
    return 0 if ready else EXIT_NOT_READY


def _prepare_serving(config_path: str, overrides: Overrides) -> Config | int:
    """Load the config with the CLI's overrides and configure logging; an exit code on failure."""
    from octoroute.config import ConfigError, load_config
    from octoroute.observability.logging import configure_logging, parse_level

    if overrides.port is not None and not 0 <= overrides.port <= 65535:
        return _fail(f"octoroute: --port must be between 0 and 65535, got {overrides.port}")
    try:
        config = overrides.apply(load_config(config_path))
    except ConfigError as error:
        return _fail(str(error))
    level = config.observability.log_level
    try:
        parse_level(level)
    except ValueError as error:
        return _fail(f"octoroute: {error}")
    configure_logging(level, config.observability.log_format)
    return config


def _overrides(args: argparse.Namespace) -> Overrides:
    """The command line's values that win over the file's (at start-up and on every reload)."""
    from octoroute.config.overrides import Overrides

    return Overrides(
        host=args.host,
        port=args.port,
        workers=getattr(args, "workers", None),
        log_level=args.log_level or os.environ.get(LOG_ENV),
    )


def _tracing_settings() -> TracingSettings | int | None:
    """What the ``OTEL_*`` variables ask of tracing; an exit code when they ask the impossible."""
    from octoroute.observability.tracing import TracingSetupError, tracing_settings

    try:
        return tracing_settings(os.environ)
    except TracingSetupError as error:
        return _fail(f"octoroute: {error}")


def _tracing(settings: TracingSettings | None) -> Tracing | None:
    """This process's tracing, or ``None``: off, or the ``otel`` extra is not installed (a
    warning, not a failure: the environment may be shared with other programs)."""
    if settings is None:
        return None
    from octoroute.observability.logging import get_logger

    log = get_logger("octoroute.tracing")
    try:
        from octoroute.observability.otel import from_settings
    except ImportError as error:
        log.warning(
            "OTEL_* variables ask for tracing, but the otel extra is not installed; serving "
            "without traces. Install it with: pip install 'octoroute[otel]'",
            missing=str(error),
        )
        return None
    log.info("tracing on", exporters=list(settings.exporters), excluded=list(settings.excluded))
    return from_settings(settings)


def _serve_traced(config: Config, settings: TracingSettings | None, **options: Any) -> None:
    """Serve ``config`` with this process's tracing, flushed once the event loop has ended."""
    from octoroute.server import serve

    tracing = _tracing(settings)
    try:
        _run(serve(config, tracing=tracing, **options))
    finally:
        if tracing is not None:
            tracing.shutdown()


def _cmd_serve(args: argparse.Namespace) -> int:
    from octoroute.workers import hold_reload_signal

    hold_reload_signal()  # first: until serve() or run_workers() can reload on it
    workers: int | None = getattr(args, "workers", None)
    if workers is not None and workers < 1:
        return _fail(f"octoroute: --workers must be at least 1, got {workers}")
    overrides = _overrides(args)
    prepared = _prepare_serving(args.config, overrides)
    if isinstance(prepared, int):
        return prepared
    settings = _tracing_settings()
    if isinstance(settings, int):
        return settings
    if prepared.server.workers > 1:
        from octoroute.workers import run_workers

        return run_workers(
            prepared.server.workers,
            config_path=args.config,
            host=prepared.server.host,
            port=prepared.server.port,
            overrides=overrides,
        )
    _serve_traced(prepared, settings, overrides=overrides)
    return 0


def serve_worker(spec: WorkerSpec) -> int:
    """The body of one ``--workers`` process: the same server, sharing the port."""
    prepared = _prepare_serving(spec.config_path, spec.overrides)
    if isinstance(prepared, int):
        return prepared
    settings = _tracing_settings()
    if isinstance(settings, int):
        return settings
    _serve_traced(
        prepared,
        settings,
        reuse_port=True,
        multiprocess_dir=spec.multiprocess_dir,
        overrides=spec.overrides,
        listen=(spec.host, spec.port),
        parent=os.getppid(),
        on_ready=spec.listening,
    )
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from octoroute.config import ConfigError, load_config
    from octoroute.simulate import lenient_environ, run_simulate

    try:
        config = load_config(args.config, environ=lenient_environ(os.environ))
    except ConfigError as error:
        return _fail(str(error))

    def out(text: str) -> None:
        print(text, flush=True)

    code = 0

    async def simulate() -> None:
        nonlocal code
        code = await run_simulate(config, out=out)

    _run(simulate())
    return code


def _cmd_demo(args: argparse.Namespace) -> int:
    from octoroute.demo import run_demo

    _run(
        run_demo(
            port=args.port,
            strategy=args.strategy,
            log_level=args.log_level or os.environ.get(LOG_ENV) or "info",
        )
    )
    return 0


def _cmd_key(args: argparse.Namespace) -> int:
    from octoroute.key_command import key_new

    return key_new(args.name, admin=args.admin)


def _cmd_eval(args: argparse.Namespace) -> int:
    from octoroute.config import ConfigError, load_config
    from octoroute.evaluation import run_cv, run_eval

    datasets = [Path(name) for name in args.dataset]
    if args.cv is not None:
        if args.strategy not in (None, "learned"):
            return _fail("octoroute eval: --cv measures the learned strategy; drop --strategy")
        try:
            print(run_cv(datasets, args.cv, by=args.by))
        except (OSError, ValueError) as error:
            return _fail(f"octoroute eval: {error}")
        return 0
    try:
        config = load_config(args.config)
    except ConfigError as error:
        return _fail(str(error))
    try:
        report = asyncio.run(run_eval(config, datasets, strategy=args.strategy, by=args.by))
    except (OSError, ValueError) as error:
        return _fail(f"octoroute eval: {error}")
    print(report)
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from octoroute.training import run_train

    try:
        print(
            run_train(
                [Path(name) for name in args.dataset],
                Path(args.output),
                folds=args.folds,
                seed=args.seed,
                under_cost=args.under_cost,
                fast_under_cost=args.fast_under_cost,
                group_by=args.group_by,
            )
        )
    except OSError as error:
        return _fail(f"octoroute train: cannot write {args.output}: {error.strerror or error}")
    except ValueError as error:
        return _fail(f"octoroute train: {error}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the console script; returns the process exit code."""
    args = build_parser().parse_args(argv)
    command = args.command or "serve"
    try:
        handler = {
            "serve": _cmd_serve,
            "config": _cmd_config,
            "check": _cmd_check,
            "simulate": _cmd_simulate,
            "demo": _cmd_demo,
            "eval": _cmd_eval,
            "train": _cmd_train,
            "key": _cmd_key,
        }[command]
        return handler(args)
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # The reader went away (`octoroute eval ... | head`): nothing left to say, and Python
        # would print a traceback flushing stdout at exit unless it points nowhere.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1

"""The ``octoroute`` command: argument parsing and hand-off, no logic of its own.

``octoroute`` alone (or ``octoroute serve``) runs the server; ``config`` writes a template,
``check`` validates a file, ``demo`` runs the router in front of a simulated fleet, ``eval``
measures routing quality on a labelled set, ``train`` fits the learned router to one. Heavy modules (aiohttp) are imported only by the
subcommands that need them, so ``--version``, ``config`` and ``check`` answer instantly.

Configuration problems are printed to stderr with exit code 2, never as a traceback.
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
    from octoroute.workers import WorkerSpec

DEFAULT_CONFIG: Final = "config.toml"
LOG_ENV: Final = "OCTOROUTE_LOG"
EXIT_CONFIG_ERROR: Final = 2


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
        default=1,
        help="server processes sharing the port (SO_REUSEPORT); default 1",
    )

    config = commands.add_parser("config", help="print or write a commented config template")
    config.add_argument("-o", "--output", help="write to this file (never overwrites)")

    check = commands.add_parser("check", help="validate a config file and summarise it")
    check.add_argument("-c", "--config", default=argparse.SUPPRESS, help="file to check")
    check.add_argument(
        "--probe",
        action="store_true",
        help="also reach every endpoint and suggest its kind (exit 1 if one is unreachable)",
    )

    demo = commands.add_parser("demo", help="run the router in front of a simulated fleet")
    demo.add_argument("--port", type=int, default=8080, help="router port (default 8080)")
    demo.add_argument("--strategy", choices=STRATEGIES, default="hybrid", help="routing strategy")
    demo.add_argument("--log-level", default=argparse.SUPPRESS, help="log level (default info)")

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
        help="cost of routing one tier too cheap, against 1 for one tier too pricey (default 3)",
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
    from octoroute.config.summary import summarize

    try:
        config = load_config(args.config)
    except ConfigError as error:
        return _fail(str(error))
    print(summarize(config))
    if not args.probe:
        return 0
    from octoroute.probe_check import check_probe

    text, reachable = asyncio.run(check_probe(config))
    print()
    print(text)
    return 0 if reachable else 1


def _prepare_serving(
    config_path: str, host: str | None, port: int | None, log_level: str | None
) -> Config | int:
    """Load the config with the CLI's overrides and configure logging; an exit code on failure."""
    import msgspec

    from octoroute.config import ConfigError, load_config
    from octoroute.observability.logging import configure_logging, parse_level

    try:
        config = load_config(config_path)
    except ConfigError as error:
        return _fail(str(error))
    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["host"] = host
    if port is not None:
        if not 0 <= port <= 65535:
            return _fail(f"octoroute: --port must be between 0 and 65535, got {port}")
        overrides["port"] = port
    if overrides:
        config = msgspec.structs.replace(
            config, server=msgspec.structs.replace(config.server, **overrides)
        )
    level = log_level or os.environ.get(LOG_ENV) or config.observability.log_level
    try:
        parse_level(level)
    except ValueError as error:
        return _fail(f"octoroute: {error}")
    configure_logging(level, config.observability.log_format)
    return config


def _cmd_serve(args: argparse.Namespace) -> int:
    workers: int = getattr(args, "workers", 1)
    if workers < 1:
        return _fail(f"octoroute: --workers must be at least 1, got {workers}")
    prepared = _prepare_serving(args.config, args.host, args.port, args.log_level)
    if isinstance(prepared, int):
        return prepared
    if workers > 1:
        from octoroute.workers import run_workers

        return run_workers(
            workers,
            config_path=args.config,
            host=prepared.server.host,
            port=prepared.server.port,
            log_level=args.log_level,
        )
    from octoroute.server import serve

    _run(serve(prepared))
    return 0


def serve_worker(spec: WorkerSpec) -> int:
    """The body of one ``--workers`` process: the same server, sharing the port."""
    prepared = _prepare_serving(spec.config_path, spec.host, spec.port, spec.log_level)
    if isinstance(prepared, int):
        return prepared
    from octoroute.server import serve

    _run(serve(prepared, reuse_port=True, multiprocess_dir=spec.multiprocess_dir))
    return 0


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
            "demo": _cmd_demo,
            "eval": _cmd_eval,
            "train": _cmd_train,
        }[command]
        return handler(args)
    except KeyboardInterrupt:
        return 130

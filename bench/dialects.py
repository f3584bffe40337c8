"""``python -m bench.dialects``: the router's CPU per request for each API dialect.

Issue #16's overhead target: a ``/v1/responses`` request translated to chat completions and back
may cost at most 1.3x the router CPU of a plain ``/v1/chat/completions`` request; issue #17 sets
the same target for Anthropic's ``/v1/messages`` and Ollama's ``/api/chat``. All are sent
with ``model: "fast"`` (no routing) at saturation by wrk, against the same nginx upstream that
answers the fixed 947-byte completion; the dialects alternate for ``--repeats`` rounds and the
medians are compared.

Needs nginx and wrk (``apt-get install -y nginx wrk``); pins like ``python -m bench``.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
from pathlib import Path
from typing import Final

import orjson

from bench import payloads, wrk
from bench.procs import pin_self
from bench.servers import start_nginx, start_router, start_sse

TARGET_RATIO: Final = 1.3


def _bodies() -> dict[str, tuple[str, bytes]]:
    """Each dialect's path and a ~1 KB request body carrying the same conversation."""
    chat = orjson.loads(payloads.chat_body("fast"))
    messages = chat["messages"]
    responses = {
        "model": "fast",
        "instructions": messages[0]["content"] if messages[0]["role"] == "system" else None,
        "input": [m for m in messages if m["role"] != "system"],
        "max_output_tokens": 256,
    }
    return {
        "chat": ("/v1/chat/completions", payloads.chat_body("fast")),
        "responses": ("/v1/responses", orjson.dumps(responses)),
        "messages": ("/v1/messages", _messages_body(messages)),
        "ollama": _ollama_chat(messages),
    }


def _messages_body(messages: list[dict[str, str]]) -> bytes:
    """The chat conversation as an Anthropic Messages body: ``system`` on top, the same
    ``max_tokens`` and ``temperature``."""
    return orjson.dumps(
        {
            "model": "fast",
            "system": next(m["content"] for m in messages if m["role"] == "system"),
            "messages": [m for m in messages if m["role"] != "system"],
            "max_tokens": 128,
            "temperature": 0.2,
        }
    )


def _ollama_chat(messages: list[dict[str, str]]) -> tuple[str, bytes]:
    """The same conversation as Ollama's ``/api/chat``, not streamed, with the same limits as
    ``options`` (translated to chat and its answer back to an Ollama object)."""
    body = {
        "model": "fast",
        "messages": messages,
        "stream": False,
        "options": {"num_predict": 128, "temperature": 0.2},
        "keep_alive": "5m",
    }
    return "/api/chat", orjson.dumps(body)


def main(argv: list[str] | None = None) -> None:
    """The command line."""
    parser = argparse.ArgumentParser(prog="python -m bench.dialects", description=__doc__)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0)
    args = parser.parse_args(argv)
    pin_self()
    with tempfile.TemporaryDirectory(prefix="octoroute-dialects-") as directory:
        log_dir = Path(directory)
        upstream = start_nginx(log_dir)
        sse = start_sse(log_dir)
        router = start_router(log_dir, upstream, sse)
        try:
            cpu: dict[str, list[float]] = {name: [] for name in _bodies()}
            for repeat in range(args.repeats):
                for name, (path, body) in _bodies().items():
                    script = wrk.write_script(log_dir, name, payloads.wrk_script(body))
                    url = router.url + path
                    wrk.run(url, script, 1.0)  # warm-up
                    result = wrk.run(url, script, args.seconds, pid=router.proc.pid)
                    per_request = result.cpu_us_per_request
                    if result.errors or per_request is None:
                        raise SystemExit(f"{name}: {result.errors} errors in {result.requests}")
                    cpu[name].append(per_request)
                    print(
                        f"  round {repeat + 1} {name:<11} {result.rps:8.0f} req/s "
                        f"{per_request:7.1f} CPU-us/req",
                        flush=True,
                    )
        finally:
            router.stop()
            sse.stop()
            upstream.stop()
    medians = {name: statistics.median(values) for name, values in cpu.items()}
    for name, value in medians.items():
        print(f"{name:<11} median {value:7.1f} CPU-us per request")
    for name in medians.keys() - {"chat"}:
        ratio = medians[name] / medians["chat"]
        verdict = "PASS" if ratio <= TARGET_RATIO else "FAIL"
        print(f"{name} / chat = {ratio:.2f} (target <= {TARGET_RATIO}): {verdict}")


if __name__ == "__main__":
    main()

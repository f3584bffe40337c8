"""The load parts of a run: added latency at fixed rates, saturation, and streaming.

Each part interleaves the variants (the order rotates every repeat) so that a slow phase of the
host hits all of them alike, and stores raw per-run numbers under ``bench.results[part]``; the
report takes medians over repeats of the paired differences against ``direct``.
"""

from __future__ import annotations

import statistics
from pathlib import Path
from typing import Any, Final

from bench import loadgen, payloads, wrk
from bench.context import Bench, Variant, measure, rotated, stream_url

STREAM_SHAPES: Final = {
    # name: (events, gap ms, offered streams/s)
    "spaced": (16, 2.0, 40),
    "spaced-long": (48, 2.0, 20),
    "bulk": (32, 0.0, 100),
}
"""``spaced`` events arrive one by one (each is a read and a write in the proxy), like tokens;
``spaced-long`` has 3x the events so that (cost(long) - cost(spaced)) / 32 is the marginal relay
cost of one event; ``bulk`` arrives all at once, the cost of a stream apart from its events."""


def _pid(variant: Variant) -> int | None:
    return variant.server.proc.pid if variant.proxied else None


def _per_request_us(cpu: float | None, count: int) -> float | None:
    return None if cpu is None or count <= 0 else round(cpu / count * 1e6, 1)


async def latency(bench: Bench) -> None:
    """Open-loop runs at each fixed rate, every variant, ``plan.repeats`` times."""
    runs: list[dict[str, Any]] = []
    bench.results["latency"] = runs
    async with loadgen.new_session() as session:
        for repeat in range(bench.plan.repeats):
            for step, (rate, seconds) in enumerate(bench.plan.rates):
                for variant in rotated(bench.variants, repeat + step):
                    url = variant.server.chat_url
                    await loadgen.open_loop(
                        session, url, variant.body, rate=rate, seconds=bench.plan.warmup_seconds
                    )

                    async def go(
                        url: str = url,
                        body: bytes = variant.body,
                        rate: int = rate,
                        seconds: float = seconds,
                    ) -> loadgen.Run:
                        return await loadgen.open_loop(
                            session, url, body, rate=rate, seconds=seconds
                        )

                    measured = await measure(_pid(variant), go, attempts=bench.plan.attempts)
                    run: loadgen.Run = measured.value
                    summary = run.summary()
                    summary.update(
                        variant=variant.name,
                        repeat=repeat,
                        cpu_us_per_request=_per_request_us(measured.cpu_seconds, run.ok),
                        foreign_cores=measured.foreign_cores,
                        retried=measured.retried,
                    )
                    runs.append(summary)
                    print(
                        f"  latency {rate:>4}/s {variant.name:<12} p50 "
                        f"{summary.get('latency_p50_us', float('nan')):>8.0f} µs  p99 "
                        f"{summary.get('latency_p99_us', float('nan')):>8.0f} µs  "
                        f"errors {sum(run.errors.values())}",
                        flush=True,
                    )


async def throughput(bench: Bench) -> None:
    """wrk at 64 connections against every variant; the proxy's CPU per request."""
    runs: list[dict[str, Any]] = []
    bench.results["throughput"] = runs
    for repeat in range(bench.plan.repeats):
        for variant in rotated(bench.variants, repeat):
            script = wrk.write_script(
                bench.log_dir, f"post-{variant.name}", payloads.wrk_script(variant.body)
            )
            url = variant.server.chat_url
            wrk.run(url, script, 1.0)  # warm-up: the proxy's upstream pool fills to 64

            def go(url: str = url, script: Path = script) -> wrk.Saturation:
                return wrk.run(url, script, bench.plan.wrk_seconds)

            measured = await measure(_pid(variant), go, attempts=bench.plan.attempts)
            result: wrk.Saturation = measured.value
            answered = result.requests - result.errors
            summary: dict[str, Any] = {
                **result.summary(),
                "cpu_us_per_request": _per_request_us(measured.cpu_seconds, answered),
                "variant": variant.name,
                "repeat": repeat,
                "foreign_cores": measured.foreign_cores,
                "retried": measured.retried,
            }
            runs.append(summary)
            print(
                f"  throughput {variant.name:<12} {result.rps:>8.0f} req/s  "
                f"cpu {summary['cpu_us_per_request'] or 0:>6.0f} µs/req  errors {result.errors}",
                flush=True,
            )


async def streaming(bench: Bench) -> None:
    """Open-loop streams of each shape: time to first byte, and the proxy's CPU per stream."""
    runs: list[dict[str, Any]] = []
    bench.results["streaming"] = runs
    streamers = [v for v in bench.variants if v.stream_model is not None]
    async with loadgen.new_session() as session:
        for repeat in range(bench.plan.repeats):
            for shape, (events, gap_ms, rate) in STREAM_SHAPES.items():
                for variant in rotated(streamers, repeat):
                    assert variant.stream_model is not None
                    body = payloads.stream_body(variant.stream_model, events, gap_ms)
                    url = stream_url(bench, variant)
                    await loadgen.open_loop(
                        session,
                        url,
                        body,
                        rate=rate,
                        seconds=bench.plan.warmup_seconds,
                        stream=True,
                    )

                    async def go(
                        url: str = url, body: bytes = body, rate: int = rate
                    ) -> loadgen.Run:
                        return await loadgen.open_loop(
                            session,
                            url,
                            body,
                            rate=rate,
                            seconds=bench.plan.stream_seconds,
                            stream=True,
                        )

                    measured = await measure(_pid(variant), go, attempts=bench.plan.attempts)
                    run: loadgen.Run = measured.value
                    summary = run.summary()
                    per_stream = _per_request_us(measured.cpu_seconds, run.ok)
                    summary.update(
                        variant=variant.name,
                        shape=shape,
                        events=events,
                        gap_ms=gap_ms,
                        repeat=repeat,
                        cpu_us_per_stream=per_stream,
                        chunks_per_stream=round(run.chunks / run.ok, 1) if run.ok else None,
                        foreign_cores=measured.foreign_cores,
                        retried=measured.retried,
                    )
                    runs.append(summary)
                    print(
                        f"  stream {shape:<11} {variant.name:<12} ttfb p50 "
                        f"{summary.get('ttfb_p50_us', float('nan')):>7.0f} µs  cpu/stream "
                        f"{per_stream or 0:>6.0f} µs  errors {sum(run.errors.values())}",
                        flush=True,
                    )


def median_of(values: list[float | None]) -> float | None:
    """The median of the known values; None if there are none."""
    known = [v for v in values if v is not None]
    return statistics.median(known) if known else None

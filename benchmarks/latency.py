"""Latency hiding: how close 64 requests in flight come to 64 / latency.

The emulator answers every request 50 ms late; bulkdelete deletes with ``--concurrency 64``
and pacing off, so the most it can do is 64 / 0.05 s = 1,280 DELETE/s. The bare aiohttp pool
runs after it on the same server (its answers are 404s by then, just as late) for reference.
"""

from __future__ import annotations

from benchmarks._harness import Context, Findings, count, emulator_server, noise_note, write_ids
from benchmarks.throughput import run_client

NAME = "latency"
TITLE = "latency hiding: 50 ms answers, 64 in flight, against the ideal 1,280/s"

LATENCY = 0.05
CONCURRENCY = 64


def run(ctx: Context) -> Findings:
    n = ctx.size(6_000, 3_000)
    ideal = CONCURRENCY / LATENCY
    ids_file = write_ids(ctx.scratch / "latency-ids.txt", n)
    options = ("--seed-count", str(n), "--latency", f"{LATENCY:g}")
    with emulator_server(ctx.cpus.server, *options) as server:
        bulk = run_client(ctx, server, "bulkdelete", ids_file, n)
        bare = run_client(ctx, server, "bare", ids_file, n)
    share = bulk["per_second"] / ideal
    bare_share = bare["per_second"] / ideal
    return {
        "latency_seconds": LATENCY,
        "concurrency": CONCURRENCY,
        "ids": n,
        "ideal_per_second": ideal,
        "server": server.describe(),
        "bulkdelete": bulk,
        "bare": bare,
        "bulkdelete_share_of_ideal": round(share, 4),
        "bare_share_of_ideal": round(bare_share, 4),
        "notes": [
            note
            for note in (noise_note("bulkdelete", bulk["load"]), noise_note("bare", bare["load"]))
            if note
        ],
        "rows": [
            [
                f"latency · {LATENCY * 1000:g} ms answers, {CONCURRENCY} in flight "
                f"({count(n)} IDs)",
                f"{count(bulk['per_second'])}/s of {count(ideal)}/s ideal ({share:.1%}; "
                f"bare aiohttp {bare_share:.1%})",
            ]
        ],
    }

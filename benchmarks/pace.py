"""Pace accuracy against the emulator limiting 100 requests per rolling second.

Three paces, each run as an operator would (``bulkdelete run FILE --rate R``) for about 12 s
(6 s with ``--quick``): ``--rate 100/s`` (the limit itself), ``--rate 500/s`` (a ceiling five
times the limit: the pace must learn the limit from the API's headers) and ``--rate auto``.
The emulator counts the most requests that arrived within any rolling second
(``max_in_window``, 429s included) and the 429s; the report's ``finished_at`` column gives the
pace achieved between the first answer and the last.
"""

from __future__ import annotations

import json
import sys
from datetime import datetime
from typing import Any

from benchmarks._harness import (
    BenchmarkError,
    Context,
    Findings,
    count,
    emulator_server,
    noise_note,
    run_measured,
    write_ids,
)
from bulkdelete.report import read_report, summary_path

NAME = "pace"
TITLE = "pace accuracy: --rate 100/s, 500/s and auto against a rolling limit of 100/s"

LIMIT = 100
PERIOD = 1.0
CONCURRENCY = 8


RATES = (f"{LIMIT}/s", f"{5 * LIMIT}/s", "auto")


def run(ctx: Context) -> Findings:
    runs = {rate: _measure(ctx, rate) for rate in RATES}
    findings: Findings = {
        "paces": runs,
        "rows": [row for found in runs.values() for row in found.pop("rows")],
    }
    return findings


def _measure(ctx: Context, rate: str) -> Findings:
    seconds = ctx.size(12, 6)
    n = LIMIT * seconds
    name = rate.replace("/", "-per-")
    ids_file = write_ids(ctx.scratch / f"pace-ids-{name}.txt", n)
    report = ctx.scratch / f"pace-report-{name}.csv"
    limit = f"{LIMIT}/{PERIOD:g}s"
    with emulator_server(ctx.cpus.server, "--seed-count", str(n), "--rate-limit", limit) as server:
        command = [sys.executable, "-m", "bulkdelete", "run", str(ids_file)]
        command += ["--rate", rate, "--concurrency", str(CONCURRENCY)]
        command += ["--report", str(report), "--yes", "--quiet", "--base-url", server.url]
        child = run_measured(command, cpu=ctx.cpus.client, timeout=seconds * 4 + 60, cpus=ctx.cpus)
        stats = server.stats()
    if child.returncode != 0:
        raise BenchmarkError(f"bulkdelete exited {child.returncode}: {child.stderr[-800:]}")
    summary: dict[str, Any] = json.loads(summary_path(report).read_text(encoding="utf-8"))
    finished = sorted(_when(r.finished_at) for r in read_report(report))
    span = finished[-1] - finished[0]
    steady = (len(finished) - 1) / span if span > 0 else 0.0
    wall = _when(summary["finished_at"]) - _when(summary["started_at"])
    allowed = LIMIT / PERIOD
    max_in_window = int(stats["max_in_window"])
    too_many = int(stats["rate_limited"])
    findings: Findings = {
        "limit": f"{LIMIT} per {PERIOD:g} s",
        "rate": rate,
        "concurrency": CONCURRENCY,
        "ids": n,
        "server": server.describe(),
        "requests_seen": stats["requests"],
        "rate_limited_429": too_many,
        "share_429": round(too_many / max(1, int(stats["requests"])), 4),
        "max_in_window": max_in_window,
        "max_in_window_share": round(max_in_window / LIMIT, 3),
        "steady_per_second": round(steady, 2),
        "utilisation": round(steady / allowed, 4),
        "run_seconds": round(wall, 3),
        "utilisation_with_startup": round(len(finished) / wall / allowed, 4) if wall else None,
        "process_seconds": round(child.seconds, 3),
        "deleted": summary["deleted"],
        "load": child.load,
        "notes": [note for note in [noise_note("bulkdelete", child.load)] if note],
    }
    findings["rows"] = [
        [
            f"pace · --rate {rate} vs limit {LIMIT}/{PERIOD:g} s ({count(n)} IDs)",
            f"max in window {max_in_window}/{LIMIT} · utilisation "
            f"{findings['utilisation']:.1%} steady, "
            f"{findings['utilisation_with_startup']:.1%} from the start · "
            f"{too_many} answers 429 ({findings['share_429']:.1%})",
        ]
    ]
    return findings


def _when(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()

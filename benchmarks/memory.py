"""Memory: peak RSS of ``bulkdelete run -`` fed 1,000,000 distinct IDs on stdin.

``cat ids.txt | bulkdelete run - --rate 10000000/s --concurrency 64 --report r.csv --yes
--quiet`` against the fast server (nginx, else the emulator), measured with ``wait4``: the
process's own peak RSS and CPU time, and how long the run takes. Two dry runs of the same
command on a file (everything read and deduplicated, nothing sent), at a tenth of the IDs and
at all of them, tell how the memory grows with the input's length.
"""

from __future__ import annotations

import sys
from pathlib import Path

from benchmarks._harness import (
    BenchmarkError,
    ChildRun,
    Context,
    Findings,
    count,
    fast_server,
    mib,
    noise_note,
    run_measured,
    write_ids,
)

NAME = "memory"
TITLE = "memory: peak RSS and duration of bulkdelete run fed a million IDs on stdin"

CONCURRENCY = 64


def run(ctx: Context) -> Findings:
    n = ctx.size(1_000_000, 200_000)
    ids_file = write_ids(ctx.scratch / "memory-ids.txt", n)
    tenth_file = write_ids(ctx.scratch / "memory-ids-tenth.txt", n // 10)
    report = ctx.scratch / "memory-report.csv"
    with fast_server(ctx.cpus.server, n, ctx.server) as server:
        command = [sys.executable, "-m", "bulkdelete", "run", "-", "--rate", "10000000/s"]
        command += ["--concurrency", str(CONCURRENCY), "--report", str(report)]
        command += ["--yes", "--quiet", "--base-url", server.url]
        # Generous: 1,000 IDs a second would be five times slower than ever seen.
        full = run_measured(
            command,
            cpu=ctx.cpus.client,
            timeout=60 + n / 1000,
            stdin_path=ids_file,
            pipe_stdin=True,
            cpus=ctx.cpus,
        )
        _check(full, "the run")
        dry_tenth = _dry_run(ctx, tenth_file, server.url)
        dry_all = _dry_run(ctx, ids_file, server.url)
    per_id = (dry_all.peak_rss_bytes - dry_tenth.peak_rss_bytes) / (n - n // 10)
    findings: Findings = {
        "ids": n,
        "server": server.describe(),
        "peak_rss_bytes": full.peak_rss_bytes,
        "seconds": round(full.seconds, 3),
        "per_second": round(n / full.seconds, 1),
        "cpu_seconds": round(full.cpu_seconds, 3),
        "cpu_us_per_id": round(full.cpu_seconds / n * 1e6, 1),
        "dry_run_peak_rss_bytes": {
            str(n // 10): dry_tenth.peak_rss_bytes,
            str(n): dry_all.peak_rss_bytes,
        },
        "dry_run_seconds": {
            str(n // 10): round(dry_tenth.seconds, 3),
            str(n): round(dry_all.seconds, 3),
        },
        "growth_bytes_per_id": round(per_id, 1),
        "load": full.load,
        "notes": [note for note in [noise_note("the run", full.load)] if note],
    }
    findings["rows"] = [
        [
            f"memory · bulkdelete run - fed {count(n)} IDs",
            f"peak RSS {mib(full.peak_rss_bytes)} · {full.seconds:,.0f} s "
            f"({count(n / full.seconds)}/s) · +{per_id:,.0f} B per distinct ID",
        ]
    ]
    return findings


def _dry_run(ctx: Context, ids_file: Path, url: str) -> ChildRun:
    command = [sys.executable, "-m", "bulkdelete", "run", str(ids_file), "--dry-run"]
    command += ["--quiet", "--base-url", url]
    child = run_measured(command, cpu=ctx.cpus.client, timeout=300)
    _check(child, "the dry run")
    return child


def _check(child: ChildRun, what: str) -> None:
    if child.returncode != 0:
        raise BenchmarkError(f"{what} exited {child.returncode}: {child.stderr.strip()[-800:]}")

"""Resume: how long ``--resume`` takes to get going over a 1,000,000-row report.

A report of 1,000,000 ``deleted`` rows and its summary are written with bulkdelete's own
``FileReport`` and ``Summary``. Then ``bulkdelete run in.txt --report r.csv --resume --yes
--quiet --rate 10000000/s`` runs twice against a small loopback server that notes when the
first DELETE arrives: once with every ID done (time to exit; nothing may be sent), once with
1,000 new IDs after the done ones, as after a crash (time to the first DELETE, and to exit).
A fresh run of the 1,000 new IDs alone gives the start-up time without a report to read.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from benchmarks._harness import (
    HOST,
    BenchmarkError,
    ChildRun,
    Context,
    Findings,
    count,
    ids,
    mib,
    noise_note,
    run_measured,
)
from bulkdelete import FileReport, Outcome, Result, Summary, __version__
from bulkdelete.outcome import utc_now
from bulkdelete.report import summary_path

NAME = "resume"
TITLE = "resume: time to the first DELETE and to exit over a million-row report"

NEW_IDS = 1_000
_TIMEOUT = 300.0


class FirstDeleteServer:
    """A loopback HTTP/1.1 server that answers 204 to every request and notes, on the
    ``time.monotonic()`` clock, when the first DELETE arrived."""

    def __init__(self) -> None:
        self.first_delete: float | None = None
        self.requests = 0
        self.url = ""

    def reset(self) -> None:
        self.first_delete = None
        self.requests = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                if self.first_delete is None and head.startswith(b"DELETE "):
                    self.first_delete = time.monotonic()
                self.requests += 1
                length = _content_length(head)
                if length:
                    await reader.readexactly(length)
                writer.write(b"HTTP/1.1 204 No Content\r\nx-request-id: bench\r\n\r\n")
        except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError):
            pass
        finally:
            writer.close()

    @contextmanager
    def running(self) -> Iterator[FirstDeleteServer]:
        ready = threading.Event()
        loop = asyncio.new_event_loop()
        stop: asyncio.Event | None = None

        async def serve() -> None:
            nonlocal stop
            stop = asyncio.Event()
            server = await asyncio.start_server(self._handle, HOST, 0)
            port = server.sockets[0].getsockname()[1]
            self.url = f"http://{HOST}:{port}"
            ready.set()
            async with server:
                await stop.wait()

        thread = threading.Thread(target=loop.run_until_complete, args=(serve(),), daemon=True)
        thread.start()
        if not ready.wait(30):
            raise BenchmarkError("the first-DELETE server did not start")
        try:
            yield self
        finally:
            assert stop is not None
            loop.call_soon_threadsafe(stop.set)
            thread.join(10)
            loop.close()


def _content_length(head: bytes) -> int:
    for line in head.split(b"\r\n"):
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value.strip() or 0)
    return 0


def write_report(path: Path, n: int, base_url: str) -> float:
    """A finished job's report of ``n`` deleted rows and its summary; returns the seconds
    ``FileReport`` took to write the rows."""
    started_at = utc_now()
    report = FileReport(path)
    began = time.perf_counter()
    try:
        for identity_id in ids(n):
            report.write(Result(identity_id, Outcome.DELETED, 204, 1, "", "", started_at))
    finally:
        report.close()
    seconds = time.perf_counter() - began
    summary = Summary(
        deleted=n,
        input_lines=n,
        distinct=n,
        started_at=started_at,
        finished_at=utc_now(),
        base_url=base_url,
        rate="10000000/s",
        version=__version__,
        report=str(path),
    )
    summary.extra.update({"runs": 1, "state": "done"})
    summary.write(summary_path(path))
    return seconds


def _write_list(path: Path, names: list[str]) -> Path:
    path.write_text("".join(f"{name}\n" for name in names), encoding="utf-8")
    return path


def run(ctx: Context) -> Findings:
    n = ctx.size(1_000_000, 200_000)
    done = ids(n)
    new = ids(NEW_IDS, start=n + 1)
    all_done = _write_list(ctx.scratch / "resume-all-done.txt", done)
    with_new = _write_list(ctx.scratch / "resume-with-new.txt", done + new)
    new_only = _write_list(ctx.scratch / "resume-new-only.txt", new)
    del done
    report = ctx.scratch / "resume-report.csv"
    with FirstDeleteServer().running() as server:
        write_seconds = write_report(report, n, server.url)

        # 1. Every ID in the input is done already: nothing may be sent.
        finished = _bulkdelete(ctx, server, all_done, report, resume=True)
        if server.requests:
            raise BenchmarkError(f"--resume sent {server.requests} requests for IDs all done")
        # 2. A crash left 1,000 IDs after the done ones.
        server.reset()
        more = _bulkdelete(ctx, server, with_new, report, resume=True)
        more_first = _first_delete(server, more)
        sent_again = server.requests - NEW_IDS
        # 3. For comparison: the 1,000 new IDs alone, in a new report.
        server.reset()
        fresh = _bulkdelete(ctx, server, new_only, ctx.scratch / "resume-fresh.csv", resume=False)
        fresh_first = _first_delete(server, fresh)
    findings: Findings = {
        "report_rows": n,
        "new_ids": NEW_IDS,
        "report_bytes": report.stat().st_size,
        "report_write_seconds": round(write_seconds, 3),
        "report_write_us_per_row": round(write_seconds / n * 1e6, 2),
        "all_done_exit_seconds": round(finished.seconds, 3),
        "all_done_peak_rss_bytes": finished.peak_rss_bytes,
        "with_new_first_delete_seconds": round(more_first, 3),
        "with_new_exit_seconds": round(more.seconds, 3),
        "with_new_peak_rss_bytes": more.peak_rss_bytes,
        "with_new_requests_beyond_new_ids": sent_again,
        "fresh_first_delete_seconds": round(fresh_first, 3),
        "fresh_exit_seconds": round(fresh.seconds, 3),
        "fresh_peak_rss_bytes": fresh.peak_rss_bytes,
        "load": {"all_done": finished.load, "with_new": more.load, "fresh": fresh.load},
        "notes": [
            note
            for note in (
                noise_note("all done", finished.load),
                noise_note("1,000 new", more.load),
                noise_note("no report", fresh.load),
            )
            if note
        ],
    }
    findings["rows"] = [
        [
            f"resume · --resume over a {count(n)}-row report",
            f"all done: exit after {finished.seconds:.1f} s · {count(NEW_IDS)} new: first "
            f"DELETE after {more_first:.1f} s, exit after {more.seconds:.1f} s (no report: "
            f"{fresh_first:.2f} s) · peak RSS {mib(more.peak_rss_bytes)}",
        ]
    ]
    return findings


def _bulkdelete(
    ctx: Context, server: FirstDeleteServer, input_file: Path, report: Path, *, resume: bool
) -> ChildRun:
    command = [sys.executable, "-m", "bulkdelete", "run", str(input_file), "--report", str(report)]
    command += ["--yes", "--quiet", "--rate", "10000000/s", "--base-url", server.url]
    if resume:
        command.append("--resume")
    child = run_measured(command, cpu=ctx.cpus.client, timeout=_TIMEOUT, cpus=ctx.cpus)
    if child.returncode != 0:
        raise BenchmarkError(f"bulkdelete exited {child.returncode}: {child.stderr[-800:]}")
    return child


def _first_delete(server: FirstDeleteServer, child: ChildRun) -> float:
    if server.first_delete is None:
        raise BenchmarkError("no DELETE reached the server")
    return server.first_delete - child.started

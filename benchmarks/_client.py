"""One HTTP client deleting a list of IDs, in a process of its own; prints one JSON line.

    python -m benchmarks._client KIND --url URL --ids FILE [--count N] [--concurrency N]
        [--report PATH | --no-report] [--rate N/PERIOD]

KIND is ``bulkdelete`` (``purge()`` with a report), ``bare`` (the reference: a plain aiohttp
worker pool, no pacing, no report), ``sdk`` (orq-ai-sdk's ``identities.delete_async``),
``requests`` (one ``requests.Session`` per thread) or ``requests-plain`` (``requests.delete()``
in threads: a new session and connection per request, as a quick script does it). Everything
is imported and the IDs are read before the clock starts; CPU time is the process's own
(``getrusage``) over the timed part, and the peak RSS is the process's whole life.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import json
import queue
import resource
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks._rss import peak_rss

KINDS = ("bulkdelete", "bare", "sdk", "requests", "requests-plain")


def _usage() -> tuple[float, int]:
    """CPU seconds so far and the peak RSS in bytes (VmHWM: see benchmarks/_rss.py)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, peak_rss()


def _url(base_url: str, identity_id: str) -> str:
    return f"{base_url}/v2/identities/{quote(identity_id, safe='')}"


# -- bulkdelete ---------------------------------------------------------------------------


def _bulkdelete(args: argparse.Namespace, ids: list[str]) -> Callable[[], Counter[str]]:
    import anyio

    from bulkdelete import FileReport, Rate, Settings, purge
    from bulkdelete.pipeline import loop_options

    rate = Rate.parse(args.rate) if args.rate else Rate(10_000_000, 1.0)
    settings = Settings(api_key="k", base_url=args.url, rate=rate, concurrency=args.concurrency)

    def run() -> Counter[str]:
        with tempfile.TemporaryDirectory(prefix="bench-report-") as scratch:
            report = None if args.no_report else FileReport(args.report or Path(scratch) / "r.csv")

            async def main() -> Counter[str]:
                try:
                    if args.display:
                        summary = await _with_display(ids, settings, report)
                    else:
                        summary = await purge(ids, settings, report)
                finally:
                    if report is not None:
                        report.close()
                return Counter(
                    deleted=summary.deleted,
                    not_found=summary.not_found,
                    failed=summary.failed,
                    invalid=summary.invalid,
                )

            options = {} if args.stdlib_loop else loop_options()
            result: Counter[str] = anyio.run(main, backend="asyncio", backend_options=options)
            return result

    return run


async def _with_display(ids: list[str], settings: Any, report: Any) -> Any:
    """purge() as the CLI runs it on a terminal: a live rich display following the run."""
    import io

    import anyio
    from rich.console import Console

    from bulkdelete.display import LiveDisplay
    from bulkdelete.pipeline import Run, run_job
    from bulkdelete.reader import IdFilter
    from bulkdelete.report import Summary

    console = Console(file=io.StringIO(), force_terminal=True, width=120)
    run = Run(summary=Summary(), id_filter=IdFilter(), total=len(ids))
    with LiveDisplay(console) as display:
        async with anyio.create_task_group() as group:
            group.start_soon(display.follow, run)
            summary = await run_job(enumerate(ids, 1), settings, report, run)
            group.cancel_scope.cancel()
    return summary


# -- the reference: a bare aiohttp worker pool ----------------------------------------------


def _bare(args: argparse.Namespace, ids: list[str]) -> Callable[[], Counter[str]]:
    import aiohttp
    import yarl

    async def main() -> Counter[str]:
        statuses: Counter[str] = Counter()
        work: asyncio.Queue[str] = asyncio.Queue()
        for identity_id in ids:
            work.put_nowait(identity_id)
        connector = aiohttp.TCPConnector(limit=args.concurrency)
        headers = {"Authorization": "Bearer k"}
        async with aiohttp.ClientSession(connector=connector, headers=headers) as session:

            async def worker() -> None:
                while True:
                    try:
                        identity_id = work.get_nowait()
                    except asyncio.QueueEmpty:
                        return
                    url = yarl.URL(_url(args.url, identity_id), encoded=True)
                    async with session.delete(url) as response:
                        await response.read()
                        statuses[str(response.status)] += 1

            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        return statuses

    return lambda: asyncio.run(main())


# -- orq-ai-sdk -----------------------------------------------------------------------------


def _sdk(args: argparse.Namespace, ids: list[str]) -> Callable[[], Counter[str]]:
    sdk: Any = importlib.import_module("orq_ai_sdk")

    async def main() -> Counter[str]:
        outcomes: Counter[str] = Counter()
        work: asyncio.Queue[str] = asyncio.Queue()
        for identity_id in ids:
            work.put_nowait(identity_id)
        orq = sdk.Orq(api_key="k", server_url=args.url)

        async def worker() -> None:
            while True:
                try:
                    identity_id = work.get_nowait()
                except asyncio.QueueEmpty:
                    return
                try:
                    await orq.identities.delete_async(id=identity_id)
                except Exception as exc:  # a 204 is "Unexpected response received"
                    status = getattr(getattr(exc, "raw_response", None), "status_code", None)
                    outcomes[f"{type(exc).__name__} {status}"] += 1
                else:
                    outcomes["ok"] += 1

        try:
            await asyncio.gather(*(worker() for _ in range(args.concurrency)))
        finally:
            await orq.sdk_configuration.async_client.aclose()
        return outcomes

    return lambda: asyncio.run(main())


# -- requests with threads ------------------------------------------------------------------


def _requests(args: argparse.Namespace, ids: list[str]) -> Callable[[], Counter[str]]:
    requests: Any = importlib.import_module("requests")

    def run() -> Counter[str]:
        statuses: Counter[str] = Counter()
        lock = threading.Lock()
        work: queue.SimpleQueue[str] = queue.SimpleQueue()
        for identity_id in ids:
            work.put(identity_id)

        def drain(delete: Callable[[str], Any]) -> None:
            mine: Counter[str] = Counter()
            while True:
                try:
                    identity_id = work.get_nowait()
                except queue.Empty:
                    break
                mine[str(delete(_url(args.url, identity_id)).status_code)] += 1
            with lock:
                statuses.update(mine)

        def with_session() -> None:
            with requests.Session() as session:
                session.trust_env = False
                session.headers["Authorization"] = "Bearer k"
                drain(lambda url: session.delete(url, timeout=30))

        def without_session() -> None:
            # requests.delete(): a new session, so a new connection, for every request.
            headers = {"Authorization": "Bearer k"}
            drain(lambda url: requests.delete(url, headers=headers, timeout=30))

        target = without_session if args.kind == "requests-plain" else with_session
        threads = [threading.Thread(target=target) for _ in range(args.concurrency)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        return statuses

    return run


_FACTORIES: dict[str, Callable[[argparse.Namespace, list[str]], Callable[[], Counter[str]]]] = {
    "bulkdelete": _bulkdelete,
    "bare": _bare,
    "sdk": _sdk,
    "requests": _requests,
    "requests-plain": _requests,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="one benchmark client (see module docstring)")
    parser.add_argument("kind", choices=KINDS)
    parser.add_argument("--url", required=True, help="base URL, http://127.0.0.1:PORT")
    parser.add_argument("--ids", required=True, type=Path, help="file with one ID a line")
    parser.add_argument("--count", type=int, help="use only the first COUNT IDs")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--report", help="bulkdelete only: report path (default: a temp file)")
    parser.add_argument("--no-report", action="store_true", help="bulkdelete only: no report")
    parser.add_argument(
        "--display", action="store_true", help="bulkdelete only: with the live rich display"
    )
    parser.add_argument(
        "--stdlib-loop", action="store_true", help="bulkdelete only: asyncio's own loop, not uvloop"
    )
    parser.add_argument("--rate", help="bulkdelete only: --rate (default: 10000000/s, no pacing)")
    args = parser.parse_args(argv)
    if not args.url.startswith("http://127.0.0.1:"):
        parser.error("benchmarks talk to 127.0.0.1 only")
    ids = args.ids.read_text(encoding="utf-8").split()
    if args.count is not None:
        ids = ids[: args.count]
    run = _FACTORIES[args.kind](args, ids)
    cpu_before, rss_before = _usage()
    started = time.perf_counter()
    outcomes = run()
    seconds = time.perf_counter() - started
    cpu_after, peak_rss = _usage()
    answered = sum(outcomes.values())
    cpu = cpu_after - cpu_before
    result = {
        "kind": args.kind,
        "requests": len(ids),
        "answered": answered,
        "concurrency": args.concurrency,
        "seconds": round(seconds, 4),
        "per_second": round(answered / seconds, 1) if seconds > 0 else 0.0,
        "cpu_seconds": round(cpu, 4),
        "cpu_us_per_request": round(cpu / answered * 1e6, 1) if answered else None,
        "cpu_share": round(cpu / seconds, 3) if seconds > 0 else None,
        "peak_rss_bytes": peak_rss,
        "rss_before_run_bytes": rss_before,
        "outcomes": dict(sorted(outcomes.items())),
    }
    sys.stdout.write(json.dumps(result) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Hot spots: where bulkdelete's CPU time per DELETE goes (only with ``--only hotspots``).

Three views of the throughput run (a), against the same fast server and IDs:

- a ladder: from the bare aiohttp pool to ``purge()`` one layer at a time (anyio's task group,
  bulkdelete's session, ``DeleteClient.delete`` with a pacer that never waits, the real
  ``Pacer.acquire``, the report, the whole pipeline), each in a fresh pinned process, in
  rounds; the least CPU per DELETE of each level counts, so that a burst of other load on the
  machine does not;
- a profile: ``purge()`` under pyinstrument (``pip install pyinstrument``; else cProfile, which
  inflates small calls): each bulkdelete function's share of the time, inclusive and its own,
  and the time by package; the whole tree goes to ``benchmarks/results/profile.txt``;
- per call: microbenchmarks of the pieces on the per-ID path, with an alternative beside some.
"""

from __future__ import annotations

import argparse
import csv
import importlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from benchmarks._harness import (
    RESULTS_DIR,
    ROOT,
    Context,
    Findings,
    count,
    fast_server,
    ids,
    noise_note,
    python_child,
    run_json_child,
    write_ids,
)

NAME = "hotspots"
TITLE = "hot spots of bulkdelete's per-DELETE path: layer by layer, profile, per-call costs"

CONCURRENCY = 64
_OWN = str(ROOT / "bulkdelete") + os.sep
_TOP = 12


LEVELS = (
    "bare aiohttp pool (asyncio.gather)",
    "+ anyio task group",
    "+ bulkdelete's session (client.new_session)",
    "+ DeleteClient.delete, pacer never waits",
    "+ Pacer.acquire",
    "+ FileReport",
    "purge(): + reader, feed, sync",
)


def run(ctx: Context) -> Findings:
    n = ctx.size(20_000, 10_000)
    rounds = ctx.size(3, 2)
    profiled = ctx.size(50_000, 20_000)
    ids_file = write_ids(ctx.scratch / "hotspots-ids.txt", max(n, profiled))
    profile_text = RESULTS_DIR / "profile.txt"
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    notes: list[str] = []
    ladder: list[list[dict[str, Any]]] = [[] for _ in LEVELS]
    with fast_server(ctx.cpus.server, n * rounds * len(LEVELS) + profiled, ctx.server) as server:
        for _ in range(rounds):
            for level, runs in enumerate(ladder):
                command = python_child(
                    "benchmarks.hotspots", "--ladder", str(level), server.url, str(ids_file), str(n)
                )
                found = run_json_child(
                    command, cpu=ctx.cpus.client, timeout=60 + n / 200, cpus=ctx.cpus
                )
                runs.append(found)
                note = noise_note(f"ladder level {level}", found["load"])
                if note:
                    notes.append(note)
        command = python_child(
            "benchmarks.hotspots",
            "--profile",
            server.url,
            str(ids_file),
            str(profiled),
            str(profile_text),
        )
        profile = run_json_child(command, cpu=ctx.cpus.client, timeout=120 + profiled / 200)
    micro = run_json_child(
        python_child("benchmarks.hotspots", "--micro"), cpu=ctx.cpus.client, timeout=300
    )
    steps = [
        {
            "level": level,
            "what": LEVELS[level],
            "cpu_us_per_request": min(found["cpu_us_per_request"] for found in runs),
            "per_second": max(found["per_second"] for found in runs),
            "rounds": [found["cpu_us_per_request"] for found in runs],
        }
        for level, runs in enumerate(ladder)
    ]
    purge_us = steps[-1]["cpu_us_per_request"]
    # A function's share of the profiled time, applied to the CPU cost of an unprofiled request.
    for function in profile["functions"]:
        function["approx_us_per_request"] = round(function["inclusive"] * purge_us, 1)
    own = [f for f in profile["functions"] if f["name"] not in _DRIVERS][:5]
    rows = [
        [
            f"hotspots · CPU µs per DELETE, layer by layer (least of {rounds} runs of {count(n)})",
            " → ".join(
                f"{step['what'].replace('+ ', '+')} {step['cpu_us_per_request']:.0f}"
                for step in steps
            ),
        ],
        [
            f"hotspots · bulkdelete's own code ({profile['profiler']})",
            " · ".join(f"{f['name']} {f['inclusive']:.1%}" for f in own),
        ],
        [
            "hotspots · µs per call",
            " · ".join(
                f"{name} {value:.2f}" for name, value in micro.items() if "_alt_" not in name
            ),
        ],
    ]
    return {
        "ids": n,
        "rounds": rounds,
        "server": server.describe(),
        "ladder": steps,
        "profile": profile,
        "profile_text": str(profile_text.relative_to(ROOT)),
        "micro_us_per_call": micro,
        "notes": notes,
        "rows": rows,
    }


# -- the ladder, in a child process ---------------------------------------------------------


def _ladder(level: int, url: str, ids_file: Path, n: int) -> dict[str, Any]:
    import asyncio
    from collections import deque

    import aiohttp
    import anyio
    import yarl

    from bulkdelete import FileReport, Rate, Settings, purge
    from bulkdelete.client import DeleteClient, new_session
    from bulkdelete.pacing import Pacer

    names = ids_file.read_text(encoding="utf-8").split()[:n]
    settings = Settings(api_key="k", base_url=url, rate=Rate(10_000_000, 1.0), concurrency=64)
    settings = settings.checked()

    class NeverWaits(Pacer):
        sent = 0

        async def acquire(self) -> Any:  # Any: the return type has changed before
            self.sent += 1
            return self.sent

    def session() -> aiohttp.ClientSession:
        if level >= 2:
            return new_session(settings)
        connector = aiohttp.TCPConnector(limit=CONCURRENCY)
        return aiohttp.ClientSession(connector=connector, headers={"Authorization": "Bearer k"})

    async def plain() -> None:
        work = deque(names)
        async with session() as client:

            async def worker() -> None:
                while work:
                    url_ = yarl.URL(
                        f"{url}/v2/identities/{quote(work.popleft(), safe='')}", encoded=True
                    )
                    async with client.delete(url_, allow_redirects=level < 2) as response:
                        await response.read()

            if level == 0:
                await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
                return
            async with anyio.create_task_group() as group:
                for _ in range(CONCURRENCY):
                    group.start_soon(worker)

    async def with_client(report: FileReport | None) -> None:
        work = deque(names)
        pacer = NeverWaits(settings.rate) if level == 3 else Pacer(settings.rate)
        async with DeleteClient(settings, pacer) as client:

            async def worker() -> None:
                while work:
                    result = await client.delete(work.popleft())
                    if report is not None:
                        report.write(result)

            async with anyio.create_task_group() as group:
                for _ in range(CONCURRENCY):
                    group.start_soon(worker)

    with tempfile.TemporaryDirectory(prefix="bench-ladder-") as scratch:
        report = FileReport(Path(scratch) / "report.csv") if level >= 5 else None
        cpu_before = _cpu()
        started = time.perf_counter()
        try:
            if level == 0:
                asyncio.run(plain())
            elif level <= 2:
                anyio.run(plain, backend="asyncio")
            elif level <= 5:
                anyio.run(with_client, report, backend="asyncio")
            else:
                anyio.run(purge, names, settings, report, backend="asyncio")
        finally:
            if report is not None:
                report.close()
        seconds = time.perf_counter() - started
        cpu = _cpu() - cpu_before
    return {
        "level": level,
        "requests": n,
        "seconds": round(seconds, 4),
        "per_second": round(n / seconds, 1),
        "cpu_us_per_request": round(cpu / n * 1e6, 1),
    }


def _cpu() -> float:
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


_DRIVERS = {"pipeline._work", "client.DeleteClient.delete", "pipeline.run_job", "pipeline.purge"}


# -- profiling, in a child process -----------------------------------------------------------


def _profile(url: str, ids_file: Path, n: int, text_path: Path) -> dict[str, Any]:
    import anyio

    from bulkdelete import FileReport, Rate, Settings, purge

    names = ids_file.read_text(encoding="utf-8").split()[:n]
    settings = Settings(api_key="k", base_url=url, rate=Rate(10_000_000, 1.0), concurrency=64)
    with tempfile.TemporaryDirectory(prefix="bench-profile-") as scratch:
        report = FileReport(Path(scratch) / "report.csv")

        async def main() -> None:
            try:
                await purge(names, settings, report)
            finally:
                report.close()

        def go() -> None:
            anyio.run(main, backend="asyncio")

        if importlib.util.find_spec("pyinstrument") is not None:
            return _with_pyinstrument(go, n, text_path)
        return _with_cprofile(go, n, text_path)


def _with_pyinstrument(go: Callable[[], None], n: int, text_path: Path) -> dict[str, Any]:
    pyinstrument: Any = importlib.import_module("pyinstrument")
    profiler = pyinstrument.Profiler(interval=0.0005, async_mode="disabled")
    started = time.perf_counter()
    profiler.start()
    go()
    profiler.stop()
    seconds = time.perf_counter() - started
    text_path.write_text(profiler.output_text(unicode=True, color=False), encoding="utf-8")
    root = profiler.last_session.root_frame()
    total = float(root.time)
    inclusive: defaultdict[tuple[str, str], float] = defaultdict(float)
    own: defaultdict[tuple[str, str], float] = defaultdict(float)

    def walk(frame: Any, path: frozenset[tuple[str, str]]) -> None:
        if frame.is_synthetic:
            return
        key = (str(frame.file_path or "<built-in>"), _qualified(frame))
        own[key] += float(frame.total_self_time)
        if key not in path:
            inclusive[key] += float(frame.time)
        for child in frame.children:
            walk(child, path | {key})

    walk(root, frozenset())
    return _summarise("pyinstrument", seconds, n, total, dict(inclusive), dict(own), text_path)


def _qualified(frame: Any) -> str:
    name = str(frame.function)
    owner = frame.class_name
    return f"{owner}.{name}" if owner and not name.startswith(f"{owner}.") else name


def _with_cprofile(go: Callable[[], None], n: int, text_path: Path) -> dict[str, Any]:
    import cProfile
    import io
    import pstats

    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    go()
    profiler.disable()
    seconds = time.perf_counter() - started
    buffer = io.StringIO()
    stats = pstats.Stats(profiler, stream=buffer)
    stats.sort_stats("cumulative").print_stats(80)
    text_path.write_text(buffer.getvalue(), encoding="utf-8")
    inclusive: dict[tuple[str, str], float] = {}
    own: dict[tuple[str, str], float] = {}
    raw: dict[Any, Any] = stats.stats  # type: ignore[attr-defined]
    for (file, _line, function), (_cc, _nc, tottime, cumtime, _callers) in raw.items():
        key = (str(file), str(function))
        own[key] = own.get(key, 0.0) + float(tottime)
        inclusive[key] = max(inclusive.get(key, 0.0), float(cumtime))
    return _summarise("cProfile", seconds, n, seconds, inclusive, own, text_path)


def _summarise(
    profiler: str,
    seconds: float,
    n: int,
    total: float,
    inclusive: dict[tuple[str, str], float],
    own: dict[tuple[str, str], float],
    text_path: Path,
) -> dict[str, Any]:
    by_package: defaultdict[str, float] = defaultdict(float)
    for (file, _), value in own.items():
        by_package[_package(file)] += value
    functions = [
        {
            "name": f"{Path(file).stem}.{name}",
            "file": os.path.relpath(file, ROOT),
            "inclusive": round(value / total, 4),
            "own": round(own.get((file, name), 0.0) / total, 4),
        }
        for (file, name), value in sorted(inclusive.items(), key=lambda item: -item[1])
        if file.startswith(_OWN)
    ]
    top_own = [
        {"function": name, "package": _package(file), "own": round(value / total, 4)}
        for (file, name), value in sorted(own.items(), key=lambda item: -item[1])[:_TOP]
    ]
    return {
        "profiler": profiler,
        "seconds_profiled": round(seconds, 3),
        "requests": n,
        "us_per_request_profiled": round(seconds / n * 1e6, 1),
        "by_package": {
            name: round(value / total, 4)
            for name, value in sorted(by_package.items(), key=lambda item: -item[1])
        },
        "functions": functions[:_TOP],
        "top_own_time": top_own,
        "text": str(text_path),
    }


def _package(file: str) -> str:
    if file.startswith(_OWN):
        return "bulkdelete"
    for name in ("aiohttp", "yarl", "multidict", "propcache", "anyio", "asyncio"):
        if f"{os.sep}{name}{os.sep}" in file:
            return name
    if file.startswith("<") or file == "~":
        return "C builtins"
    return "stdlib/other"


# -- microbenchmarks, in a child process ----------------------------------------------------


def _per_call(action: Callable[[], object], calls: int, repeat: int = 5) -> float:
    """Microseconds per call: the best of ``repeat`` runs of ``action`` making ``calls`` calls."""
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        best = min(best, time.perf_counter() - started)
    return round(best / calls * 1e6, 3)


def _micro() -> dict[str, float]:
    import asyncio

    import anyio
    from yarl import URL

    from bulkdelete.client import IdentityUrls
    from bulkdelete.outcome import Outcome, Result, utc_now
    from bulkdelete.pacing import Pacer, Rate
    from bulkdelete.reader import IdFilter
    from bulkdelete.report import FileReport

    k = 50_000
    names = ids(k)
    base = "http://127.0.0.1:8080"
    found: dict[str, float] = {}
    url = IdentityUrls(base).url  # as DeleteClient builds every request's URL
    found["IdentityUrls.url"] = _per_call(lambda: [url(n) for n in names], k)
    found["IdentityUrls.url_alt_yarl_from_text"] = _per_call(
        lambda: [URL(f"{base}/v2/identities/{quote(n, safe='')}", encoded=True) for n in names], k
    )
    found["utc_now"] = _per_call(lambda: [utc_now() for _ in range(k)], k)
    found["utc_now_alt_milliseconds_formatted"] = _per_call(
        lambda: [_utc_now_formatting_milliseconds() for _ in range(k)], k
    )

    def check_all() -> None:
        check = IdFilter().check  # a fresh filter each round: every ID is new to it
        for line, name in enumerate(names, 1):
            check(line, name)

    found["IdFilter.check"] = _per_call(check_all, k)
    stamp = utc_now()
    rows = [Result(n, Outcome.DELETED, 204, 1, "", "", stamp) for n in names]
    with tempfile.TemporaryDirectory(prefix="bench-micro-") as scratch:
        counter = iter(range(1_000_000))

        def in_loop(write: Callable[[Result], None], done: Callable[[], None]) -> None:
            # As in a run: ten rows a pass of the event loop (strace of a throughput run saw
            # about ten rows per flush), the flush at the end of each pass.
            async def go() -> None:
                for number, row in enumerate(rows, 1):
                    write(row)
                    if number % 10 == 0:
                        await asyncio.sleep(0)
                done()

            asyncio.run(go())

        def write_report() -> None:
            report = FileReport(Path(scratch) / f"r{next(counter)}.csv")
            in_loop(report.write, report.close)

        def write_alt() -> None:
            # The same rows through csv.writer, as FileReport wrote them before its plain join.
            file = (Path(scratch) / f"a{next(counter)}.csv").open("a", encoding="utf-8", newline="")
            writer = csv.writer(file)
            loop_flush = [False]

            def write(row: Result) -> None:
                status = "" if row.http_status is None else row.http_status
                writer.writerow(
                    (
                        row.id,
                        row.outcome.value,
                        status,
                        row.attempts,
                        row.error,
                        row.request_id,
                        row.finished_at,
                    )
                )
                if not loop_flush[0]:
                    loop_flush[0] = True
                    asyncio.get_running_loop().call_soon(flush)

            def flush() -> None:
                loop_flush[0] = False
                file.flush()

            in_loop(write, file.close)

        found["FileReport.write"] = _per_call(write_report, k)
        found["FileReport.write_alt_csv_writer"] = _per_call(write_alt, k)

    async def acquire_many() -> float:
        pacer = Pacer(Rate(10_000_000, 1.0))
        started = time.perf_counter()
        for _ in range(k):
            await pacer.acquire()
        return time.perf_counter() - started

    async def scopes() -> float:
        started = time.perf_counter()
        for _ in range(k):
            with anyio.CancelScope():  # noqa: ASYNC100 - the scope's own cost is measured
                pass
        return time.perf_counter() - started

    found["Pacer.acquire"] = round(
        min(anyio.run(acquire_many, backend="asyncio") for _ in range(5)) / k * 1e6, 3
    )
    found["anyio.CancelScope_in_acquire"] = round(
        min(anyio.run(scopes, backend="asyncio") for _ in range(5)) / k * 1e6, 3
    )
    return found


_stamp_second = -1
_stamp_text = ""


def _utc_now_formatting_milliseconds() -> str:
    """The same text as ``utc_now()``, its milliseconds formatted each time (as it was)."""
    global _stamp_second, _stamp_text
    now = time.time()
    second = int(now)
    if second != _stamp_second:
        _stamp_second = second
        _stamp_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
    return f"{_stamp_text}.{int((now - second) * 1000):03d}Z"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="the child processes of the hotspots benchmark")
    parser.add_argument("--profile", nargs=4, metavar=("URL", "IDS", "COUNT", "TEXT"))
    parser.add_argument("--micro", action="store_true")
    parser.add_argument("--ladder", nargs=4, metavar=("LEVEL", "URL", "IDS", "COUNT"))
    args = parser.parse_args(argv)
    if args.ladder:
        level, url, ids_file, n = args.ladder
        found = _ladder(int(level), url, Path(ids_file), int(n))
    elif args.profile:
        url, ids_file, n, text = args.profile
        found = _profile(url, Path(ids_file), int(n), Path(text))
    elif args.micro:
        found = _micro()
    else:
        parser.error("run it through 'python -m benchmarks --only hotspots'")
    sys.stdout.write(json.dumps(found) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

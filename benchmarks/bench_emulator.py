"""How many DELETEs a second the emulator serves on one core, with faults and limits off.

Starts ``python -m bulkdelete.emulator`` seeded with ``--count`` identities in a subprocess
pinned to one CPU, deletes them all from this process (pinned to another CPU where there is
one) with an aiohttp client keeping ``--concurrency`` requests in flight, and prints the rate.
The result is written as JSON to ``--json PATH`` (or stdout with ``--json -``).

    .venv/bin/python benchmarks/bench_emulator.py --count 50000 --json -
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import quote

import aiohttp
import yarl

TARGET_PER_SECOND = 5_000


def _pin(pid: int, cpu: int) -> bool:
    """Pin ``pid`` (0: this process) to ``cpu`` if the platform and the CPU set allow it."""
    if not hasattr(os, "sched_setaffinity"):
        return False
    available = sorted(os.sched_getaffinity(0))
    if len(available) < 2:
        return False
    os.sched_setaffinity(pid, {available[cpu % len(available)]})
    return True


@contextmanager
def _emulator(count: int, ids_path: Path) -> Iterator[tuple[str, subprocess.Popen[str], bool]]:
    command = [
        sys.executable,
        "-m",
        "bulkdelete.emulator",
        "--port",
        "0",
        "--seed-count",
        str(count),
        "--write-ids",
        str(ids_path),
    ]
    root = Path(__file__).resolve().parent.parent
    process = subprocess.Popen(
        command, cwd=root, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        pinned = _pin(process.pid, 0)
        assert process.stdout is not None
        base_url = process.stdout.readline().strip()
        if not base_url.startswith("http://"):
            raise RuntimeError(f"the emulator did not print its URL (got {base_url!r})")
        yield base_url, process, pinned
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


async def _delete_all(base_url: str, ids: list[str], concurrency: int) -> tuple[float, Counter[int]]:
    urls = [
        yarl.URL(f"{base_url}/v2/identities/{quote(identity, safe='')}", encoded=True)
        for identity in ids
    ]
    statuses: Counter[int] = Counter()
    pending = iter(urls)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def worker() -> None:
            for url in pending:
                async with session.delete(url) as response:
                    await response.read()
                    statuses[response.status] += 1

        # Warm the connection pool so that connecting is not timed.
        async with session.get(f"{base_url}/_emulator/stats") as response:
            await response.read()
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
        elapsed = time.perf_counter() - started
    return elapsed, statuses


async def _server_stats(base_url: str) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"{base_url}/_emulator/stats") as response,
    ):
        stats: dict[str, object] = await response.json()
    return stats


def run(count: int, concurrency: int) -> dict[str, object]:
    """Run the benchmark and return its result."""
    with tempfile.TemporaryDirectory() as scratch:
        ids_path = Path(scratch) / "ids.txt"
        with _emulator(count, ids_path) as (base_url, process, server_pinned):
            client_pinned = _pin(0, 1)
            ids = ids_path.read_text(encoding="utf-8").splitlines()
            elapsed, statuses = asyncio.run(_delete_all(base_url, ids, concurrency))
            stats = asyncio.run(_server_stats(base_url))
            process.send_signal(signal.SIGTERM)
            exit_code = process.wait(timeout=10)
    deletes_by_id = stats["deletes_by_id"]
    assert isinstance(deletes_by_id, dict)
    return {
        "benchmark": "emulator_delete_throughput",
        "identities": count,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "deletes_per_second": round(count / elapsed, 1),
        "target_per_second": TARGET_PER_SECOND,
        "meets_target": count / elapsed >= TARGET_PER_SECOND,
        "client_statuses": {str(status): n for status, n in sorted(statuses.items())},
        "server_deleted": len(stats["deleted_ids"]),  # type: ignore[arg-type]
        "server_stray": stats["stray"],
        "server_repeated_deletes": sum(1 for n in deletes_by_id.values() if n != 1),
        "server_pinned_to_one_cpu": server_pinned,
        "client_pinned_to_another_cpu": client_pinned,
        "emulator_exit_code": exit_code,
        "cpus": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count(),
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--count", type=int, default=50_000, help="identities to delete")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument("--json", metavar="PATH", help="write the result as JSON here ('-': stdout)")
    args = parser.parse_args(argv)
    result = run(args.count, args.concurrency)
    print(
        f"emulator: {result['deletes_per_second']} DELETE/s "
        f"({args.count} deletes in {result['seconds']} s, {args.concurrency} in flight; "
        f"target {TARGET_PER_SECOND}/s)",
        file=sys.stderr,
    )
    if args.json == "-":
        print(json.dumps(result, indent=2))
    elif args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0 if result["meets_target"] else 1


if __name__ == "__main__":
    sys.exit(main())

"""How many DELETEs a second the emulator serves on one CPU, with faults and limits off.

Starts ``python -m bulkdelete.emulator --seed-count COUNT`` in a subprocess pinned to one CPU,
deletes every identity from this process (pinned to another CPU where there is one) with a lean
aiohttp client keeping ``--concurrency`` requests in flight, and prints the rate. The result is
written as JSON to ``--json PATH`` (``-``: stdout).

    python -m benchmarks.bench_emulator --count 50000 --json -
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from collections import Counter
from pathlib import Path
from urllib.parse import quote

import aiohttp
import yarl

from benchmarks._harness import Cpus, emulator_server, ids, pin

TARGET_PER_SECOND = 5_000


async def _delete_all(
    base_url: str, names: list[str], concurrency: int
) -> tuple[float, Counter[int]]:
    urls = [
        yarl.URL(f"{base_url}/v2/identities/{quote(name, safe='')}", encoded=True) for name in names
    ]
    statuses: Counter[int] = Counter()
    pending = iter(urls)
    connector = aiohttp.TCPConnector(limit=concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def warm() -> None:
            async with session.get(f"{base_url}/_emulator/stats") as response:
                await response.read()

        async def worker() -> None:
            for url in pending:
                async with session.delete(url) as response:
                    await response.read()
                    statuses[response.status] += 1

        # Open every connection before the clock starts, so that connecting is not timed.
        await asyncio.gather(*(warm() for _ in range(concurrency)))
        started = time.perf_counter()
        async with asyncio.TaskGroup() as group:
            for _ in range(concurrency):
                group.create_task(worker())
        elapsed = time.perf_counter() - started
    return elapsed, statuses


def run(count: int, concurrency: int) -> dict[str, object]:
    """Run the benchmark and return its result."""
    cpus = Cpus.detect()
    with emulator_server(cpus.server, "--seed-count", str(count)) as server:
        client_pinned = pin(0, cpus.client)
        elapsed, statuses = asyncio.run(_delete_all(server.url, ids(count), concurrency))
        stats = server.stats()
    deletes_by_id: dict[str, int] = stats["deletes_by_id"]
    return {
        "benchmark": "emulator_delete_throughput",
        "identities": count,
        "concurrency": concurrency,
        "seconds": round(elapsed, 3),
        "deletes_per_second": round(count / elapsed, 1),
        "target_per_second": TARGET_PER_SECOND,
        "meets_target": count / elapsed >= TARGET_PER_SECOND,
        "client_statuses": {str(status): n for status, n in sorted(statuses.items())},
        "server_deleted": len(stats["deleted_ids"]),
        "server_stray": stats["stray"],
        "server_repeated_deletes": sum(1 for n in deletes_by_id.values() if n != 1),
        "server": server.describe(),
        "client_pinned_to_another_cpu": client_pinned,
        "python": sys.version.split()[0],
        "aiohttp": aiohttp.__version__,
    }


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark from the command line; exit 1 when it falls short of the target."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--count", type=int, default=50_000, help="identities to delete")
    parser.add_argument("--concurrency", type=int, default=64, help="requests in flight")
    parser.add_argument(
        "--json", metavar="PATH", help="write the result as JSON here ('-': stdout)"
    )
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

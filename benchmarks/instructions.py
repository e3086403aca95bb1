"""CPU per DELETE counted in instructions (valgrind's callgrind), not timed.

On a shared virtual machine the wall-clock throughput ratio moves 10-20% between runs. An
instruction count barely moves: callgrind counts what the client process executes (user space
only; the kernel's share, the system calls, is not in it). Each client runs twice under
``valgrind --tool=callgrind``, deleting LOW and then HIGH IDs against the fast server; the
difference over HIGH - LOW is its instructions per DELETE, with start-up and imports taken
out. Clients: the bare aiohttp pool (the throughput reference, on asyncio's own loop) and
``purge()`` with its report on, on uvloop and on asyncio's own loop.

Callgrind runs a program some 50 times slower, so its event loop finds more answers ready at
each turn than at full speed; the counts are for comparing clients under the same condition.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    BenchmarkError,
    Context,
    Findings,
    Server,
    count,
    fast_server,
    ratio,
    run_measured,
    write_ids,
)
from benchmarks.throughput import client_command

NAME = "instructions"
TITLE = "instructions per DELETE (callgrind): bulkdelete beside the bare aiohttp pool"

CLIENTS = {
    "bare": ("bare aiohttp pool", ()),
    "bulkdelete": ("bulkdelete purge() on uvloop", ()),
    "bulkdelete-stdlib": ("bulkdelete purge() on asyncio's loop", ("--stdlib-loop",)),
}
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def run(ctx: Context) -> Findings:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        return {
            "notes": ["valgrind is not installed (apt install valgrind): skipped"],
            "rows": [["instructions per DELETE", "skipped: valgrind is not installed"]],
        }
    low, high = ctx.size(1_000, 300), ctx.size(3_000, 900)
    ids_file = write_ids(ctx.scratch / "instructions-ids.txt", high)
    clients: dict[str, dict[str, Any]] = {}
    for kind, (label, extra) in CLIENTS.items():
        print(f"  {label}: {count(low)} and {count(high)} DELETEs under callgrind…", flush=True)
        counts = {}
        for n in (low, high):
            # A fresh server each time: the emulator (when nginx is missing) must hold the IDs.
            with fast_server(ctx.cpus.server, n, ctx.server) as server:
                counts[n] = _instructions(valgrind, server, kind, extra, ids_file, n, ctx)
        clients[kind] = {
            "label": label,
            "server": server.describe(),
            "instructions": {str(n): value for n, value in counts.items()},
            "per_request": round((counts[high] - counts[low]) / (high - low)),
        }
    bare = clients["bare"]["per_request"]
    ratios = {
        kind: ratio(found["per_request"], bare) for kind, found in clients.items() if kind != "bare"
    }
    text = " · ".join(
        f"{found['label']} {count(found['per_request'])}" for found in clients.values()
    )
    relative = " · ".join(
        f"{clients[kind]['label'].removeprefix('bulkdelete purge() ')} {value:.2f}"
        for kind, value in ratios.items()
        if value is not None
    )
    return {
        "server": clients["bare"]["server"],
        "ids": [low, high],
        "clients": clients,
        "ratios_to_bare": ratios,
        "notes": [],
        "rows": [
            [f"instructions per DELETE (callgrind, {count(high)} - {count(low)} IDs)", text],
            ["instructions per DELETE, bulkdelete's ÷ the bare pool's", relative],
        ],
    }


def _instructions(
    valgrind: str,
    server: Server,
    kind: str,
    extra: tuple[str, ...],
    ids_file: Path,
    n: int,
    ctx: Context,
) -> int:
    client = "bulkdelete" if kind.startswith("bulkdelete") else kind
    command = [
        valgrind,
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        *client_command(client, server, ids_file, n, *extra),
    ]
    done = run_measured(command, cpu=ctx.cpus.client, timeout=300 + n / 10)
    found = _COLLECTED.search(done.stderr)
    if done.returncode != 0 or found is None:
        raise BenchmarkError(
            f"callgrind of {kind} failed (exit {done.returncode}): {done.stderr[-600:]}"
        )
    return int(found.group(1))

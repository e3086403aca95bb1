"""Throughput: DELETEs per second against a server that answers at once, side by side.

The same IDs go to the same server from five clients, each in a fresh process pinned to the
client CPU: bulkdelete's ``purge()`` (pacing off, report on), the reference (a bare aiohttp
worker pool: no pacing, no report), orq-ai-sdk's ``identities.delete_async``, and ``requests``
in threads two ways: a ``Session`` per thread (kept-alive connections) and ``requests.delete()``
(a new connection per request, as a quick script does it). bulkdelete and the reference take
turns, in four rounds of N/4 IDs each, and the fastest round of each counts: a burst of other
load on the machine then spoils one round, not the comparison. The server is nginx answering
204 when it is installed, else the emulator (then a fresh one, seeded alike, for every round,
since a DELETE removes what it deletes).
"""

from __future__ import annotations

import importlib.util
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from benchmarks._harness import (
    Context,
    Findings,
    Server,
    count,
    emulator_server,
    fast_server,
    mib,
    nginx_path,
    noise_note,
    python_child,
    ratio,
    run_json_child,
    write_ids,
)
from bulkdelete.pipeline import loop_options

NAME = "throughput"
TITLE = "DELETE/s against a fast local server: bulkdelete, bare aiohttp, orq-ai-sdk, requests"

CONCURRENCY = 64
REQUESTS_THREADS = 32
ROUNDS = 4
"""bulkdelete and the bare pool alternate this many times, N/ROUNDS IDs each time."""
SERVER_BOUND = 0.9
"""A server CPU busier than this share of a run's wall time is what limits that run."""
LABELS = {
    "bulkdelete": "bulkdelete purge()" + (" on uvloop" if loop_options() else ""),
    "bare": "bare aiohttp pool",
    "sdk": "orq-ai-sdk delete_async",
    "requests": f"requests, {REQUESTS_THREADS} threads, a Session each",
    "requests-plain": f"requests.delete(), {REQUESTS_THREADS} threads",
}


def sizes(ctx: Context) -> dict[str, int]:
    """DELETEs per client in all: the two slow ones get fewer, or they would take minutes."""
    return {
        "bulkdelete": ctx.size(100_000, 20_000),
        "bare": ctx.size(100_000, 20_000),
        "sdk": ctx.size(2_000, 500),
        "requests": ctx.size(6_000, 2_000),
        "requests-plain": ctx.size(3_000, 1_000),
    }


def client_command(kind: str, server: Server, ids_file: Path, n: int, *extra: str) -> list[str]:
    """The command line of one ``benchmarks._client`` process (see its docstring)."""
    concurrency = REQUESTS_THREADS if kind.startswith("requests") else CONCURRENCY
    return python_child(
        "benchmarks._client",
        kind,
        "--url",
        server.url,
        "--ids",
        str(ids_file),
        "--count",
        str(n),
        "--concurrency",
        str(concurrency),
        *extra,
    )


def run_client(
    ctx: Context, server: Server, kind: str, ids_file: Path, n: int, *extra: str
) -> dict[str, Any]:
    """One client process deleting the first ``n`` IDs of ``ids_file``; its JSON result."""
    command = client_command(kind, server, ids_file, n, *extra)
    # Generous: the slowest client seen does 250/s; a stuck one is stopped all the same.
    found = run_json_child(command, cpu=ctx.cpus.client, timeout=60 + n / 50, cpus=ctx.cpus)
    found["server"] = server.describe()
    return found


def run(ctx: Context) -> Findings:
    totals = sizes(ctx)
    kinds = ["bulkdelete", "bare", "sdk"]
    notes: list[str] = []
    if importlib.util.find_spec("requests") is not None:
        kinds += ["requests", "requests-plain"]
    else:
        notes.append("requests is not installed: its client was skipped")
    schedule = [(kind, totals[kind] // ROUNDS) for _ in range(ROUNDS) for kind in kinds[:2]]
    schedule += [(kind, totals[kind]) for kind in kinds[2:]]
    ids_file = write_ids(ctx.scratch / "throughput-ids.txt", max(totals.values()))
    rounds: dict[str, list[dict[str, Any]]] = {kind: [] for kind in kinds}
    use_nginx = ctx.server != "emulator" and nginx_path() is not None
    with ExitStack() as stack:
        shared = (
            stack.enter_context(fast_server(ctx.cpus.server, 0, ctx.server)) if use_nginx else None
        )
        for kind, n in schedule:
            print(f"  {LABELS[kind]}: {count(n)} DELETEs…", flush=True)
            if shared is not None:
                found = run_client(ctx, shared, kind, ids_file, n)
            else:
                with emulator_server(ctx.cpus.server, "--seed-count", str(n)) as server:
                    found = run_client(ctx, server, kind, ids_file, n)
            rounds[kind].append(found)
            note = noise_note(f"{LABELS[kind]} ({count(n)} DELETEs)", found["load"])
            if note:
                notes.append(note)
    busiest = max(
        (
            found["load"].get("server_cpu_busy_share", 0.0)
            for runs in rounds.values()
            for found in runs
        ),
        default=0.0,
    )
    if not use_nginx:
        notes.append(
            "server: the emulator (nginx not installed, or --server emulator), a fresh one per "
            f"round; its CPU was at most {busiest:.0%} busy"
        )
    if busiest > SERVER_BOUND:
        notes.append(
            f"noise: the server's CPU was {busiest:.0%} busy during a run: the fastest clients "
            "are held back by the server, and their ratios understate the gaps"
        )
    clients: dict[str, dict[str, Any]] = {}
    for kind, runs in rounds.items():
        best = max(runs, key=lambda found: float(found["per_second"]))
        clients[kind] = {**best, "rounds": runs, "total_requests": totals[kind]}
    bulk = clients["bulkdelete"]["per_second"]
    ratios = {
        "bulkdelete_over_bare": ratio(bulk, clients["bare"]["per_second"]),
        "bulkdelete_over_sdk": ratio(bulk, clients["sdk"]["per_second"]),
        "bulkdelete_over_requests": ratio(bulk, clients.get("requests", {}).get("per_second")),
        "bulkdelete_over_requests_plain": ratio(
            bulk, clients.get("requests-plain", {}).get("per_second")
        ),
    }
    rows = [
        [f"throughput · {LABELS[kind]} ({_size(kind, totals)})", _brief(found)]
        for kind, found in clients.items()
    ]
    parts = [
        f"÷ bare {ratios['bulkdelete_over_bare']:.2f}",
        f"÷ sdk {ratios['bulkdelete_over_sdk']:.1f}",
    ]
    if ratios["bulkdelete_over_requests"] is not None:
        parts.append(f"÷ requests with Sessions {ratios['bulkdelete_over_requests']:.1f}")
    if ratios["bulkdelete_over_requests_plain"] is not None:
        parts.append(f"÷ requests.delete() {ratios['bulkdelete_over_requests_plain']:.1f}")
    rows.append(["throughput · bulkdelete's DELETE/s", " · ".join(parts)])
    return {
        "server": clients["bulkdelete"]["server"],
        "concurrency": CONCURRENCY,
        "requests_threads": REQUESTS_THREADS,
        "rounds": ROUNDS,
        "server_cpu_busiest_share": busiest,
        "clients": clients,
        "ratios": ratios,
        "notes": notes,
        "rows": rows,
    }


def _size(kind: str, totals: dict[str, int]) -> str:
    if kind in ("bulkdelete", "bare"):
        return f"best of {ROUNDS} rounds of {count(totals[kind] // ROUNDS)}"
    return count(totals[kind])


def _brief(client: dict[str, Any]) -> str:
    return (
        f"{count(client['per_second'])} DELETE/s · {count(client['cpu_us_per_request'])} µs "
        f"CPU/req · peak RSS {mib(client['peak_rss_bytes'])}"
    )

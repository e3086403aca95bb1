"""Throughput: DELETEs per second against a server that answers at once, side by side.

The same IDs go to the same server from four clients, each in a fresh process pinned to the
client CPU: bulkdelete's ``purge()`` (pacing off, report on), the reference (a bare aiohttp
worker pool: no pacing, no report), orq-ai-sdk's ``identities.delete_async`` and ``requests``
in threads. The server is nginx answering 204 when it is installed, else the emulator (then a
fresh one, seeded alike, per client, since a DELETE removes what it deletes).
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
    python_child,
    ratio,
    run_json_child,
    write_ids,
)

NAME = "throughput"
TITLE = "DELETE/s against a fast local server: bulkdelete, bare aiohttp, orq-ai-sdk, requests"

CONCURRENCY = 64
REQUESTS_THREADS = 32
_LABELS = {
    "bulkdelete": "bulkdelete purge()",
    "bare": "bare aiohttp pool",
    "sdk": "orq-ai-sdk delete_async",
    "requests": f"requests, {REQUESTS_THREADS} threads",
}


def sizes(ctx: Context) -> dict[str, int]:
    return {
        "bulkdelete": ctx.size(100_000, 20_000),
        "bare": ctx.size(100_000, 20_000),
        "sdk": ctx.size(2_000, 500),
        "requests": ctx.size(6_000, 2_000),
    }


def run_client(
    ctx: Context, server: Server, kind: str, ids_file: Path, n: int, *extra: str
) -> dict[str, Any]:
    concurrency = REQUESTS_THREADS if kind == "requests" else CONCURRENCY
    command = python_child(
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
    # Generous: the slowest client seen does 200/s; a stuck one is stopped all the same.
    return run_json_child(command, cpu=ctx.cpus.client, timeout=60 + n / 50)


def run(ctx: Context) -> Findings:
    n_by_kind = sizes(ctx)
    kinds = ["bulkdelete", "bare", "sdk"]
    notes: list[str] = []
    if importlib.util.find_spec("requests") is not None:
        kinds.append("requests")
    else:
        notes.append("requests is not installed: its client was skipped")
    ids_file = write_ids(ctx.scratch / "throughput-ids.txt", max(n_by_kind.values()))
    clients: dict[str, dict[str, Any]] = {}
    use_nginx = ctx.server != "emulator" and nginx_path() is not None
    with ExitStack() as stack:
        shared = (
            stack.enter_context(fast_server(ctx.cpus.server, 0, ctx.server)) if use_nginx else None
        )
        for kind in kinds:
            n = n_by_kind[kind]
            print(f"  {_LABELS[kind]}: {count(n)} DELETEs…", flush=True)
            if shared is not None:
                server = shared
                clients[kind] = run_client(ctx, server, kind, ids_file, n)
            else:
                with emulator_server(ctx.cpus.server, "--seed-count", str(n)) as server:
                    clients[kind] = run_client(ctx, server, kind, ids_file, n)
            clients[kind]["server"] = server.describe()
    if not use_nginx:
        notes.append(
            "server: the emulator (nginx not installed or --server emulator): it is slower "
            "than the clients, so the ratios understate bulkdelete's lead over slow clients "
            "and its gap to the bare pool"
        )
    bulk = clients["bulkdelete"]["per_second"]
    ratios = {
        "bulkdelete_over_bare": ratio(bulk, clients["bare"]["per_second"]),
        "bulkdelete_over_sdk": ratio(bulk, clients["sdk"]["per_second"]),
        "bulkdelete_over_requests": ratio(bulk, clients.get("requests", {}).get("per_second")),
    }
    rows = [
        [f"throughput · {_LABELS[k]} ({count(c['requests'])})", _brief(c)]
        for k, c in clients.items()
    ]
    parts = [
        f"÷ bare {ratios['bulkdelete_over_bare']:.2f}",
        f"÷ sdk {ratios['bulkdelete_over_sdk']:.1f}",
    ]
    if ratios["bulkdelete_over_requests"] is not None:
        parts.append(f"÷ requests {ratios['bulkdelete_over_requests']:.1f}")
    rows.append(["throughput · bulkdelete ratios", " · ".join(parts)])
    return {
        "server": clients["bulkdelete"]["server"],
        "concurrency": CONCURRENCY,
        "requests_threads": REQUESTS_THREADS,
        "clients": clients,
        "ratios": ratios,
        "notes": notes,
        "rows": rows,
    }


def _brief(client: dict[str, Any]) -> str:
    return (
        f"{count(client['per_second'])} DELETE/s · {count(client['cpu_us_per_request'])} µs "
        f"CPU/req · peak RSS {mib(client['peak_rss_bytes'])}"
    )

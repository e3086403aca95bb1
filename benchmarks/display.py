"""The progress display's cost: the same purge with and without the live rich display.

Both runs delete the same number of IDs against the fast server with pacing off, taking turns
over two rounds; the display renders to a terminal-like console in memory at its usual 4
frames a second. The finding is the ratio of their rates and their CPU per request.
"""

from __future__ import annotations

from benchmarks._harness import Context, Findings, count, fast_server, write_ids
from benchmarks.throughput import run_client

NAME = "display"
TITLE = "the live display's cost: purge() with and without it, pacing off"

ROUNDS = 2


def run(ctx: Context) -> Findings:
    n = ctx.size(40_000, 10_000)
    ids_file = write_ids(ctx.scratch / "display-ids.txt", n)
    plain: list[dict[str, object]] = []
    shown: list[dict[str, object]] = []
    with fast_server(ctx.cpus.server, n, ctx.server) as server:
        for _ in range(ROUNDS):
            plain.append(run_client(ctx, server, "bulkdelete", ids_file, n))
            shown.append(run_client(ctx, server, "bulkdelete", ids_file, n, "--display"))
    best_plain = max(plain, key=lambda found: float(str(found["per_second"])))
    best_shown = max(shown, key=lambda found: float(str(found["per_second"])))
    ratio = float(str(best_shown["per_second"])) / float(str(best_plain["per_second"]))
    return {
        "ids": n,
        "server": server.describe(),
        "without_display": best_plain,
        "with_display": best_shown,
        "ratio": round(ratio, 4),
        "rows": [
            [
                f"display · purge() with the live display vs without ({count(n)} IDs)",
                f"{ratio:.2f} of the rate ({count(float(str(best_shown['per_second'])))}/s vs "
                f"{count(float(str(best_plain['per_second'])))}/s)",
            ]
        ],
    }

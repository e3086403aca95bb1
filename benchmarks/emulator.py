"""The emulator's own speed: ``benchmarks/bench_emulator.py`` (a colleague's), run as it is.

Its ``run(count, concurrency)`` pins the calling process, so it is called in a child process:
``python -m benchmarks.emulator --child COUNT CONCURRENCY`` prints its result as JSON. When it
has no such function (it is still in the works), the script itself is run with ``--json -``.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
from typing import Any

from benchmarks._harness import Context, Findings, count, python_child, run_json_child

NAME = "emulator"
TITLE = "emulator: DELETE/s it serves on one CPU (bench_emulator.py)"

CONCURRENCY = 64


def run(ctx: Context) -> Findings:
    n = ctx.size(30_000, 10_000)
    command = python_child("benchmarks.emulator", "--child", str(n), str(CONCURRENCY))
    # Not pinned here: bench_emulator.py pins the server and itself.
    result = run_json_child(command, cpu=None, timeout=120 + n / 500)
    rate = result.get("deletes_per_second")
    target = result.get("target_per_second")
    text = f"{count(rate)} DELETE/s" if isinstance(rate, int | float) else "no rate reported"
    if isinstance(target, int | float):
        text += f" (target {count(target)}/s)"
    return {
        "ids": n,
        "concurrency": CONCURRENCY,
        "bench_emulator": result,
        "notes": [],
        "rows": [[f"emulator · bench_emulator.py ({count(n)} IDs)", text]],
    }


def _child(n: int, concurrency: int) -> dict[str, Any]:
    module = importlib.import_module("benchmarks.bench_emulator")
    function = getattr(module, "run", None)
    if callable(function) and len(inspect.signature(function).parameters) == 2:
        result: dict[str, Any] = function(n, concurrency)
        return result
    return run_json_child(
        python_child("benchmarks.bench_emulator", "--count", str(n), "--json", "-"),
        cpu=None,
        timeout=120 + n / 500,
        accept_exit=(0, 1),  # 1: it fell short of its target, which the result tells
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="run bench_emulator.py, print its JSON")
    parser.add_argument("--child", nargs=2, type=int, metavar=("COUNT", "CONCURRENCY"))
    args = parser.parse_args(argv)
    if args.child is None:
        parser.error("run it through 'python -m benchmarks --only emulator'")
    sys.stdout.write(json.dumps(_child(*args.child)) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Run the benchmark suite: ``make bench`` or ``python -m benchmarks [--quick] [--only NAME]``.

Runs each benchmark in turn (servers and clients in their own processes, on loopback only),
writes everything measured to ``benchmarks/results/latest.json`` and prints a short markdown
table for the README. ``--only hotspots`` profiles bulkdelete's hot path (not part of the
default run). Exit code 0 when every benchmark ran, 1 when one failed.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.metadata
import json
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from types import ModuleType
from typing import Any

from benchmarks._harness import (
    NGINX_HINT,
    RESULTS_DIR,
    ROOT,
    Context,
    Cpus,
    Findings,
    nginx_path,
)

DEFAULT = (
    "throughput",
    "instructions",
    "pace",
    "latency",
    "display",
    "memory",
    "resume",
    "emulator",
)
FAST_SERVER = frozenset({"throughput", "instructions", "memory", "hotspots"})
"""The benchmarks that want the fastest server there is (nginx, else the emulator)."""
EXTRA = ("hotspots",)
"""Run only when named with --only: profiling slows what it watches."""


def _module(name: str) -> ModuleType:
    return importlib.import_module(f"benchmarks.{name}")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of bulkdelete against local servers (loopback only).",
        epilog=f"benchmarks: {', '.join(DEFAULT)}; also, only when named: {', '.join(EXTRA)}",
    )
    parser.add_argument(
        "--quick", action="store_true", help="smaller counts and shorter runs (about a minute)"
    )
    parser.add_argument(
        "--only",
        action="append",
        metavar="NAME",
        help="run only this benchmark (repeat, or separate names with commas)",
    )
    parser.add_argument(
        "--server",
        choices=("auto", "nginx", "emulator"),
        default="auto",
        help="the fast server of throughput and memory: nginx when installed (auto), or the "
        "emulator",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=RESULTS_DIR / "latest.json",
        help="where the results go (default: benchmarks/results/latest.json)",
    )
    parser.add_argument("--list", action="store_true", help="list the benchmarks and stop")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    known = DEFAULT + EXTRA
    if args.list:
        for name in known:
            extra = "  (only with --only)" if name in EXTRA else ""
            print(f"{name:<11} {_module(name).TITLE}{extra}")
        return 0
    names = list(DEFAULT)
    if args.only:
        names = [part.strip() for item in args.only for part in item.split(",") if part.strip()]
        unknown = [name for name in names if name not in known]
        if unknown:
            parser.error(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(known)}")
    cpus = Cpus.detect()
    fast = FAST_SERVER & set(names)
    if fast and args.server == "auto" and nginx_path() is None:
        print(f"note: {NGINX_HINT}", file=sys.stderr)
    results: dict[str, Any] = {
        "suite": "bulkdelete benchmarks",
        "quick": args.quick,
        "started_at": _now(),
        "machine": _machine(cpus),
        "versions": _versions(),
        "git": _git(),
        "benchmarks": {},
    }
    mode = "quick" if args.quick else "full"
    where = (
        f"client on CPU {cpus.client}, servers on CPU {cpus.server}"
        if cpus.pinned
        else "not pinned (fewer than 2 CPUs)"
    )
    print(f"bulkdelete benchmarks ({mode} run; {where})", flush=True)
    began = time.monotonic()
    failed = 0
    with tempfile.TemporaryDirectory(prefix="bulkdelete-bench-") as scratch:
        for number, name in enumerate(names, 1):
            ctx = Context(quick=args.quick, cpus=cpus, scratch=Path(scratch), server=args.server)
            started = time.monotonic()
            try:
                module = _module(name)
                print(f"[{number}/{len(names)}] {name}: {module.TITLE}", flush=True)
                findings: Findings = module.run(ctx)
                findings["status"] = "ok"
            except Exception as exc:  # one failed benchmark does not stop the others
                failed += 1
                findings = {"status": "error", "error": f"{type(exc).__name__}: {exc}"}
                findings["rows"] = [[name, f"**failed**: {type(exc).__name__}: {exc}"[:200]]]
                print(f"  failed: {findings['error']}", file=sys.stderr, flush=True)
            findings["seconds"] = round(time.monotonic() - started, 1)
            results["benchmarks"][name] = findings
            for label, text in findings.get("rows", []):
                print(f"  {label}: {text}", flush=True)
            for note in findings.get("notes", []):
                print(f"  {note}", flush=True)
            _write(args.out, results)  # after each one, so an interruption keeps what ran
    results["finished_at"] = _now()
    results["seconds"] = round(time.monotonic() - began, 1)
    table = markdown(results)
    results["markdown"] = table
    _write(args.out, results)
    print()
    print(table)
    print(f"\nresults: {_shown(args.out)} · {results['seconds']:.0f} s in all")
    return 1 if failed else 0


def markdown(results: dict[str, Any]) -> str:
    """The README table: a line saying where it ran, then one row per measurement."""
    machine = results["machine"]
    versions = results["versions"]
    servers = sorted(
        {
            str(found["server"]).removesuffix(" on its own CPU")
            for name, found in results["benchmarks"].items()
            if name in FAST_SERVER and isinstance(found.get("server"), str)
        }
    )
    where = (
        f"client and servers pinned to separate CPUs of {machine['cpus']}"
        if machine["pinned"]
        else f"{machine['cpus']} CPU(s), not pinned"
    )
    intro = (
        f"_{results['started_at'][:10]} · {'quick' if results['quick'] else 'full'} run · "
        f"Python {machine['python']} · aiohttp {versions.get('aiohttp')} · "
        f"{'fast server: ' + ', '.join(servers) + ' · ' if servers else ''}{where} · loopback_"
    )
    lines = [intro, "", "| benchmark | result |", "|---|---|"]
    noise: list[str] = []
    for found in results["benchmarks"].values():
        for label, text in found.get("rows", []):
            lines.append(f"| {label} | {text} |")
        noise += [note for note in found.get("notes", []) if note.startswith("noise:")]
    if noise:
        lines += ["", *(f"_{note}_" for note in noise)]
    return "\n".join(lines)


def _write(path: Path, results: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", "utf-8")
    temporary.replace(path)


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _now() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _machine(cpus: Cpus) -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "platform": platform.platform(),
        "processor": platform.processor() or platform.machine(),
        "cpus": cpus.count,
        "pinned": cpus.pinned,
        "client_cpu": cpus.client,
        "server_cpu": cpus.server,
    }


def _versions() -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for package in ("bulkdelete", "aiohttp", "anyio", "yarl", "orq-ai-sdk", "httpx", "requests"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            found[package] = None
    binary = nginx_path()
    found["nginx"] = None
    if binary is not None:
        text = _output([binary, "-v"], stderr=True)
        found["nginx"] = text.rsplit("/", 1)[-1].strip() if text else None
    return found


def _git() -> dict[str, Any]:
    commit = _output(["git", "rev-parse", "HEAD"])
    status = _output(["git", "status", "--porcelain", "--", "bulkdelete"])
    return {"commit": commit or None, "bulkdelete_changed_since_commit": bool(status)}


def _output(command: list[str], *, stderr: bool = False) -> str:
    try:
        done = subprocess.run(
            command, cwd=ROOT, capture_output=True, text=True, timeout=10, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return ""
    return (done.stderr if stderr else done.stdout).strip()


if __name__ == "__main__":
    sys.exit(main())

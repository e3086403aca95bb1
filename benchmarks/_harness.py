"""What every benchmark shares: CPU pinning, local servers, child processes, ID lists.

Every server here listens on 127.0.0.1 only, every child process runs under a timeout, and
every server is stopped when its ``with`` block ends, whatever happened inside it.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Collection, Iterator, Sequence
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

from benchmarks._rss import PeakWatch

ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = Path(__file__).resolve().parent / "results"
HOST = "127.0.0.1"
NGINX_HINT = (
    "nginx is not installed: falling back to the emulator, which is far slower than the "
    "clients it serves, so the throughput ratios shrink towards 1. For a fast server: "
    "apt-get install nginx-light (or nginx)"
)
_STARTUP_TIMEOUT = 60.0
_STOP_TIMEOUT = 10.0


class BenchmarkError(RuntimeError):
    """A benchmark could not run (a server did not start, a child failed or timed out)."""


@dataclass(frozen=True, slots=True)
class Cpus:
    """Where the client and the server run: one CPU each when there are two or more."""

    client: int | None
    server: int | None

    @classmethod
    def detect(cls) -> Cpus:
        if not hasattr(os, "sched_getaffinity"):
            return cls(None, None)
        available = sorted(os.sched_getaffinity(0))
        if len(available) < 2:
            return cls(None, None)
        return cls(available[0], available[1])

    @property
    def pinned(self) -> bool:
        return self.client is not None

    @property
    def count(self) -> int:
        """How many CPUs this process may run on."""
        if hasattr(os, "sched_getaffinity"):
            return len(os.sched_getaffinity(0))
        return os.cpu_count() or 1


def pin(pid: int, cpu: int | None) -> bool:
    """Pin ``pid`` (0: this process) to ``cpu``; False when that cannot be done here."""
    if cpu is None or not hasattr(os, "sched_setaffinity"):
        return False
    try:
        os.sched_setaffinity(pid, {cpu})
    except OSError:
        return False
    return True


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def wait_for_port(port: int, process: subprocess.Popen[Any], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise BenchmarkError(f"the server exited with code {process.returncode} at start")
        try:
            with socket.create_connection((HOST, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.02)
    raise BenchmarkError(f"nothing listens on {HOST}:{port} after {timeout:g} s")


def stop(process: subprocess.Popen[Any], sig: int = signal.SIGTERM) -> int:
    """Stop a child we started: ``sig``, then SIGKILL if it is still there after a while."""
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout=_STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    return int(process.returncode)


def ids(count: int, start: int = 1) -> list[str]:
    """The IDs every benchmark deletes: the emulator's ``--seed-count`` names, ``user-000001``..."""
    return [f"user-{number:06d}" for number in range(start, start + count)]


def write_ids(path: Path, count: int, start: int = 1) -> Path:
    with path.open("w", encoding="utf-8") as out:
        step = 100_000
        for first in range(start, start + count, step):
            chunk = ids(min(step, start + count - first), first)
            out.write("\n".join(chunk))
            out.write("\n")
    return path


# -- servers ------------------------------------------------------------------------------


@dataclass(slots=True)
class Server:
    """A running local server."""

    kind: str  # "nginx" or "emulator"
    url: str
    process: subprocess.Popen[Any]
    pinned: bool
    version: str = ""
    notes: list[str] = field(default_factory=list)

    def stats(self) -> dict[str, Any]:
        """The emulator's ``GET /_emulator/stats`` (an empty dict for nginx)."""
        if self.kind != "emulator":
            return {}
        with urllib.request.urlopen(f"{self.url}/_emulator/stats", timeout=30) as response:
            data: dict[str, Any] = json.loads(response.read())
        return data

    def describe(self) -> str:
        where = " on its own CPU" if self.pinned else ""
        return f"{self.kind} {self.version}".strip() + where


def nginx_path() -> str | None:
    return shutil.which("nginx") or next(
        (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if os.access(p, os.X_OK)), None
    )


def _nginx_conf(scratch: Path, port: int, cpu: int | None, build: str) -> str:
    temp = ["client_body_temp_path"]
    for module in ("proxy", "fastcgi", "uwsgi", "scgi"):
        if f"--without-http_{module}_module" not in build:
            temp.append(f"{module}_temp_path")
    temp_lines = "\n".join(f"    {name} {scratch / name};" for name in temp)
    affinity = f"worker_cpu_affinity {'1' + '0' * cpu};" if cpu is not None else ""
    return f"""\
worker_processes 1;
{affinity}
pid {scratch / "nginx.pid"};
error_log {scratch / "error.log"} warn;
events {{
    worker_connections 4096;
}}
http {{
    access_log off;
    keepalive_requests 10000000;
    keepalive_timeout 75s;
{temp_lines}
    server {{
        listen {HOST}:{port} backlog=4096;
        location /v2/identities/ {{
            return 204;
        }}
        location / {{
            return 404;
        }}
    }}
}}
"""


@contextmanager
def nginx_server(cpu: int | None) -> Iterator[Server]:
    """nginx answering 204 to everything under /v2/identities/, one worker, on ``cpu``."""
    binary = nginx_path()
    if binary is None:
        raise BenchmarkError("nginx is not installed")
    build = subprocess.run(
        [binary, "-V"], capture_output=True, text=True, timeout=10, check=False
    ).stderr
    version = build.splitlines()[0].rsplit("/", 1)[-1] if build else ""
    with tempfile.TemporaryDirectory(prefix="bench-nginx-") as tmp:
        scratch = Path(tmp)
        os.chmod(scratch, 0o755)  # workers may run as another user
        last_error = ""
        for _ in range(3):  # the free port may be taken between probing and listening
            port = free_port()
            conf = scratch / "nginx.conf"
            conf.write_text(_nginx_conf(scratch, port, cpu, build), encoding="utf-8")
            command = [binary, "-p", str(scratch), "-e", str(scratch / "error.log")]
            process = subprocess.Popen(
                [*command, "-c", str(conf), "-g", "daemon off;"],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                text=True,
            )
            pinned = pin(process.pid, cpu)
            try:
                wait_for_port(port, process, _STARTUP_TIMEOUT)
            except BenchmarkError as exc:
                stop(process, signal.SIGTERM)
                err = process.stderr.read() if process.stderr else ""
                last_error = f"{exc}: {err.strip()[-400:]}"
                continue
            try:
                yield Server("nginx", f"http://{HOST}:{port}", process, pinned, version)
            finally:
                stop(process, signal.SIGTERM)
                if process.stderr:
                    process.stderr.close()
            return
        raise BenchmarkError(f"nginx did not start: {last_error}")


@contextmanager
def emulator_server(cpu: int | None, *options: str) -> Iterator[Server]:
    """``python -m bulkdelete.emulator --port 0 OPTIONS`` in a subprocess, on ``cpu``."""
    command = [sys.executable, "-m", "bulkdelete.emulator", "--port", "0", *options]
    process = subprocess.Popen(
        command,
        cwd=ROOT,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=child_env(),
    )
    pinned = pin(process.pid, cpu)
    try:
        assert process.stdout is not None
        line = _readline(process.stdout, _STARTUP_TIMEOUT)
        if not line.startswith(f"http://{HOST}:"):
            raise BenchmarkError(f"the emulator did not print its URL (got {line!r})")
        from bulkdelete import __version__

        yield Server("emulator", line.strip(), process, pinned, f"bulkdelete {__version__}")
    finally:
        stop(process, signal.SIGTERM)
        if process.stdout:
            process.stdout.close()


def _readline(stream: IO[str], timeout: float) -> str:
    box: list[str] = []
    reader = threading.Thread(target=lambda: box.append(stream.readline()), daemon=True)
    reader.start()
    reader.join(timeout)
    if not box:
        raise BenchmarkError(f"the emulator printed nothing in {timeout:g} s")
    return box[0]


_hint_shown = False


@contextmanager
def fast_server(cpu: int | None, seed_count: int, prefer: str = "auto") -> Iterator[Server]:
    """The fastest local server there is: nginx (``return 204``), else the emulator.

    ``prefer`` is ``auto``, ``nginx`` or ``emulator``. The emulator is seeded with
    ``seed_count`` identities so that the IDs from :func:`ids` are there to delete.
    """
    global _hint_shown
    if prefer != "emulator" and nginx_path() is not None:
        with nginx_server(cpu) as server:
            yield server
        return
    if prefer == "nginx":
        raise BenchmarkError("--server nginx, but nginx is not installed")
    if not _hint_shown and prefer == "auto":
        print(f"  note: {NGINX_HINT}", file=sys.stderr)
        _hint_shown = True
    with emulator_server(cpu, "--seed-count", str(seed_count)) as server:
        server.notes.append(NGINX_HINT if prefer == "auto" else "--server emulator")
        yield server


# -- child processes ----------------------------------------------------------------------


def python_child(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


_USER_HZ = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def _cpu_ticks() -> dict[int, tuple[int, int]]:
    """Busy and stolen clock ticks of each CPU so far (Linux; empty elsewhere)."""
    ticks: dict[int, tuple[int, int]] = {}
    try:
        lines = Path("/proc/stat").read_text(encoding="ascii").splitlines()
    except OSError:
        return ticks
    for line in lines:
        name, *fields = line.split()
        if not name.startswith("cpu") or name == "cpu":
            continue
        values = [int(field) for field in fields]
        user, nice, system, _idle, _iowait, irq, softirq, steal = (values + [0] * 8)[:8]
        ticks[int(name[3:])] = (user + nice + system + irq + softirq, steal)
    return ticks


class CpuWatch:
    """What else ran on the CPUs while a child ran: the child's own CPU time (from
    ``RUSAGE_CHILDREN``), the client CPU's busy time beyond it (other processes: noise in
    the result), time stolen by the hypervisor, and how busy the server's CPU was."""

    def __init__(self, cpus: Cpus) -> None:
        self._cpus = cpus
        self.found: dict[str, Any] = {}

    def __enter__(self) -> CpuWatch:
        self._ticks = _cpu_ticks()
        self._children = _children_cpu()
        self._started = time.monotonic()
        return self

    def __exit__(self, *exc_info: object) -> None:
        wall = time.monotonic() - self._started
        ticks = _cpu_ticks()
        child = _children_cpu() - self._children
        found: dict[str, Any] = {
            "wall_seconds": round(wall, 3),
            "child_cpu_seconds": round(child, 3),
        }
        client, server = self._cpus.client, self._cpus.server
        if client is not None and client in ticks and client in self._ticks:
            busy = (ticks[client][0] - self._ticks[client][0]) / _USER_HZ
            steal = (ticks[client][1] - self._ticks[client][1]) / _USER_HZ
            # The child may have used the other CPU for a moment before it was pinned.
            found["others_on_client_cpu_seconds"] = round(max(0.0, busy - child), 2)
            found["stolen_from_client_cpu_seconds"] = round(steal, 2)
            found["noise_share"] = round((max(0.0, busy - child) + steal) / wall, 3) if wall else 0
        if server is not None and server in ticks and server in self._ticks and wall:
            busy = (ticks[server][0] - self._ticks[server][0]) / _USER_HZ
            found["server_cpu_busy_share"] = round(busy / wall, 3)
        self.found = found


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


NOISY = 0.05
"""A share of the wall time taken from the client CPU by others above which a result is
flagged as noisy."""


def noise_note(label: str, load: dict[str, Any]) -> str | None:
    share = load.get("noise_share")
    if isinstance(share, int | float) and share > NOISY:
        return (
            f"noise: {label}: other processes or the hypervisor took {share:.0%} of the client "
            "CPU during the run, so the result is likely low; run again on a quiet machine"
        )
    return None


def run_json_child(
    command: Sequence[str],
    *,
    cpu: int | None,
    timeout: float,
    accept_exit: Collection[int] = (0,),
    cpus: Cpus | None = None,
) -> dict[str, Any]:
    """Run a child that prints a JSON object (all its stdout, or its last line); return it.

    With ``cpus``, the object gets a ``load`` entry from :class:`CpuWatch`.
    """
    watch = CpuWatch(cpus or Cpus(None, None))
    with watch:
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=child_env(),
        )
        pin(process.pid, cpu)
        try:
            out, err = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.communicate()
            raise BenchmarkError(f"{_name(command)} took longer than {timeout:g} s") from None
    lines = [line for line in out.splitlines() if line.strip()]
    if process.returncode not in accept_exit or not lines:
        raise BenchmarkError(
            f"{_name(command)} failed (exit {process.returncode}): {err.strip()[-800:]}"
        )
    try:
        data: dict[str, Any] = json.loads(out)
    except ValueError:
        data = json.loads(lines[-1])
    if cpus is not None:
        data["load"] = watch.found
    return data


@dataclass(frozen=True, slots=True)
class ChildRun:
    """How a child process went: exit code, wall time and its own resource usage."""

    returncode: int
    started: float  # time.monotonic() just before the child was started
    seconds: float
    peak_rss_bytes: int
    cpu_seconds: float
    stderr: str
    load: dict[str, Any] = field(default_factory=dict)


def run_measured(
    command: Sequence[str],
    *,
    cpu: int | None,
    timeout: float,
    stdin_path: Path | None = None,
    pipe_stdin: bool = False,
    cpus: Cpus | None = None,
) -> ChildRun:
    """Run ``command`` and measure it: its own peak RSS (VmHWM) and CPU time (``wait4``).

    With ``pipe_stdin`` the file at ``stdin_path`` reaches it through a pipe (as
    ``cat FILE | command`` would), else the file itself is its stdin.
    """
    stdin: Any = subprocess.DEVNULL
    source: IO[bytes] | None = None
    if stdin_path is not None:
        source = stdin_path.open("rb")
        stdin = subprocess.PIPE if pipe_stdin else source
    watch = CpuWatch(cpus or Cpus(None, None))
    with tempfile.TemporaryFile() as errors, watch:
        started = time.monotonic()
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            stdin=stdin,
            stdout=subprocess.DEVNULL,
            stderr=errors,
            env=child_env(),
        )
        pin(process.pid, cpu)
        peak = PeakWatch(process.pid)
        feeder = None
        if pipe_stdin and source is not None:
            feeder = threading.Thread(target=_feed, args=(source, process), daemon=True)
            feeder.start()
        timer = threading.Timer(timeout, process.kill)
        timer.start()
        try:
            _, status, usage = os.wait4(process.pid, 0)
        finally:
            timer.cancel()
            peak.stop()
        seconds = time.monotonic() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if feeder is not None:
            feeder.join(5)
        if source is not None:
            source.close()
        errors.seek(0)
        stderr = errors.read().decode("utf-8", "replace")
    if process.returncode == -signal.SIGKILL and seconds >= timeout:
        raise BenchmarkError(f"{_name(command)} took longer than {timeout:g} s")
    return ChildRun(
        returncode=process.returncode,
        started=started,
        seconds=seconds,
        # Not usage.ru_maxrss: it starts at this process's size (benchmarks/_rss.py).
        peak_rss_bytes=peak.peak,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        stderr=stderr,
        load=watch.found,
    )


def _feed(source: IO[bytes], process: subprocess.Popen[bytes]) -> None:
    assert process.stdin is not None
    with suppress(OSError):  # BrokenPipeError when the child stops reading
        shutil.copyfileobj(source, process.stdin, 1 << 16)
    with suppress(OSError):
        process.stdin.close()


def _name(command: Sequence[str]) -> str:
    parts = list(command)
    if len(parts) > 2 and parts[1] == "-m":
        return " ".join(parts[2:4])
    return Path(parts[0]).name


def child_env() -> dict[str, str]:
    """The environment of every child: no proxy (httpx and requests follow ``*_PROXY``, and
    all traffic must stay on loopback), a dummy API key, no ``ORQ_BASE_URL``."""
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env["NO_PROXY"] = env["no_proxy"] = "127.0.0.1,localhost"
    env["ORQ_API_KEY"] = "k"
    env.pop("ORQ_BASE_URL", None)
    return env


# -- what a benchmark gets and gives --------------------------------------------------------

Findings = dict[str, Any]
"""What a benchmark returns: its measurements, plus ``rows`` (label, result) for the table
and ``notes``; it is written to the JSON file as it is."""


@dataclass(slots=True)
class Context:
    """How this run of the suite goes: full or quick, where things run, where files go."""

    quick: bool
    cpus: Cpus
    scratch: Path
    server: str = "auto"  # auto, nginx or emulator: the fast server for throughput and memory

    def size(self, full: int, quick: int) -> int:
        return quick if self.quick else full


def count(n: float) -> str:
    """12345 -> '12,345'."""
    return f"{round(n):,}"


def mib(n_bytes: float) -> str:
    return f"{n_bytes / 2**20:,.0f} MiB"


def ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 3) if a is not None and b else None

"""Durable runs: interrupt, kill, resume; nothing lost and nothing deleted twice."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkdelete.emulator import Emulator, EmulatorConfig, FaultConfig, emulator_in_thread
from bulkdelete.outcome import FINAL_OUTCOMES, Outcome
from bulkdelete.report import read_report, summary_path
from tests.conftest import API_KEY, run_cli

COUNT = 120
CONCURRENCY = 4


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    config = EmulatorConfig(api_key=API_KEY, seed_count=COUNT)
    with emulator_in_thread(config) as emulator:
        yield emulator


def write_input(workdir: Path) -> Path:
    path = workdir / "in.txt"
    ids = [f"user-{n:06d}" for n in range(1, COUNT + 1)]
    ids += ["..", "user-000001"]  # an invalid ID and a duplicate
    path.write_text("\n".join(ids) + "\n", encoding="utf-8")
    return path


def start_run(emulator: Emulator, workdir: Path, rate: str) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORQ_")}
    env["ORQ_API_KEY"] = API_KEY
    args = ["run", "in.txt", "--report", "r.csv", "--base-url", emulator.base_url]
    args += ["--rate", rate, "--concurrency", str(CONCURRENCY), "--yes", "--quiet"]
    return subprocess.Popen(
        [sys.executable, "-m", "bulkdelete", *args],
        cwd=workdir,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )


def wait_for_rows(path: Path, rows: int, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_bytes().count(b"\n") > rows:
            return
        time.sleep(0.02)
    raise AssertionError(f"the run wrote fewer than {rows} rows in {timeout} s")


def resume(emulator: Emulator, workdir: Path) -> subprocess.CompletedProcess[bytes]:
    args = ["run", "in.txt", "--report", "r.csv", "--base-url", emulator.base_url]
    return run_cli([*args, "--rate", "500/s", "--resume", "--yes", "--quiet"], cwd=workdir)


def check_job_invariants(emulator: Emulator, report: Path, *, in_flight_allowance: int) -> None:
    rows = list(read_report(report))
    final = Counter(row.id for row in rows if row.outcome in FINAL_OUTCOMES)
    expected = {f"user-{n:06d}" for n in range(1, COUNT + 1)} | {".."}
    assert set(final) == expected, "every distinct input ID has a final row"
    assert max(final.values()) == 1, "no ID has two final rows"
    assert emulator.identity_count() == 0
    repeats = {i: n for i, n in emulator.stats.deletes_by_id.items() if n > 1}
    assert len(repeats) <= in_flight_allowance, f"deleted twice: {repeats}"
    # Nothing lost: every identity the emulator deleted is in the report.
    assert emulator.stats.deleted_ids <= set(final)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_graceful_stop_records_everything_and_resume_finishes(
    emulator: Emulator, workdir: Path, signum: int
) -> None:
    write_input(workdir)
    process = start_run(emulator, workdir, rate="40/s")
    wait_for_rows(workdir / "r.csv", 20)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=20)

    assert process.returncode == 130, stderr.decode()
    assert b"--resume" in stderr
    recorded = {row.id for row in read_report(workdir / "r.csv")}
    # Every identity the emulator deleted before the stop is in the report: nothing lost.
    assert emulator.stats.deleted_ids <= recorded
    assert emulator.identity_count() > 0, "the stop came before the end"
    summary = summary_path(workdir / "r.csv").read_text()
    assert '"interrupted": true' in summary

    done = resume(emulator, workdir)
    assert done.returncode == 1, done.stderr.decode()  # 1: the invalid ".." stays invalid
    check_job_invariants(emulator, workdir / "r.csv", in_flight_allowance=0)
    job = json.loads(summary_path(workdir / "r.csv").read_text())
    assert (job["deleted"], job["not_found"], job["failed"], job["invalid"]) == (COUNT, 0, 0, 1)
    assert job["runs"] == 2
    assert job["this_run"]["deleted"] < COUNT


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_kill_9_at_any_moment_then_resume(emulator: Emulator, workdir: Path, seed: int) -> None:
    write_input(workdir)
    process = start_run(emulator, workdir, rate="60/s")
    wait_for_rows(workdir / "r.csv", 1)
    time.sleep(random.Random(seed).uniform(0.0, 1.2))
    process.kill()
    process.wait(timeout=10)

    done = resume(emulator, workdir)
    assert done.returncode == 1, done.stderr.decode()
    check_job_invariants(emulator, workdir / "r.csv", in_flight_allowance=CONCURRENCY)
    summary = summary_path(workdir / "r.csv").read_text()
    assert '"runs": 2' in summary


def test_torn_last_row_is_repaired(emulator: Emulator, workdir: Path) -> None:
    write_input(workdir)
    report = workdir / "r.csv"
    report.write_text(
        "id,outcome,http_status,attempts,error,request_id,finished_at\r\n"
        "user-000001,deleted,204,1,,r1,2026-12-04T10:00:00.000Z\r\n"
        "user-000002,dele",
        encoding="utf-8",
        newline="",
    )
    done = resume(emulator, workdir)
    assert b"repaired" in done.stderr
    rows = list(read_report(report))
    assert rows[0].id == "user-000001"
    assert sum(1 for row in rows if row.id == "user-000002") == 1
    assert emulator.stats.deletes_by_id["user-000001"] == 0  # skipped: already final
    assert Outcome.DELETED in {row.outcome for row in rows}


def test_resume_refuses_another_base_url(emulator: Emulator, workdir: Path) -> None:
    write_input(workdir)
    args = ["run", "in.txt", "--report", "r.csv", "--base-url", emulator.base_url]
    first = run_cli(
        [*args, "--rate", "500/s", "--yes", "--quiet"],
        cwd=workdir,
    )
    assert first.returncode == 1, first.stderr.decode()
    other = emulator.base_url.replace("127.0.0.1", "localhost")
    done = run_cli(
        ["run", "in.txt", "--report", "r.csv", "--base-url", other, "--resume", "--yes"],
        cwd=workdir,
    )
    assert done.returncode == 2
    assert b"same --base-url" in done.stderr


def test_resume_retries_failed_ids_and_the_job_counts_add_up(
    emulator: Emulator, workdir: Path
) -> None:
    write_input(workdir)
    emulator.set_faults(FaultConfig(error_rate=1.0))
    args = ["run", "in.txt", "--report", "r.csv", "--base-url", emulator.base_url]
    args += ["--rate", "1000/s", "--max-attempts", "1", "--max-outage", "1", "--yes", "--quiet"]
    first = run_cli(args, cwd=workdir)
    assert first.returncode in (1, 3), first.stderr.decode()
    failed_ids = run_cli(["report", "failed", "r.csv"], cwd=workdir).stdout.decode().split()
    assert failed_ids, "the first run left failed rows"

    emulator.set_faults(FaultConfig())
    done = resume(emulator, workdir)
    assert done.returncode == 1, done.stderr.decode()  # the invalid ".." stays invalid
    job = json.loads(summary_path(workdir / "r.csv").read_text())
    assert (job["deleted"], job["failed"], job["invalid"]) == (COUNT, 0, 1)
    assert run_cli(["report", "failed", "r.csv"], cwd=workdir).stdout == b""
    text = run_cli(["report", "summary", "r.csv"], cwd=workdir).stdout.decode()
    assert "runs" in text
    assert ["deleted", str(COUNT)] in [line.split() for line in text.splitlines()]
    check_job_invariants(emulator, workdir / "r.csv", in_flight_allowance=COUNT)


def test_an_outage_past_max_outage_exits_3_and_resume_finishes(
    emulator: Emulator, workdir: Path
) -> None:
    write_input(workdir)
    emulator.start_outage(120.0)
    args = ["run", "in.txt", "--report", "r.csv", "--base-url", emulator.base_url]
    done = run_cli([*args, "--rate", "500/s", "--max-outage", "2", "--yes", "--quiet"], cwd=workdir)
    assert done.returncode == 3, done.stderr.decode()
    assert b"--max-outage" in done.stderr
    assert b"--resume" in done.stderr
    failed = run_cli(["report", "failed", "r.csv"], cwd=workdir).stdout
    assert failed == b"", "an outage burns no ID into failed"

    emulator.start_outage(0)
    done = resume(emulator, workdir)
    assert done.returncode == 1, done.stderr.decode()  # the invalid ".." stays invalid
    check_job_invariants(emulator, workdir / "r.csv", in_flight_allowance=0)


def test_resume_with_the_input_re_sorted_and_grown(emulator: Emulator, workdir: Path) -> None:
    write_input(workdir)
    process = start_run(emulator, workdir, rate="40/s")
    wait_for_rows(workdir / "r.csv", 15)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=20)
    assert process.returncode == 130

    emulator.add_identities(["late-1", "late-2"])
    lines = (workdir / "in.txt").read_text(encoding="utf-8").splitlines()
    random.Random(5).shuffle(lines)
    (workdir / "in.txt").write_text("\n".join([*lines, "late-1", "late-2"]) + "\n")
    done = resume(emulator, workdir)
    assert done.returncode == 1, done.stderr.decode()
    final = Counter(r.id for r in read_report(workdir / "r.csv") if r.outcome in FINAL_OUTCOMES)
    assert {"late-1", "late-2"} <= set(final)
    assert max(final.values()) == 1
    assert emulator.identity_count() == 0
    assert max(emulator.stats.deletes_by_id.values()) == 1


def test_a_second_signal_stops_at_once_and_the_report_still_parses(workdir: Path) -> None:
    faults = FaultConfig(latency=3.0)  # every answer takes 3 s: a graceful stop would wait
    with emulator_in_thread(
        EmulatorConfig(api_key=API_KEY, seed_count=COUNT, faults=faults)
    ) as emu:
        write_input(workdir)
        process = start_run(emu, workdir, rate="40/s")
        deadline = time.monotonic() + 10
        while emu.stats.requests < CONCURRENCY and time.monotonic() < deadline:
            time.sleep(0.05)
        process.send_signal(signal.SIGINT)
        time.sleep(0.3)
        process.send_signal(signal.SIGINT)
        started = time.monotonic()
        _, stderr = process.communicate(timeout=20)
        assert time.monotonic() - started < 2.5, "the second Ctrl-C did not stop at once"
    assert process.returncode == 130, stderr.decode()
    assert b"stopping at once" in stderr
    report = workdir / "r.csv"
    if report.exists():  # the answers take 3 s: most likely nothing was recorded
        assert all(row.outcome in FINAL_OUTCOMES for row in read_report(report))
    assert '"interrupted": true' in summary_path(workdir / "r.csv").read_text()

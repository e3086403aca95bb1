"""``bulkdelete run`` as a user runs it: a subprocess against the emulator on loopback."""

from __future__ import annotations

import csv
import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkdelete.emulator import Emulator, EmulatorConfig, FaultConfig, emulator_in_thread
from bulkdelete.report import COLUMNS
from tests.conftest import API_KEY, run_cli

SUMMARY_KEYS = {
    "deleted",
    "not_found",
    "failed",
    "invalid",
    "duplicates",
    "input_lines",
    "started_at",
    "finished_at",
    "base_url",
    "rate",
    "version",
    "input_sha256",
}


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with emulator_in_thread(EmulatorConfig(api_key=API_KEY, seed_count=50)) as emulator:
        yield emulator


def run_args(emulator: Emulator, *extra: str) -> list[str]:
    return ["--base-url", emulator.base_url, "--rate", "1000/s", "--yes", "--quiet", *extra]


def read_csv_report(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as file:
        reader = csv.DictReader(file)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        return list(reader)


def test_csv_input_gives_a_csv_report_and_summary(emulator: Emulator, workdir: Path) -> None:
    data = "\ufeffexternal_id,email\r\nuser-000001,a@x\r\nuser-000002,b@x\r\n\r\nnope,c@x\r\n"
    (workdir / "in.csv").write_text(data, encoding="utf-8", newline="")
    done = run_cli(["run", "in.csv", "--report", "out.csv", *run_args(emulator)])

    assert done.returncode == 0, done.stderr.decode()
    rows = read_csv_report(workdir / "out.csv")
    assert {(row["id"], row["outcome"]) for row in rows} == {
        ("user-000001", "deleted"),
        ("user-000002", "deleted"),
        ("nope", "not_found"),
    }
    summary = json.loads((workdir / "out.csv.summary.json").read_text())
    assert summary.keys() >= SUMMARY_KEYS
    assert (summary["deleted"], summary["not_found"], summary["input_lines"]) == (2, 1, 3)
    assert summary["base_url"] == emulator.base_url
    assert summary["rate"] == "1000/s"
    import hashlib

    assert summary["input_sha256"] == hashlib.sha256((workdir / "in.csv").read_bytes()).hexdigest()
    assert b"deleted 2" in done.stderr


def test_stdin_txt_and_jsonl_report(emulator: Emulator, workdir: Path) -> None:
    ids = b"user-000003\n  user-000004  \nuser-000003\n..\n"
    done = run_cli(["run", "-", "--report", "out.jsonl", *run_args(emulator)], stdin=ids)

    assert done.returncode == 1, done.stderr.decode()  # the invalid ".." makes it 1
    lines = (workdir / "out.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert all(tuple(row) == COLUMNS for row in rows)
    assert {row["id"]: row["outcome"] for row in rows} == {
        "user-000003": "deleted",
        "user-000004": "deleted",
        "..": "invalid",
    }
    summary = json.loads((workdir / "out.jsonl.summary.json").read_text())
    assert summary["duplicates"] == 1
    assert summary["input_sha256"] is None


def test_jsonl_input_with_column(emulator: Emulator, workdir: Path) -> None:
    (workdir / "in.jsonl").write_text(
        '{"who": "user-000005", "id": "ignored"}\n{"who": "user-000006"}\n', encoding="utf-8"
    )
    done = run_cli(["run", "in.jsonl", "--column", "who", "--report", "r.csv", *run_args(emulator)])
    assert done.returncode == 0, done.stderr.decode()
    assert not emulator.exists("user-000005")
    assert not emulator.exists("user-000006")


def test_wrong_key_exits_3_and_never_prints_the_key(emulator: Emulator, workdir: Path) -> None:
    (workdir / "in.txt").write_text("user-000007\nuser-000008\n", encoding="utf-8")
    secret = "sk-wrong-very-secret-value"
    done = run_cli(
        ["run", "in.txt", "--report", "r.csv", *run_args(emulator)],
        env={"ORQ_API_KEY": secret},
    )
    assert done.returncode == 3
    output = done.stdout + done.stderr
    assert b"401" in output
    assert secret.encode() not in output
    report = workdir / "r.csv"
    assert not report.exists() or secret not in report.read_text()
    assert secret not in (workdir / "r.csv.summary.json").read_text()
    assert emulator.exists("user-000007")


def test_api_key_file(emulator: Emulator, workdir: Path) -> None:
    (workdir / "key").write_text(API_KEY + "\n", encoding="utf-8")
    (workdir / "in.txt").write_text("user-000009\n", encoding="utf-8")
    done = run_cli(
        ["run", "in.txt", "--api-key-file", "key", "--report", "r.csv", *run_args(emulator)],
        env={"ORQ_API_KEY": ""},
    )
    assert done.returncode == 0, done.stderr.decode()
    assert not emulator.exists("user-000009")


@pytest.mark.parametrize(
    ("args", "env", "message"),
    [
        (["missing.txt"], {}, b"cannot read input"),
        (["in.txt", "--rate", "fast"], {}, b"--rate"),
        (["in.txt", "--base-url", "http://api.example.com"], {}, b"plain http"),
        (["in.txt"], {"ORQ_API_KEY": ""}, b"ORQ_API_KEY"),
        (["in.txt", "--report", "r.xml"], {}, b".csv or .jsonl"),
        (["in.csv", "--column", "nope"], {}, b"external_id"),
        (["latin1.txt"], {}, b"line 2"),
        (["in.txt", "--report", "no/such/dir/r.csv"], {}, b"not a writable directory"),
        (["in.txt", "--concurrency", "0"], {}, b"--concurrency"),
        (["in.txt", "--check"], {}, b"--dry-run"),
    ],
)
def test_usage_errors_exit_2_before_any_request(
    emulator: Emulator, workdir: Path, args: list[str], env: dict[str, str], message: bytes
) -> None:
    (workdir / "in.txt").write_text("user-000010\n", encoding="utf-8")
    (workdir / "in.csv").write_text("external_id,email\nuser-000010,x\n", encoding="utf-8")
    (workdir / "latin1.txt").write_bytes(b"user-000010\ncaf\xe9\n")
    base = ["--base-url", emulator.base_url, "--yes", "--quiet"]
    done = run_cli(["run", *base, *args], env=env)  # later options win: args override base
    assert done.returncode == 2, done.stderr.decode()
    assert message in done.stderr
    assert len(done.stderr.decode().strip().splitlines()) == 1
    assert emulator.stats.requests == 0


def test_existing_report_is_never_overwritten(emulator: Emulator, workdir: Path) -> None:
    (workdir / "in.txt").write_text("user-000011\n", encoding="utf-8")
    (workdir / "r.csv").write_text("earlier work\n", encoding="utf-8")
    done = run_cli(["run", "in.txt", "--report", "r.csv", *run_args(emulator)])
    assert done.returncode == 2
    assert b"--resume" in done.stderr
    assert (workdir / "r.csv").read_text() == "earlier work\n"
    assert emulator.stats.requests == 0


def test_dry_run_sends_nothing(emulator: Emulator, workdir: Path) -> None:
    (workdir / "in.txt").write_text("user-000012\nuser-000012\n..\nuser-000013\n", encoding="utf-8")
    done = run_cli(["run", "in.txt", "--dry-run", "--base-url", emulator.base_url])
    assert done.returncode == 0, done.stderr.decode()
    text = done.stderr.decode()
    assert "2 distinct IDs" in text
    assert "duplicates     1" in text
    assert """line 3: '..': ".." is not an ID""" in text
    assert emulator.stats.requests == 0


def test_max_deletes_refuses_with_exit_3(emulator: Emulator, workdir: Path) -> None:
    (workdir / "in.txt").write_text("user-000014\nuser-000015\nuser-000016\n", encoding="utf-8")
    done = run_cli(
        ["run", "in.txt", "--max-deletes", "2", "--report", "r.csv", *run_args(emulator)]
    )
    assert done.returncode == 3
    assert b"--max-deletes" in done.stderr
    assert emulator.stats.requests == 0
    done = run_cli(
        ["run", "in.txt", "--max-deletes", "3", "--report", "r.csv", *run_args(emulator)]
    )
    assert done.returncode == 0, done.stderr.decode()


def test_help_teaches(workdir: Path) -> None:
    done = run_cli(["run", "--help"])
    text = done.stdout.decode()
    for name in (
        "--format",
        "--column",
        "--base-url",
        "--api-key-file",
        "--rate",
        "--concurrency",
        "--timeout",
        "--max-attempts",
        "--report",
        "--resume",
        "--dry-run",
        "--max-deletes",
        "--yes",
        "--quiet",
        "examples:",
    ):
        assert name in text
    # The report's columns and every exit code, as scripts rely on them (CLI.md).
    for column in ("http_status", "attempts", "request_id", "finished_at"):
        assert column in text
    for code in ("0 all", "1 some", "2 usage", "3 stopped", "130 interrupted"):
        assert code in " ".join(text.split())


def test_log_format_json_gives_one_object_a_line(workdir: Path) -> None:
    config = EmulatorConfig(api_key=API_KEY, seed_count=3, faults=FaultConfig(error_rate=1.0))
    (workdir / "in.txt").write_text("user-000001\nuser-000002\n", encoding="utf-8")
    with emulator_in_thread(config) as emulator:
        args = ["run", "in.txt", "--report", "r.csv", "--max-attempts", "1"]
        done = run_cli([*args, "--log-format", "json", *run_args(emulator)])
    assert done.returncode == 1, done.stderr.decode()
    events = [
        json.loads(line) for line in done.stderr.decode().splitlines() if line.startswith("{")
    ]
    failed = [event for event in events if event.get("event") == "failed"]
    assert {event["id"] for event in failed} == {"user-000001", "user-000002"}
    assert all(event["level"] == "warning" and event["time"] for event in failed)


def test_dry_run_check_looks_up_and_deletes_nothing(emulator: Emulator, workdir: Path) -> None:
    ids = "user-000020\nuser-000021\nuser-000022\nghost\n..\nuser-000020\n"
    (workdir / "in.txt").write_text(ids, encoding="utf-8")
    args = ["run", "in.txt", "--dry-run", "--check", "--quiet", "--rate", "1000/s"]
    done = run_cli([*args, "--base-url", emulator.base_url])
    assert done.returncode == 0, done.stderr.decode()
    assert b"3 exist and would be deleted, 1 are already gone" in done.stderr
    assert list(emulator.stats.delete_paths) == []
    assert emulator.identity_count() == 50
    assert emulator.stats.requests == 4
    assert not (workdir / "r.csv").exists()


def test_without_a_terminal_a_status_line_comes_every_so_often(workdir: Path) -> None:
    config = EmulatorConfig(api_key=API_KEY, seed_count=40)
    (workdir / "in.txt").write_text(
        "".join(f"user-{n:06d}\n" for n in range(1, 41)), encoding="utf-8"
    )
    with emulator_in_thread(config) as emulator:
        args = ["run", "in.txt", "--report", "r.csv", "--base-url", emulator.base_url]
        done = run_cli([*args, "--rate", "20/s", "--yes", "--status-every", "0.5"])
    assert done.returncode == 0, done.stderr.decode()
    status = [line for line in done.stderr.decode().splitlines() if " done · " in line]
    assert len(status) >= 2, done.stderr.decode()
    assert "/40 done" in status[-1]
    assert "pace " in status[-1]
    assert "deleted " in status[-1]


def test_bad_input_halfway_down_stdin_stops_with_exit_3(workdir: Path) -> None:
    config = EmulatorConfig(api_key=API_KEY, seed_count=2000)
    lines = b"".join(b"user-%06d\n" % n for n in range(1, 2001)) + b"caf\xe9\n"
    with emulator_in_thread(config) as emulator:
        done = run_cli(["run", "-", "--report", "r.csv", *run_args(emulator)], stdin=lines)
        assert done.returncode == 3, done.stderr.decode()
        assert b"line 2001 is not UTF-8" in done.stderr
        assert b"--resume" in done.stderr
        recorded = {row["id"] for row in read_csv_report(workdir / "r.csv")}
        assert emulator.stats.deleted_ids <= recorded  # nothing deleted goes unrecorded


def test_bad_input_in_the_first_lines_of_stdin_is_exit_2(emulator: Emulator, workdir: Path) -> None:
    lines = b"user-000030\ncaf\xe9\n"
    done = run_cli(["run", "-", "--report", "r.csv", *run_args(emulator)], stdin=lines)
    assert done.returncode == 2, done.stderr.decode()
    assert b"line 2 is not UTF-8" in done.stderr
    assert emulator.stats.requests == 0

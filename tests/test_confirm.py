"""The confirmation prompt, driven through a real pseudo-terminal as an operator would."""

from __future__ import annotations

import os
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import pexpect
import pytest

from bulkdelete.emulator import Emulator, EmulatorConfig, emulator_in_thread
from tests.conftest import API_KEY, run_cli

IDS = "user-000001\nuser-000002\nuser-000003\nuser-000003\n"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with emulator_in_thread(EmulatorConfig(api_key=API_KEY, seed_count=10)) as emulator:
        yield emulator


def spawn(command: str, workdir: Path) -> pexpect.spawn:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORQ_")}
    env["ORQ_API_KEY"] = API_KEY
    return pexpect.spawn(
        "/bin/sh", ["-c", command], cwd=str(workdir), env=env, timeout=30, encoding="utf-8"
    )


def run_command(emulator: Emulator, input_path: str) -> str:
    args = [sys.executable, "-m", "bulkdelete", "run", input_path, "--report", "r.csv"]
    args += ["--base-url", emulator.base_url, "--rate", "1000/s", "--quiet"]
    return shlex.join(args)


def test_typing_the_count_runs_the_purge(emulator: Emulator, workdir: Path) -> None:
    (workdir / "in.txt").write_text(IDS, encoding="utf-8")
    child = spawn(run_command(emulator, "in.txt"), workdir)
    child.expect("About to delete 3 identities")
    child.expect("Type 3 to go on")
    assert emulator.stats.requests == 0
    child.sendline("3")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert emulator.identity_count() == 7


def test_typing_anything_else_sends_nothing(emulator: Emulator, workdir: Path) -> None:
    (workdir / "in.txt").write_text(IDS, encoding="utf-8")
    child = spawn(run_command(emulator, "in.txt"), workdir)
    child.expect("Type 3 to go on")
    child.sendline("yes")
    child.expect("not confirmed; nothing was sent")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 3
    assert emulator.stats.requests == 0
    assert not (workdir / "r.csv").exists()


def test_ids_on_stdin_do_not_answer_the_prompt(emulator: Emulator, workdir: Path) -> None:
    (workdir / "in.txt").write_text(IDS + "3\n", encoding="utf-8")
    # stdin carries the IDs (and a "3" that must not count as the answer); the terminal asks.
    child = spawn(f"cat in.txt | {run_command(emulator, '-')}", workdir)
    child.expect("About to delete 4 identities")
    assert emulator.stats.requests == 0
    child.sendline("4")
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert emulator.stats.deletes_by_id["3"] == 1
    assert emulator.identity_count() == 7


def test_no_terminal_and_no_yes_refuses(emulator: Emulator, workdir: Path) -> None:
    (workdir / "in.txt").write_text(IDS, encoding="utf-8")
    args = ["run", "in.txt", "--report", "r.csv", "--base-url", emulator.base_url]
    done = run_cli(args)
    assert done.returncode == 2
    assert b"--yes" in done.stderr
    assert emulator.stats.requests == 0

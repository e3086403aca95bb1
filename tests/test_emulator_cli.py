"""``bulkdelete emulator`` (``python -m bulkdelete.emulator``): options, seed files, lifecycle."""

from __future__ import annotations

import argparse
import json
import select
import signal
import socket
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from bulkdelete.emulator import EmulatorConfig, FaultConfig, running_emulator
from bulkdelete.emulator.__main__ import main
from bulkdelete.emulator.cli import add_emulator_arguments, config_from_args
from bulkdelete.emulator.seeding import read_seed_file, write_id_list
from bulkdelete.errors import InputError, UsageError

ROOT = Path(__file__).resolve().parent.parent


def _start(*args: str) -> tuple[subprocess.Popen[str], str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "bulkdelete.emulator", *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 20)
    if not ready:
        process.kill()
        pytest.fail("the emulator printed no URL within 20 s")
    return process, process.stdout.readline().strip()


def _request(method: str, url: str, key: str | None = None) -> int:
    request = urllib.request.Request(url, method=method)
    if key is not None:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as error:
        return error.code


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_the_command_prints_its_url_first_serves_and_stops_cleanly(
    tmp_path: Path, signum: signal.Signals
) -> None:
    ids_path = tmp_path / "purge.txt"
    process, url = _start(
        "--port", "0", "--seed-count", "3", "--api-key", "k", "--write-ids", str(ids_path)
    )
    try:
        assert url.startswith("http://127.0.0.1:")
        assert int(url.rsplit(":", 1)[1]) > 0
        assert ids_path.read_text(encoding="utf-8") == "user-000001\nuser-000002\nuser-000003\n"
        assert _request("DELETE", f"{url}/v2/identities/user-000002", key="k") == 204
        assert _request("DELETE", f"{url}/v2/identities/user-000002", key="k") == 404
        assert _request("DELETE", f"{url}/v2/identities/user-000003") == 401
    finally:
        process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=20)
    assert process.returncode == 0, stderr
    assert stdout == ""  # nothing after the URL line
    assert "Traceback" not in stderr
    assert "identities deleted: 1" in stderr


def test_a_bad_option_exits_2_with_one_clear_line(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    cases = {
        ("--rate-limit", "lots"): "invalid rate limit 'lots'",
        ("--error-rate", "2"): "error rate must be between 0 and 1",
        ("--error-rate", "0.6", "--drop-rate", "0.6"): "must not exceed 1",
        ("--latency", "fast"): "invalid latency",
        ("--seed", str(tmp_path / "missing.txt")): "does not exist",
        ("--port", "70000"): "port must be between 0 and 65535",
        ("--stats-window", "0"): "stats window",
    }
    for args, message in cases.items():
        assert main(list(args)) == 2
        err = capsys.readouterr().err
        assert err.startswith("bulkdelete emulator: error: "), err
        assert message in err
        assert "Traceback" not in err


def test_seeds_that_clash_exit_2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    seed = tmp_path / "seed.csv"
    seed.write_text("_id,external_id\nid-1,x\nid-2,x\n", encoding="utf-8")
    assert main(["--port", "0", "--seed", str(seed)]) == 2
    assert "external_id 'x' already exists" in capsys.readouterr().err


def test_a_taken_port_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main(["--port", str(port)]) == 1
    err = capsys.readouterr().err
    assert f"cannot listen on 127.0.0.1 port {port}" in err


def test_help_names_every_option_with_its_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for option in (
        "--host",
        "--port",
        "--api-key",
        "--seed FILE",
        "--seed-count",
        "--write-ids",
        "--delete-status",
        "--rate-limit",
        "--fault-seed",
        "--error-rate",
        "--drop-rate",
        "--drop-after-delete-share",
        "--slow-rate",
        "--slow-delay",
        "--latency",
        "--stats-window",
    ):
        assert option in text, option
    for default in ("(default: 127.0.0.1)", "(default: 8080)", "(default: 204)", "(default: 40.0)"):
        assert default in text, default


def _parse(*args: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    add_emulator_arguments(parser)
    return parser.parse_args(args)


def test_options_become_the_config(tmp_path: Path) -> None:
    assert config_from_args(_parse()) == EmulatorConfig(port=8080)
    seed = tmp_path / "ids.txt"
    seed.write_text("one\ntwo\n", encoding="utf-8")
    config = config_from_args(
        _parse(
            "--host", "::1", "--port", "0", "--api-key", "k", "--seed", str(seed),
            "--delete-status", "200", "--rate-limit", "100/min", "--fault-seed", "9",
            "--error-rate", "0.1", "--drop-rate", "0.2", "--drop-after-delete-share", "0.25",
            "--slow-rate", "0.05", "--slow-delay", "31", "--latency", "0.02,0.01",
            "--stats-window", "2",
        )
    )  # fmt: skip
    assert config == EmulatorConfig(
        host="::1",
        port=0,
        api_key="k",
        delete_status=200,
        rate_limit=100,
        rate_period=60.0,
        faults=FaultConfig(
            seed=9,
            error_rate=0.1,
            drop_rate=0.2,
            drop_after_delete_share=0.25,
            slow_rate=0.05,
            slow_delay=31.0,
            latency=0.02,
            latency_jitter=0.01,
        ),
        seed_external_ids=["one", "two"],
        stats_window=2.0,
    )


def test_seed_and_seed_count_exclude_each_other(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        _parse("--seed", "x.txt", "--seed-count", "3")
    assert "not allowed with argument" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("name", "content", "external_ids", "pairs"),
    [
        ("ids.txt", "a\n with space \n\n50%\r\nünï\n", ["a", " with space ", "50%", "ünï"], []),
        ("ids.csv", 'external_id\na/b\n"a,b"\n', ["a/b", "a,b"], []),
        ("ids.csv", "first\nsecond\n", ["first", "second"], []),
        ("ids.csv", "\ufeffexternal_id,_id\nx,01A\ny,01B\n", [], [("01A", "x"), ("01B", "y")]),
        ("empty.csv", "", [], []),
        ("purge.csv", "email,external_id\nx@y,u1\nz@y,\nw@y\nv@y,u2\n", ["u1", "u2"], []),
        ("ids.csv", "id\nu1\n", ["u1"], []),
    ],
)
def test_seed_files(
    tmp_path: Path, name: str, content: str, external_ids: list[str], pairs: list[tuple[str, str]]
) -> None:
    path = tmp_path / name
    path.write_text(content, encoding="utf-8")
    assert read_seed_file(path) == (external_ids, pairs)


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("wide.csv", "a,b\n1,2\n", "none is headed"),
        ("pairs.csv", "_id,external_id\n,x\n", "row 2"),
        ("latin1.txt", "caf\xe9\n", "not UTF-8"),
    ],
)
def test_bad_seed_files_are_input_errors(
    tmp_path: Path, name: str, content: str, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content.encode("latin-1"))
    with pytest.raises(InputError, match=message):
        read_seed_file(path)


def test_purge_lists_in_each_format(tmp_path: Path) -> None:
    ids = ["plain", "a,b", 'quote"d']
    write_id_list(tmp_path / "list.txt", ids)
    assert (tmp_path / "list.txt").read_text(encoding="utf-8") == 'plain\na,b\nquote"d\n'
    write_id_list(tmp_path / "list.csv", ids)
    assert (tmp_path / "list.csv").read_text(encoding="utf-8") == (
        'external_id\nplain\n"a,b"\n"quote""d"\n'
    )
    assert read_seed_file(tmp_path / "list.csv") == (ids, [])
    write_id_list(tmp_path / "list.jsonl", ids)
    lines = (tmp_path / "list.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(line)["external_id"] for line in lines] == ids
    with pytest.raises(UsageError, match="line break"):
        write_id_list(tmp_path / "broken.txt", ["one\ntwo"])


@pytest.mark.anyio
async def test_clashing_seeds_in_python_are_usage_errors() -> None:
    config = EmulatorConfig(seed_external_ids=["user-000001"], seed_count=1)
    with pytest.raises(UsageError, match="user-000001"):
        async with running_emulator(config):
            pass

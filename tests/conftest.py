"""Shared fixtures: every test that sends a request talks HTTP to the emulator on 127.0.0.1."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest

from bulkdelete.pacing import Rate
from bulkdelete.settings import Settings

API_KEY = "test-key-7f3a9c"
# Fast enough never to bind unless a test says otherwise.
NO_LIMIT = Rate(100_000, 1.0)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def settings_for(base_url: str, **changes: object) -> Settings:
    """Settings for a test run: the test key, no pacing to speak of, quick retries."""
    settings = Settings(
        api_key=API_KEY,
        base_url=base_url,
        rate=NO_LIMIT,
        concurrency=8,
        timeout=5.0,
        max_attempts=5,
        backoff_base=0.01,
        backoff_cap=0.05,
    )
    return replace(settings, **changes)  # type: ignore[arg-type]


def run_cli(
    args: Sequence[str],
    *,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[bytes]:
    """Run ``python -m bulkdelete ARGS`` as a user would, with the test key in ORQ_API_KEY."""
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("ORQ_")}
    full_env["ORQ_API_KEY"] = API_KEY
    full_env["COLUMNS"] = "200"
    if env:
        full_env.update(env)
    return subprocess.run(
        [sys.executable, "-m", "bulkdelete", *args],
        input=stdin if stdin is not None else b"",
        capture_output=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
        # No controlling terminal, as in CI: a run without --yes must refuse, never wait.
        start_new_session=True,
    )


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path

"""Capture one frame of the live display, as an operator sees it, with tmux.

    .venv/bin/python scripts/capture_display.py [--out FRAME.txt]

Starts the emulator (3,000 identities, a rolling limit of 100/s, some 5xx answers), runs
``bulkdelete run`` against it inside a detached 120x12 tmux window, and prints the screen a few
seconds in (tmux capture-pane). Needs tmux (``apt-get install tmux``). Loopback only.
"""

from __future__ import annotations

import argparse
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SESSION = "bulkdelete-frame"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, help="also write the frame to this file")
    parser.add_argument("--after", type=float, default=4.0, help="seconds into the run")
    args = parser.parse_args()
    if shutil.which("tmux") is None:
        print("tmux is not installed: apt-get install tmux", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bulkdelete-frame-") as scratch:
        work = Path(scratch)
        ids = work / "ids.txt"
        serve = [sys.executable, "-m", "bulkdelete.emulator", "--port", "0", "--api-key", "k"]
        serve += ["--seed-count", "3000", "--write-ids", str(ids), "--rate-limit", "100/1s"]
        serve += ["--error-rate", "0.02", "--fault-seed", "1", "--latency", "0.02"]
        emulator = subprocess.Popen(
            serve,
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert emulator.stdout is not None
            base_url = emulator.stdout.readline().strip()
            with ids.open("a", encoding="utf-8") as extra:
                extra.write("missing-1\nmissing-2\n..\n")
            command = [sys.executable, "-m", "bulkdelete", "run", str(ids), "--yes"]
            command += ["--base-url", base_url, "--rate", "100/s", "--concurrency", "8"]
            command += ["--report", str(work / "report.csv")]
            env = f"ORQ_API_KEY=k TERM=xterm-256color COLUMNS=120 {shlex.join(command)}"
            subprocess.run(
                ["tmux", "new-session", "-d", "-s", SESSION, "-x", "120", "-y", "12", env],
                check=True,
                env={**os.environ, "TMUX": ""},
            )
            try:
                time.sleep(args.after)
                frame = subprocess.run(
                    ["tmux", "capture-pane", "-p", "-t", SESSION],
                    check=True,
                    capture_output=True,
                    text=True,
                ).stdout
            finally:
                subprocess.run(["tmux", "kill-session", "-t", SESSION], check=False)
        finally:
            emulator.terminate()
            emulator.wait(timeout=10)
    print(frame.rstrip())
    if args.out:
        args.out.write_text(frame, encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())

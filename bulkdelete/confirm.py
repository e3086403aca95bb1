"""Asking the operator before data is destroyed: on the terminal, never on stdin."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, BinaryIO

from bulkdelete.pacing import format_duration, format_pace
from bulkdelete.reader import IdFilter
from bulkdelete.settings import Settings


def open_terminal() -> IO[str] | None:
    """The controlling terminal, even when stdin carries the IDs; None when there is none."""
    try:
        return open("/dev/tty", "r+", encoding="utf-8")
    except OSError:
        return None


@contextmanager
def spool_stdin() -> Iterator[BinaryIO]:
    """A temporary copy of stdin, so it can be read once to count and once to run."""
    with tempfile.TemporaryFile(prefix="bulkdelete-stdin-") as copy:
        shutil.copyfileobj(sys.stdin.buffer, copy, length=1 << 20)
        copy.seek(0)
        yield copy


def ask(terminal: IO[str], to_delete: int, settings: Settings, plan: IdFilter) -> bool:
    """Show the plan and ask the operator to type the number of IDs; True to go on."""
    counts = plan.counts
    per_second = settings.rate.per_second
    lines = [
        f"About to delete {to_delete:,} identities at {settings.base_url}, permanently.",
        f"  duplicates skipped: {counts.duplicates:,}; invalid, never sent: {counts.invalid:,}"
        + (f"; already done: {counts.skipped:,}" if counts.skipped else ""),
        f"  pace {settings.rate} ({format_pace(per_second)}): about "
        f"{format_duration(to_delete / per_second)}",
        f"Type {to_delete} to go on, anything else to stop: ",
    ]
    terminal.write("\n".join(lines))
    terminal.flush()
    answer = terminal.readline().strip().replace(",", "").replace("_", "")
    return answer == str(to_delete)

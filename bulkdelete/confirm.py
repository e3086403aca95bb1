"""Asking the operator before data is destroyed: on the terminal, never on stdin."""

from __future__ import annotations

import shutil
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from typing import IO, BinaryIO

from bulkdelete.display import plan_lines
from bulkdelete.pipeline import Plan
from bulkdelete.settings import Settings


class Terminal:
    """The controlling terminal, for a question and its answer, whatever stdin carries."""

    def __init__(self, reader: IO[str], writer: IO[str]) -> None:
        self._reader = reader
        self._writer = writer

    def ask(self, question: str) -> str:
        self._writer.write(question)
        self._writer.flush()
        return self._reader.readline()

    def close(self) -> None:
        self._reader.close()
        self._writer.close()


def open_terminal() -> Terminal | None:
    """The controlling terminal; None when there is none (cron, CI, a pipeline's child)."""
    try:
        # A terminal is not seekable, so it is opened twice rather than once in "r+" mode.
        reader = open("/dev/tty", encoding="utf-8")  # noqa: SIM115 - Terminal closes it
    except OSError:
        return None
    try:
        writer = open("/dev/tty", "w", encoding="utf-8")  # noqa: SIM115 - Terminal closes it
    except OSError:
        reader.close()
        return None
    return Terminal(reader, writer)


@contextmanager
def spool_stdin() -> Iterator[BinaryIO]:
    """A temporary copy of stdin, so it can be read once to count and once to run."""
    with tempfile.TemporaryFile(prefix="bulkdelete-stdin-") as copy:
        shutil.copyfileobj(sys.stdin.buffer, copy, length=1 << 20)
        copy.seek(0)
        yield copy


def ask(terminal: Terminal, settings: Settings, plan: Plan) -> bool:
    """Show the plan and ask the operator to type the number of IDs; True to go on."""
    to_delete = plan.to_delete
    lines = [
        f"About to delete {to_delete:,} identities at {settings.base_url}, permanently.",
        *plan_lines(settings, plan),
        f"Type {to_delete} to go on, anything else to stop: ",
    ]
    answer = terminal.ask("\n".join(lines)).strip().replace(",", "").replace("_", "")
    return answer == str(to_delete)

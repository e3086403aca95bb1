"""What the operator sees while a run goes on: a live rich display, or status lines for logs."""

from __future__ import annotations

import json
import logging
import time
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from types import TracebackType

import anyio
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TaskID,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

from bulkdelete.pacing import format_duration, format_pace
from bulkdelete.pipeline import Plan, Run
from bulkdelete.report import Summary
from bulkdelete.settings import Settings

STATUS_EVERY = 10.0  # seconds between status lines when stderr is not a terminal


class JsonLogFormatter(logging.Formatter):
    """One JSON object a line: ``time`` (UTC), ``level``, ``message``, and ``event`` fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, object] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "message": record.getMessage(),
        }
        fields = getattr(record, "event", None)
        if isinstance(fields, dict):
            data.update(fields)
        return json.dumps(data, ensure_ascii=False)


def setup_logging(console: Console, *, verbose: bool, json_lines: bool = False) -> None:
    """Send bulkdelete's log to stderr, through rich on a terminal so it never tears the display.

    ``json_lines`` writes one JSON object a line instead, for log collectors.
    """
    logger = logging.getLogger("bulkdelete")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler: logging.Handler
    if json_lines:
        handler = logging.StreamHandler(console.file)
        handler.setFormatter(JsonLogFormatter())
    elif console.is_terminal:
        handler = RichHandler(console=console, show_time=False, show_path=False, markup=False)
        handler.setFormatter(logging.Formatter("%(message)s"))
    else:
        handler = logging.StreamHandler(console.file)
        handler.setFormatter(logging.Formatter("bulkdelete: %(message)s"))
    logger.addHandler(handler)


def plan_lines(settings: Settings, plan: Plan) -> list[str]:
    """The plan of a run as the operator reads it, in a dry run and before the confirmation."""
    counts = plan.counts
    per_second = settings.rate.per_second
    return [
        f"  to delete      {plan.to_delete:,} distinct IDs"
        + (f" ({counts.skipped:,} more already done)" if counts.skipped else ""),
        f"  duplicates     {counts.duplicates:,}",
        f"  invalid        {counts.invalid:,} (never sent)",
        *(f"    line {entry.line}: {entry.id!r}: {entry.invalid}" for entry in plan.first_invalid),
        f"  pace           {settings.rate}: one request every {1 / per_second:.3g} s",
        f"  would take     about {format_duration(plan.to_delete / per_second)} at that pace",
    ]


def outcome_counts(summary: Summary) -> str:
    return (
        f"deleted {summary.deleted:,} · not_found {summary.not_found:,} · "
        f"failed {summary.failed:,} · invalid {summary.invalid:,}"
    )


def status_line(run: Run) -> str:
    """One line of status: done / total, outcomes, pace, ETA."""
    summary = run.summary
    done = summary.done
    total = f"{run.total:,}" if run.total is not None else "?"
    pace = format_pace(run.pacer.per_second) if run.pacer is not None else "-"
    line = f"{done:,}/{total} done · {outcome_counts(summary)} · pace {pace}"
    if run.total is not None and run.pacer is not None and run.total > done:
        eta = (run.total - done) / run.pacer.per_second
        line += f" · ETA {_duration(eta)}"
    if run.pacer is not None and (paused := run.pacer.paused_for()) > 0:
        line += f" · paused {paused:.0f} s"
    return line


def _duration(seconds: float) -> str:
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


class LiveDisplay(AbstractContextManager["LiveDisplay"]):
    """A rich progress bar on a terminal; plain status lines every 10 s elsewhere."""

    def __init__(self, console: Console, status_every: float = STATUS_EVERY) -> None:
        self._console = console
        self._status_every = status_every
        self._progress: Progress | None = None
        self._task: TaskID | None = None

    def __enter__(self) -> LiveDisplay:
        if self._console.is_terminal:
            self._progress = Progress(
                TextColumn("[bold]deleting"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("{task.fields[counts]}"),
                TextColumn("pace {task.fields[pace]}"),
                TimeElapsedColumn(),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=self._console,
                transient=False,
                refresh_per_second=4,
            )
            self._progress.__enter__()
            self._task = self._progress.add_task("purge", total=None, counts="", pace="-")
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._progress is not None:
            self._progress.__exit__(exc_type, exc, tb)

    async def follow(self, run: Run) -> None:
        """Update the display until cancelled."""
        if self._progress is None:
            last = time.monotonic()
            while True:
                await anyio.sleep(min(1.0, self._status_every))
                if time.monotonic() - last >= self._status_every:
                    last = time.monotonic()
                    self._console.print(f"bulkdelete: {status_line(run)}", highlight=False)
        progress, task = self._progress, self._task
        assert task is not None
        while True:
            summary = run.summary
            pace = format_pace(run.pacer.per_second) if run.pacer is not None else "-"
            if run.pacer is not None and (paused := run.pacer.paused_for()) > 0:
                pace += f" (paused {paused:.0f} s)"
            progress.update(
                task,
                completed=summary.done,
                total=run.total,
                counts=outcome_counts(summary),
                pace=pace,
            )
            await anyio.sleep(0.25)

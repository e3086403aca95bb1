"""The purge itself: reader → bounded stream → worker pool → report, in one task group.

IDs travel from the reader to the workers in batches over a small anyio memory stream, and
workers take them one at a time from a shared buffer: the stream costs one event-loop pass per
batch rather than per ID, and memory grows with the batch size and the concurrency, never with
the input. Results are written to the report by the worker that got them (the writer is
synchronous and flushes each row), and a background task makes the report durable every second.
"""

from __future__ import annotations

import logging
import signal
import time
from collections import deque
from collections.abc import AsyncIterable, AsyncIterator, Container, Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

import anyio
from anyio.abc import ObjectReceiveStream, ObjectSendStream

from bulkdelete._version import __version__
from bulkdelete.client import DeleteClient
from bulkdelete.errors import BulkDeleteError
from bulkdelete.outcome import Outcome, Result, utc_now
from bulkdelete.pacing import Pacer, PacerClosed
from bulkdelete.reader import Entry, IdFilter, InputCounts
from bulkdelete.report import ReportSink, Summary
from bulkdelete.settings import Settings

log = logging.getLogger("bulkdelete")

Records = Iterable[tuple[int, str]] | AsyncIterable[tuple[int, str]]

BATCH_SIZE = 256
# A batch leaves the reader when full or when this old, so a slow stdin still flows.
BATCH_AGE = 0.02
SYNC_EVERY = 1.0


@runtime_checkable
class Syncable(Protocol):
    def sync(self) -> None: ...


@dataclass(slots=True)
class Run:
    """What a running purge exposes to a progress display: live counts and the pace."""

    summary: Summary
    id_filter: IdFilter
    pacer: Pacer | None = None
    total: int | None = None
    stopping: bool = False
    in_flight: int = 0
    reader_scope: anyio.CancelScope | None = None
    error: BulkDeleteError | None = None  # what stopped the run, raised once it has wound down
    previous: Mapping[str, Outcome] | None = None  # a resumed job's last outcome per ID
    retried: int = 0  # IDs this run finished that had failed in an earlier run


@dataclass(slots=True)
class Plan:
    """What a purge of an input would do, from one pass over it before any request."""

    counts: InputCounts
    first_invalid: list[Entry]  # the first few IDs that can never be sent, with their lines

    @property
    def to_delete(self) -> int:
        """Distinct IDs that would be sent."""
        return self.counts.distinct - self.counts.invalid


def plan(records: Iterable[tuple[int, str]], skip: Container[str], shown: int = 5) -> Plan:
    """Read every record once, checking and counting, and send nothing."""
    id_filter = IdFilter(skip=skip)
    first_invalid: list[Entry] = []
    for entry in id_filter.entries(records):
        if entry.invalid is not None and len(first_invalid) < shown:
            first_invalid.append(entry)
    return Plan(id_filter.counts, first_invalid)


def loop_options() -> dict[str, object]:
    """anyio's asyncio options: uvloop when it is installed (``bulkdelete[fast]``).

    uvloop runs the same code with less CPU per request; without it the standard loop serves.
    """
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return {}
    return {"use_uvloop": True}


async def purge(
    ids: Iterable[str] | AsyncIterable[str],
    settings: Settings,
    report: ReportSink | None = None,
    *,
    skip: Iterable[str] = (),
) -> Summary:
    """Delete every distinct ID in ``ids`` through the orq.ai API; return the summary.

    ``ids`` is any iterable or async iterable of strings (it is consumed lazily, so it may be
    endless or huge; a plain iterable is consumed in a worker thread, a batch at a time). Each
    distinct ID is sent at most once, duplicates are counted, and IDs that cannot travel as one
    URL path segment are reported ``invalid`` and never sent.
    ``report`` receives one :class:`~bulkdelete.outcome.Result` per distinct ID as it
    happens (see :class:`~bulkdelete.report.FileReport` and
    :class:`~bulkdelete.report.MemoryReport`); ``skip`` names IDs already done.

    A failed ID is a result, not an exception. Raises :class:`~bulkdelete.errors.UsageError`
    for bad settings (before any request), :class:`~bulkdelete.errors.AuthError` when the API
    refuses the key, and :class:`~bulkdelete.errors.RunStopped` when a safety limit stops it.
    """
    run = Run(summary=Summary(), id_filter=IdFilter(skip=frozenset(skip)))
    # A plain iterable is read in a worker thread, batch by batch, like a file; an async one
    # is read on the event loop.
    records: Records = _numbered(ids) if isinstance(ids, AsyncIterable) else enumerate(ids, 1)
    return await run_job(records, settings, report, run)


async def run_job(
    records: Records,
    settings: Settings,
    report: ReportSink | None,
    run: Run,
    *,
    handle_signals: bool = False,
) -> Summary:
    """Run one purge over ``(line, id)`` records; the engine behind :func:`purge` and the CLI.

    With ``handle_signals``, the first SIGINT or SIGTERM stops gracefully (nothing new is
    sent, requests in flight finish and are recorded) and a second stops at once; either way
    ``summary.interrupted`` is set and the report stays consistent.
    """
    settings = settings.checked()
    summary = run.summary
    summary.started_at = summary.started_at or utc_now()
    summary.base_url = settings.base_url
    summary.rate = str(settings.rate)
    summary.version = __version__
    summary.dry_run = settings.dry_run
    pacer = run.pacer = Pacer(settings.rate)
    sink = report if report is not None else _NullReport()
    send, receive = anyio.create_memory_object_stream[list[Entry]](max_buffer_size=4)
    feed = _Feed(receive)
    try:
        async with DeleteClient(settings, pacer) as client, anyio.create_task_group() as outer:
            if handle_signals:
                outer.start_soon(_watch_signals, run, outer.cancel_scope)
            if isinstance(sink, Syncable):
                outer.start_soon(_sync_every_second, sink)
            async with anyio.create_task_group() as workers:
                workers.start_soon(_read, records, run.id_filter, send, run)
                for _ in range(settings.concurrency):
                    workers.start_soon(_work, feed, client, sink, run)
            outer.cancel_scope.cancel()
        if run.error is not None:
            raise run.error
    except BaseExceptionGroup as group:
        raise _first_error(group) from None
    finally:
        _finish(run)
    return summary


def _finish(run: Run) -> None:
    summary = run.summary
    counts = run.id_filter.counts
    summary.input_lines = counts.input_lines
    summary.duplicates = counts.duplicates
    summary.distinct = counts.distinct
    summary.skipped = counts.skipped
    summary.not_attempted = max(0, counts.distinct - summary.done)
    if run.pacer is not None:
        summary.pace_per_second = round(run.pacer.per_second, 6)
        summary.pauses = run.pacer.pauses
        summary.slowdowns = run.pacer.slowdowns
    summary.finished_at = utc_now()


def _first_error(group: BaseExceptionGroup[BaseException]) -> BaseException:
    """The error that stopped the run, shown as itself rather than as an exception group."""
    for exc in group.exceptions:
        if isinstance(exc, BaseExceptionGroup):
            return _first_error(exc)
        if isinstance(exc, BulkDeleteError):
            return exc
    return group.exceptions[0]


class _NullReport:
    def write(self, result: Result) -> None:
        pass


async def _numbered(ids: AsyncIterable[str]) -> AsyncIterator[tuple[int, str]]:
    line = 0
    async for identity_id in ids:
        line += 1
        yield line, identity_id


def stop(run: Run, error: BulkDeleteError | None = None) -> None:
    """Wind the run down: read nothing more, send nothing new; requests in flight finish and
    are recorded (an identity they deleted is never missing from the report). ``error``, the
    first one that stopped the run, is raised once the workers are done."""
    if error is not None and run.error is None:
        run.error = error
    if run.stopping:
        return
    run.stopping = True
    if run.pacer is not None:
        run.pacer.close()
    if run.reader_scope is not None:
        run.reader_scope.cancel()


async def _read(
    records: Records, id_filter: IdFilter, send: ObjectSendStream[list[Entry]], run: Run
) -> None:
    """Feed batches of checked entries to the workers until the input ends."""
    with anyio.CancelScope() as run.reader_scope:
        try:
            await _read_into(records, id_filter, send, run)
        except BulkDeleteError as exc:  # a line that cannot be read
            stop(run, exc)


async def _read_into(
    records: Records, id_filter: IdFilter, send: ObjectSendStream[list[Entry]], run: Run
) -> None:
    async with send:
        if isinstance(records, AsyncIterable):
            batch: list[Entry] = []
            started = 0.0
            async for line, raw_id in records:
                if run.stopping:
                    return
                entry = id_filter.check(line, raw_id)
                if entry is None:
                    continue
                if not batch:
                    started = time.monotonic()
                batch.append(entry)
                if len(batch) >= BATCH_SIZE or time.monotonic() - started > BATCH_AGE:
                    await send.send(batch)
                    batch = []
            if batch:
                await send.send(batch)
        else:
            entries = id_filter.entries(records)
            while not run.stopping:
                batch = await anyio.to_thread.run_sync(_take_batch, entries, abandon_on_cancel=True)
                if not batch:
                    return
                await send.send(batch)


def _take_batch(entries: Iterator[Entry]) -> list[Entry]:
    batch: list[Entry] = []
    deadline = time.monotonic() + BATCH_AGE
    for entry in entries:
        batch.append(entry)
        if len(batch) >= BATCH_SIZE or time.monotonic() > deadline:
            break
    return batch


class _Feed:
    """Hands entries to workers one at a time from batches off the stream.

    One worker at a time waits on the stream; the others wait for the lock and then find the
    batch it brought in the shared buffer, so a single batch still feeds every worker.
    """

    __slots__ = ("_buffer", "_ended", "_lock", "_receive")

    def __init__(self, receive: ObjectReceiveStream[list[Entry]]) -> None:
        self._receive = receive
        self._buffer: deque[Entry] = deque()
        self._ended = False
        self._lock = anyio.Lock()

    def take(self) -> Entry | None:
        """The next entry if one is buffered, without waiting (the hot path)."""
        return self._buffer.popleft() if self._buffer else None

    async def next(self) -> Entry | None:
        buffer = self._buffer
        while not buffer:
            if self._ended:
                return None
            async with self._lock:
                if buffer or self._ended:
                    continue
                try:
                    buffer.extend(await self._receive.receive())
                except (anyio.EndOfStream, anyio.ClosedResourceError):
                    self._ended = True
        return buffer.popleft()


async def _work(feed: _Feed, client: DeleteClient, report: ReportSink, run: Run) -> None:
    summary = run.summary
    # A dry run that checks (--dry-run --check) only looks identities up: it never deletes.
    send = client.look_up if run.summary.dry_run else client.delete
    previous = run.previous
    while not run.stopping:
        entry = feed.take() or await feed.next()
        if entry is None:
            return
        if entry.invalid is not None:
            result = Result(entry.id, Outcome.INVALID, None, 0, entry.invalid, "", utc_now())
        else:
            run.in_flight += 1
            try:
                result = await send(entry.id)
            except PacerClosed:
                return
            except BulkDeleteError as exc:  # the key refused, an outage too long...
                stop(run, exc)
                return
            finally:
                run.in_flight -= 1
        report.write(result)
        summary.count(result.outcome)
        if previous is not None and previous.get(result.id) is Outcome.FAILED:
            run.retried += 1
        if result.outcome is Outcome.FAILED:
            log.warning(
                "%r failed after %d attempt(s): %s",
                result.id,
                result.attempts,
                result.error,
                extra={"event": {"event": "failed", "id": result.id, "error": result.error}},
            )


async def _sync_every_second(report: Syncable) -> None:
    while True:
        await anyio.sleep(SYNC_EVERY)
        await anyio.to_thread.run_sync(report.sync)


async def _watch_signals(run: Run, everything: anyio.CancelScope) -> None:
    with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for signum in signals:
            run.summary.interrupted = True
            name = signal.Signals(signum).name
            if not run.stopping:
                stop(run)
                log.warning(
                    "%s: stopping; %d request(s) in flight finish first "
                    "(press Ctrl-C again to stop at once)",
                    name,
                    run.in_flight,
                )
            else:
                log.warning("%s again: stopping at once", name)
                everything.cancel()
                return

"""Recording results: the report (one row per distinct ID, written as it happens) and its summary.

A report is ``.csv`` or ``.jsonl``, chosen by the path's extension, with the columns of
:data:`COLUMNS`. Each row is flushed to the operating system as it is written, so a killed
process loses nothing that was written; :meth:`FileReport.sync` makes it durable on disk.
Beside the report, ``<report>.summary.json`` holds the counts of the whole job.
"""

from __future__ import annotations

import asyncio
import csv
import json
import os
from collections import Counter
from collections.abc import Container, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import IO, Any, Protocol

from bulkdelete.errors import UsageError
from bulkdelete.outcome import FINAL_OUTCOMES, Outcome, Result

COLUMNS = ("id", "outcome", "http_status", "attempts", "error", "request_id", "finished_at")
REPORT_FORMATS = (".csv", ".jsonl")


class ReportSink(Protocol):
    """Where results go. The pipeline calls ``write`` once per distinct ID."""

    def write(self, result: Result) -> None: ...


class MemoryReport:
    """Keeps results in a list: for library users and tests that want them in hand."""

    def __init__(self) -> None:
        self.results: list[Result] = []

    def write(self, result: Result) -> None:
        self.results.append(result)


def report_format(path: str | os.PathLike[str]) -> str:
    """``.csv`` or ``.jsonl`` from the report path, else a UsageError."""
    suffix = Path(path).suffix.lower()
    if suffix not in REPORT_FORMATS:
        raise UsageError(f"--report {os.fspath(path)!r} must end in .csv or .jsonl")
    return suffix


def summary_path(report_path: str | os.PathLike[str]) -> Path:
    """Where the summary of ``report_path`` lives: ``<report>.summary.json``."""
    return Path(f"{os.fspath(report_path)}.summary.json")


class FileReport:
    """Appends rows to a ``.csv`` or ``.jsonl`` report, flushed as they are written.

    Inside an event loop, the rows written in one pass of the loop are flushed together at the
    end of that pass (one system call rather than one per row); outside one, each row is
    flushed at once. :meth:`sync` (fdatasync) makes them durable on disk; the pipeline calls
    it every second from a worker thread, and :meth:`close` once more at the end.

    The file is created on the first row, so a run refused before any work leaves no file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self._format = report_format(path)
        self._file: IO[str] | None = None
        self._csv: Any = None  # a csv.writer once the file is open
        self._flush_pending = False

    def write(self, result: Result) -> None:
        file = self._file or self._open()
        status = "" if result.http_status is None else result.http_status
        if self._csv is not None:
            # csv.writer goes through a row a character at a time (some 13,000 instructions a
            # row, 3% of a DELETE's CPU time against a fast server). A row with no comma,
            # quote or line break of its own needs no quoting, and then this join is byte for
            # byte what csv.writer writes (tests/test_report.py holds it to that).
            line = (
                f"{result.id},{result.outcome.value},{status},{result.attempts},"
                f"{result.error},{result.request_id},{result.finished_at}\r\n"
            )
            if (
                line.count(",") == 6
                and line.count("\n") == line.count("\r") == 1
                and '"' not in line
            ):
                file.write(line)
            else:
                self._csv.writerow(self._row(result, status))
        else:
            row = self._row(result, status)
            file.write(json.dumps(dict(zip(COLUMNS, row, strict=True)), ensure_ascii=False) + "\n")
        if not self._flush_pending:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                file.flush()
                return
            self._flush_pending = True
            loop.call_soon(self._flush)

    @staticmethod
    def _row(result: Result, status: int | str) -> tuple[object, ...]:
        return (
            result.id,
            result.outcome.value,
            status,
            result.attempts,
            result.error,
            result.request_id,
            result.finished_at,
        )

    def _flush(self) -> None:
        self._flush_pending = False
        if self._file is not None:
            self._file.flush()

    def sync(self) -> None:
        """Make every row flushed so far durable on disk. Safe to call from another thread:
        it touches only the file descriptor, never the Python-level buffer."""
        file = self._file
        if file is not None:
            _datasync(file.fileno())

    def close(self) -> None:
        if self._file is not None:
            self._file.flush()
            _datasync(self._file.fileno())
            self._file.close()
            self._file = None
            self._flush_pending = False

    def _open(self) -> IO[str]:
        empty = not self.path.exists() or self.path.stat().st_size == 0
        # newline="" lets csv write its own CRLF, and keeps CR/LF inside a quoted ID intact.
        file = self.path.open("a", encoding="utf-8", newline="")
        if self._format == ".csv":
            self._csv = csv.writer(file)
            if empty:
                self._csv.writerow(COLUMNS)
        self._file = file
        return file


def read_report(path: str | os.PathLike[str]) -> Iterator[Result]:
    """The rows of a report, in order. A last line cut off by a crash is skipped."""
    fmt = report_format(path)
    with Path(path).open(encoding="utf-8", newline="") as file:
        if fmt == ".csv":
            yield from _read_csv(file)
        else:
            yield from _read_jsonl(file)


def _datasync(fd: int) -> None:
    # fdatasync skips the file's timestamps, which a report does not need to survive a crash.
    try:
        os.fdatasync(fd)
    except (AttributeError, OSError):
        os.fsync(fd)


def _result(row: dict[str, object]) -> Result | None:
    try:
        outcome = Outcome(str(row["outcome"]))
        status = row.get("http_status")
        attempts = row.get("attempts")
        return Result(
            id=str(row["id"]),
            outcome=outcome,
            http_status=int(str(status)) if status not in (None, "") else None,
            attempts=int(str(attempts)) if attempts not in (None, "") else 0,
            error=str(row.get("error") or ""),
            request_id=str(row.get("request_id") or ""),
            finished_at=str(row.get("finished_at") or ""),
        )
    except (KeyError, ValueError):
        return None


def _read_csv(file: IO[str]) -> Iterator[Result]:
    reader = csv.DictReader(file)
    if reader.fieldnames is None:
        return
    missing = [name for name in ("id", "outcome") if name not in reader.fieldnames]
    if missing:
        raise UsageError(f"{file.name} is not a bulkdelete report: no column {missing[0]!r}")
    try:
        for row in reader:
            # A row cut short by a crash lacks its last columns (csv fills them with None).
            if row.get("finished_at") is None:
                continue
            result = _result(dict(row))
            if result is not None:
                yield result
    except csv.Error:
        return  # a torn quoted field at the very end


def _read_jsonl(file: IO[str]) -> Iterator[Result]:
    for line in file:
        if not line.endswith("\n"):
            break  # the last line was cut off by a crash
        try:
            data = json.loads(line)
        except ValueError:
            continue
        if isinstance(data, dict):
            result = _result(data)
            if result is not None:
                yield result


@dataclass(slots=True)
class Summary:
    """The counts of a run, as written to ``<report>.summary.json``."""

    deleted: int = 0
    not_found: int = 0
    failed: int = 0
    invalid: int = 0
    duplicates: int = 0
    input_lines: int = 0
    started_at: str = ""
    finished_at: str = ""
    base_url: str = ""
    rate: str = ""
    version: str = ""
    input_sha256: str | None = None
    distinct: int = 0
    skipped: int = 0
    not_attempted: int = 0
    pace_per_second: float = 0.0
    pauses: int = 0
    slowdowns: int = 0
    dry_run: bool = False
    stopped: str | None = None
    interrupted: bool = False
    report: str | None = None
    extra: dict[str, object] = field(default_factory=dict)

    def count(self, outcome: Outcome) -> None:
        """Add one result of ``outcome`` to the counts."""
        if outcome is Outcome.DELETED:
            self.deleted += 1
        elif outcome is Outcome.NOT_FOUND:
            self.not_found += 1
        elif outcome is Outcome.FAILED:
            self.failed += 1
        else:
            self.invalid += 1

    @property
    def done(self) -> int:
        """IDs with a row in the report from this run."""
        return self.deleted + self.not_found + self.failed + self.invalid

    @property
    def exit_code(self) -> int:
        """0 when every ID ended deleted or not_found; 1 when any failed or was invalid."""
        return 1 if self.failed or self.invalid else 0

    def begin_job(self, prior: PriorJob | None) -> None:
        """Number this run within its job; a resumed job keeps its first start."""
        self.extra["this_run"] = {"started_at": self.started_at}
        runs = prior.summary.get("runs", 1) if prior else 0
        self.extra["runs"] = (runs if isinstance(runs, int) else 1) + 1
        first = prior.summary.get("started_at") if prior else None
        if isinstance(first, str) and first:
            self.started_at = first

    def end_job(self, prior: PriorJob, retried: int) -> None:
        """Make the counts cover the whole job: the last row per ID across runs.

        This run wrote a row for new IDs and for ``retried`` IDs that had failed before (it
        skipped every other ID), so the job's counts follow without reading the report again.
        """
        this_run = self.extra.setdefault("this_run", {})
        assert isinstance(this_run, dict)
        for outcome in Outcome:
            this_run[outcome.value] = getattr(self, outcome.value)
            setattr(
                self, outcome.value, prior.counts.get(outcome.value, 0) + this_run[outcome.value]
            )
        self.failed -= retried

    def to_dict(self) -> dict[str, object]:
        data = asdict(self)
        extra = data.pop("extra")
        assert isinstance(extra, dict)
        data.update(extra)
        return data

    def write(self, path: str | os.PathLike[str]) -> None:
        """Write the summary as JSON, atomically (a crash leaves the old one or the new one)."""
        target = Path(path)
        temporary = target.with_name(target.name + ".tmp")
        with temporary.open("w", encoding="utf-8") as file:
            json.dump(self.to_dict(), file, indent=2, ensure_ascii=False)
            file.write("\n")
            file.flush()
            os.fsync(file.fileno())
        temporary.replace(target)


@dataclass(slots=True)
class PriorJob:
    """What earlier runs of a job left in its report, for ``--resume``."""

    last: dict[str, Outcome] = field(default_factory=dict)  # each ID's outcome in its last row
    counts: dict[str, int] = field(default_factory=dict)  # outcome -> IDs
    repaired_bytes: int = 0
    summary: dict[str, object] = field(default_factory=dict)

    @property
    def final(self) -> FinalIds:
        """The IDs not to try again: their last outcome is final."""
        return FinalIds(self.last)


class FinalIds(Container[str]):
    """``id in final``: true when the ID's last outcome is final (a view, not a copy)."""

    __slots__ = ("_last",)

    def __init__(self, last: dict[str, Outcome]) -> None:
        self._last = last

    def __contains__(self, identity_id: object) -> bool:
        return self._last.get(identity_id) in FINAL_OUTCOMES  # type: ignore[call-overload]


def repair_report(path: str | os.PathLike[str]) -> int:
    """Cut a last line that a crash left half-written; return how many bytes were dropped."""
    target = Path(path)
    size = target.stat().st_size
    if size == 0:
        return 0
    with target.open("rb+") as file:
        file.seek(-1, os.SEEK_END)
        if file.read(1) == b"\n":
            return 0
        # Read backwards in blocks until the last newline: the tail after it is the torn row.
        position = size
        while position > 0:
            step = min(65536, position)
            position -= step
            file.seek(position)
            block = file.read(step)
            cut = block.rfind(b"\n")
            if cut >= 0:
                keep = position + cut + 1
                break
        else:
            keep = 0
        file.truncate(keep)
        file.flush()
        os.fsync(file.fileno())
    return size - keep


def last_outcomes(path: str | os.PathLike[str]) -> dict[str, Outcome]:
    """Each ID's outcome in its last row (a resumed job may hold earlier ``failed`` rows).

    Reads only the two columns it needs: a million-row report takes about a second.
    """
    fmt = report_format(path)
    outcomes = {outcome.value: outcome for outcome in Outcome}
    last: dict[str, Outcome] = {}
    with Path(path).open(encoding="utf-8", newline="") as file:
        if fmt == ".jsonl":
            for result in _read_jsonl(file):
                last[result.id] = result.outcome
            return last
        reader = csv.reader(file)
        header = next(reader, None)
        if header is None:
            return last
        if "id" not in header or "outcome" not in header:
            raise UsageError(f"{path} is not a bulkdelete report: it needs id and outcome columns")
        id_at, outcome_at, width = header.index("id"), header.index("outcome"), len(header)
        try:
            for row in reader:
                if len(row) == width and (outcome := outcomes.get(row[outcome_at])):
                    last[row[id_at]] = outcome
        except csv.Error:
            pass  # a torn quoted field at the very end
    return last


def load_prior_job(path: str | os.PathLike[str]) -> PriorJob:
    """Read a report (repairing a torn last line) and its summary, for ``--resume``."""
    prior = PriorJob()
    prior.repaired_bytes = repair_report(path)
    prior.last = last_outcomes(path)
    prior.counts = _outcome_counts(prior.last)
    prior.summary = load_summary(path)
    return prior


def _outcome_counts(last: dict[str, Outcome]) -> dict[str, int]:
    """IDs per outcome (every outcome named, 0 included) from each ID's last outcome."""
    counts = Counter(last.values())
    return {outcome.value: counts[outcome] for outcome in Outcome}


def load_summary(report_path: str | os.PathLike[str]) -> dict[str, object]:
    """The summary beside a report, or an empty dict when there is none (or it is unreadable)."""
    try:
        data = json.loads(summary_path(report_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


_OVERVIEW_KEYS = ("runs", "state", "started_at", "finished_at", "base_url", "rate", "duplicates")


def overview(report_path: str | os.PathLike[str]) -> dict[str, object]:
    """What ``bulkdelete report summary`` shows: the job's counts, last row per ID, and the
    summary's facts about its runs."""
    last = last_outcomes(report_path)
    data: dict[str, object] = {"report": os.fspath(report_path), "ids": len(last)}
    data.update(_outcome_counts(last))
    earlier = load_summary(report_path)
    data.update({key: earlier[key] for key in _OVERVIEW_KEYS if key in earlier})
    return data


def failed_ids(report_path: str | os.PathLike[str]) -> Iterator[str]:
    """The IDs whose last outcome is ``failed``: the ones that still need work."""
    for identity_id, outcome in last_outcomes(report_path).items():
        if outcome is Outcome.FAILED:
            yield identity_id

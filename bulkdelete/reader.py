"""Reading IDs: input formats → (line, ID) records → checked, deduplicated entries.

`open_input` opens a CSV, TXT or JSONL file (or stdin) and checks its header straight away, so a
bad input is reported before any request. `InputSource.records` then streams ``(line, id)`` pairs
without ever holding the input whole, and `IdFilter` turns them into `Entry` objects: each
distinct ID once, with the reason it can never be sent when it cannot.
"""

from __future__ import annotations

import csv
import hashlib
import json
import os
import sys
import unicodedata
from collections.abc import Container, Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any, BinaryIO, Literal, get_args

from bulkdelete.errors import InputError, UsageError

Format = Literal["csv", "txt", "jsonl"]
FORMATS: tuple[Format, ...] = get_args(Format)
MAX_ID_LENGTH = 1024
ID_COLUMNS = ("id", "identity_id", "_id", "external_id")

_EXTENSIONS: dict[str, Format] = {".csv": "csv", ".txt": "txt", ".jsonl": "jsonl"}
_BOM = "\ufeff"
_MAX_LISTED_COLUMNS = 20


def invalid_reason(raw_id: str) -> str | None:
    """Say why `raw_id` cannot travel as one URL path segment, or return None when it can.

    Invalid: empty, ``.``, ``..``, longer than `MAX_ID_LENGTH` characters, or holding a control
    character (Unicode category Cc) or an unpaired surrogate (which has no UTF-8 encoding).
    Positions in the reason count from 1.
    """
    length = len(raw_id)
    if length == 0:
        return "empty"
    if length > MAX_ID_LENGTH:
        return f"longer than {MAX_ID_LENGTH} characters ({length})"
    # isprintable() is a fast, exact "no Cc, no Cs" answer for the common case; it is also False
    # for harmless characters (non-ASCII spaces, format marks), which the slow path lets through.
    if not raw_id.isprintable():
        for position, char in enumerate(raw_id, 1):
            category = unicodedata.category(char)
            if category == "Cc":
                return f"control character U+{ord(char):04X} at position {position}"
            if category == "Cs":
                return f"unpaired surrogate U+{ord(char):04X} at position {position}"
    if raw_id == ".":
        return '"." is not an ID'
    if raw_id == "..":
        return '".." is not an ID'
    return None


class BadRecord(str):
    """The text of an input record that holds no usable ID; `reason` says why.

    `InputSource.records` yields one in place of an ID (for example a JSONL object without the ID
    field); `IdFilter` turns it into an invalid `Entry` whose ``id`` is the record's text.
    """

    reason: str

    def __new__(cls, text: str, reason: str) -> BadRecord:
        record = super().__new__(cls, text)
        record.reason = reason
        return record


@dataclass(frozen=True, slots=True)
class Entry:
    """One distinct ID from the input, checked."""

    line: int
    """1-based line number in the input where the record starts."""
    id: str
    invalid: str | None
    """Why the ID is never sent, or None when it can be sent."""


class InputSource:
    """An opened input: iterate `records()` for (line, raw_id) pairs.

    Use it as a context manager, or call `close()`. `sha256` is the hex digest of the input's
    bytes once `records()` has been read to the end (always None for stdin).
    """

    __slots__ = (
        "_file",
        "_first",
        "_hasher",
        "_line_no",
        "_owns_file",
        "_rest",
        "_started",
        "column",
        "format",
        "path",
        "sha256",
    )

    path: str
    format: Format
    column: str | None
    sha256: str | None

    def __init__(
        self,
        path: str,
        format: Format,
        column: str | None,
        file: BinaryIO,
        *,
        owns_file: bool,
    ) -> None:
        self.path = path
        self.format = format
        self.column = column
        self.sha256 = None
        self._file = file
        self._owns_file = owns_file
        self._hasher = hashlib.sha256() if owns_file else None
        self._line_no = 0
        self._started = False
        parse = {"csv": self._csv_records, "txt": self._txt_records, "jsonl": self._jsonl_records}
        self._rest: Iterator[tuple[int, str]] = parse[format]()
        # Reading the first record now brings header, column and encoding errors forward, before
        # any request is sent.
        self._first = next(self._rest, None)

    def records(self) -> Iterator[tuple[int, str]]:
        """Stream ``(line, id)`` pairs: IDs stripped, blank lines skipped. Can be called once.

        A record with no usable ID comes as a `BadRecord`. Raises `InputError` when the input
        turns out unreadable part-way (not UTF-8, not JSON).
        """
        if self._started:
            raise RuntimeError(f"records() of {self.path} can be read only once")
        self._started = True
        return self._replay()

    def close(self) -> None:
        """Close the input file (stdin is left open)."""
        if self._owns_file:
            self._file.close()

    def __enter__(self) -> InputSource:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"InputSource(path={self.path!r}, format={self.format!r}, column={self.column!r})"

    @property
    def _name(self) -> str:
        return "stdin" if self.path == "-" else self.path

    def _replay(self) -> Iterator[tuple[int, str]]:
        if self._first is not None:
            yield self._first
            self._first = None
        yield from self._rest

    def _lines(self) -> Iterator[str]:
        """Decode the input line by line, counting lines and hashing the bytes."""
        hasher = self._hasher
        try:
            for raw in self._file:
                self._line_no += 1
                if hasher is not None:
                    hasher.update(raw)
                try:
                    text = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    byte = raw[exc.start]
                    raise InputError(
                        f"input {self._name} line {self._line_no} is not UTF-8 "
                        f"(byte 0x{byte:02X}): "
                        "save the input as UTF-8 and try again"
                    ) from None
                if self._line_no == 1 and text.startswith(_BOM):
                    text = text[1:]
                yield text
        except OSError as exc:
            raise InputError(f"cannot read input {self._name}: {exc.strerror or exc}") from None
        if hasher is not None:
            self.sha256 = hasher.hexdigest()

    def _txt_records(self) -> Iterator[tuple[int, str]]:
        for text in self._lines():
            raw_id = text.strip()
            if raw_id:
                yield self._line_no, raw_id

    def _csv_records(self) -> Iterator[tuple[int, str]]:
        rows = csv.reader(self._lines())
        header: list[str] | None = None
        index = 0
        while True:
            start = self._line_no + 1
            try:
                row = next(rows, None)
            except csv.Error as exc:
                raise InputError(
                    f"input {self._name} line {start} is not valid CSV ({exc}): "
                    "fix that line and try again"
                ) from None
            if row is None:
                return
            if header is None:
                if any(cell.strip() for cell in row):
                    header = [cell.strip() for cell in row]
                    index = self._pick_column(header)
                continue
            cell = row[index].strip() if index < len(row) else ""
            if cell:
                yield start, cell
            elif any(other.strip() for other in row):
                yield start, ""

    def _pick_column(self, header: list[str]) -> int:
        if self.column is not None:
            if self.column in header:
                return header.index(self.column)
            raise InputError(
                f"input {self._name} has no column {_quote(self.column)}; its columns are "
                f"{_list_names(header)}: pass one of them to --column"
            )
        name = _default_name(header)
        if name is None:
            raise InputError(
                f"input {self._name} has no id column; its columns are {_list_names(header)}: "
                "pass the one that holds the IDs to --column"
            )
        self.column = name
        return header.index(name)

    def _jsonl_records(self) -> Iterator[tuple[int, str]]:
        for text in self._lines():
            stripped = text.strip()
            if not stripped:
                continue
            try:
                value = json.loads(stripped)
            except ValueError as exc:
                detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
                raise InputError(
                    f"input {self._name} line {self._line_no} is not valid JSON ({detail}): "
                    "each line must be a JSON object or string"
                ) from None
            yield self._line_no, self._jsonl_id(stripped, value)

    def _jsonl_id(self, text: str, value: Any) -> str:
        if isinstance(value, dict):
            field = self.column
            if field is None:
                field = _default_name(list(value))
                if field is None:
                    raise InputError(
                        f"input {self._name} line {self._line_no} has no id field; its fields "
                        f"are {_list_names(list(value))}: pass the one that holds the IDs to "
                        "--column"
                    )
                # The first object settles the field for the whole input, as a CSV header does.
                self.column = field
            if field not in value:
                return BadRecord(text, f"no {_quote(field)} field")
            value = value[field]
            what = f"field {_quote(field)}"
            expected = "a string or integer"
        else:
            what, expected = "line", "a JSON object, string or integer"
        if isinstance(value, str):
            return value.strip()
        if isinstance(value, int) and not isinstance(value, bool):
            return str(value)
        return BadRecord(text, f"{what} is {_json_kind(value)}, not {expected}")


def _default_name(names: list[str]) -> str | None:
    """The first of `ID_COLUMNS` among `names` (ignoring case), else the only name."""
    by_lower: dict[str, str] = {}
    for name in names:
        by_lower.setdefault(name.lower(), name)
    for wanted in ID_COLUMNS:
        if wanted in by_lower:
            return by_lower[wanted]
    if len(names) == 1:
        return names[0]
    return None


def _list_names(names: list[str]) -> str:
    listed = ", ".join(_quote(name) for name in names[:_MAX_LISTED_COLUMNS])
    if len(names) > _MAX_LISTED_COLUMNS:
        listed += f" and {len(names) - _MAX_LISTED_COLUMNS} more"
    return listed or "(none)"


def _quote(name: str) -> str:
    return json.dumps(name, ensure_ascii=False)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return "a number with a fraction"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _format_for(path: str, format: Format | None) -> Format:
    if format is not None:
        if format not in FORMATS:
            raise UsageError(f"unknown --format {format!r}: use csv, txt or jsonl")
        return format
    if path == "-":
        return "txt"
    extension = os.path.splitext(path)[1].lower()
    if extension in _EXTENSIONS:
        return _EXTENSIONS[extension]
    raise UsageError(
        f"cannot tell the format of input {path} from its extension: "
        "pass --format csv, txt or jsonl"
    )


def open_input(
    path: str,
    format: Format | None = None,
    column: str | None = None,
    stdin: BinaryIO | None = None,
) -> InputSource:
    """Open the input and check its header now, so errors come before any request.

    `path` ``-`` reads `stdin` (default ``sys.stdin.buffer``). The format is `format`, else the
    file's extension, else ``txt`` for stdin. `column` names the CSV column or JSONL field that
    holds the IDs; by default the first present of `ID_COLUMNS`, else the only one.

    Raises `UsageError` for bad options and `InputError` for an input that cannot be read.
    """
    resolved = _format_for(path, format)
    if column is not None:
        if resolved == "txt":
            raise UsageError(
                "--column applies to csv and jsonl input, not txt: drop it or pass --format"
            )
        if not column.strip():
            raise UsageError("--column is empty: pass the name of the column that holds the IDs")
        column = column.strip()
    if path == "-":
        file: BinaryIO = stdin if stdin is not None else sys.stdin.buffer
        return InputSource(path, resolved, column, file, owns_file=False)
    try:
        file = open(path, "rb")  # noqa: SIM115 - the InputSource owns and closes it
    except OSError as exc:
        raise InputError(f"cannot read input {path}: {exc.strerror or exc}") from None
    try:
        return InputSource(path, resolved, column, file, owns_file=True)
    except BaseException:
        file.close()
        raise


@dataclass(slots=True)
class InputCounts:
    """What `IdFilter` has seen so far."""

    input_lines: int = 0
    """ID-bearing records read (not blank lines or the CSV header), repeats and all."""
    distinct: int = 0
    """Distinct IDs delivered, valid and invalid."""
    duplicates: int = 0
    invalid: int = 0
    """Distinct invalid IDs delivered."""
    skipped: int = 0
    """IDs not delivered because an earlier run already finished them (resume)."""


class IdFilter:
    """Validates and dedupes a stream of (line, id) records into Entries; keeps the counts.

    IDs in `skip` (done by an earlier run) are counted as skipped the first time and as
    duplicates after that, so a resumed run counts duplicates as a fresh run would.
    """

    __slots__ = ("_seen", "_skip", "counts")

    def __init__(self, skip: Container[str] = frozenset()) -> None:
        self.counts = InputCounts()
        self._skip = skip
        self._seen: set[str] = set()

    def entries(self, records: Iterable[tuple[int, str]]) -> Iterator[Entry]:
        """Yield an `Entry` for each distinct, not skipped ID in `records`, lazily."""
        check = self.check
        for line, raw_id in records:
            entry = check(line, raw_id)
            if entry is not None:
                yield entry

    def check(self, line: int, raw_id: str) -> Entry | None:
        """Count one record; return its `Entry`, or None for a duplicate or skipped ID."""
        counts = self.counts
        counts.input_lines += 1
        seen = self._seen
        if raw_id in seen:
            counts.duplicates += 1
            return None
        seen.add(raw_id)
        if raw_id in self._skip:
            counts.skipped += 1
            return None
        counts.distinct += 1
        if isinstance(raw_id, BadRecord):
            reason: str | None = raw_id.reason
            raw_id = str(raw_id)
        else:
            reason = invalid_reason(raw_id)
        if reason is not None:
            counts.invalid += 1
        return Entry(line, raw_id, reason)

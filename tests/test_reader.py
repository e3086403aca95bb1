"""Tests for bulkdelete.reader: input formats, validation, deduplication, streaming."""

from __future__ import annotations

import hashlib
import io
import itertools
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from bulkdelete.errors import InputError, UsageError
from bulkdelete.reader import (
    ID_COLUMNS,
    MAX_ID_LENGTH,
    Entry,
    Format,
    IdFilter,
    InputCounts,
    InputSource,
    invalid_reason,
    open_input,
)


def write(tmp_path: Path, name: str, data: bytes) -> str:
    path = tmp_path / name
    path.write_bytes(data)
    return str(path)


def read_all(source: InputSource) -> list[tuple[int, str]]:
    with source:
        return list(source.records())


def read_file(
    tmp_path: Path,
    name: str,
    data: bytes,
    format: Format | None = None,
    column: str | None = None,
) -> list[tuple[int, str]]:
    return read_all(open_input(write(tmp_path, name, data), format, column))


def read_stdin(
    data: bytes, format: Format | None = None, column: str | None = None
) -> list[tuple[int, str]]:
    return read_all(open_input("-", format, column, stdin=io.BytesIO(data)))


# --- formats ----------------------------------------------------------------------------------


def test_txt_strips_whitespace_skips_blank_lines_and_numbers_lines(tmp_path: Path) -> None:
    data = b"abc\n\n  def  \r\n\t\n with space \nlast-without-newline"
    assert read_file(tmp_path, "ids.txt", data) == [
        (1, "abc"),
        (3, "def"),
        (5, "with space"),
        (6, "last-without-newline"),
    ]


def test_txt_with_bom_and_crlf(tmp_path: Path) -> None:
    data = "\ufeffünï\r\nb\r\n".encode()
    assert read_file(tmp_path, "ids.txt", data) == [(1, "ünï"), (2, "b")]


def test_stdin_defaults_to_txt() -> None:
    source = open_input("-", stdin=io.BytesIO(b"a\nb\n"))
    assert (source.path, source.format, source.column) == ("-", "txt", None)
    assert read_all(source) == [(1, "a"), (2, "b")]


def test_stdin_with_format_csv_and_jsonl() -> None:
    assert read_stdin(b"name,id\nx,a\n", "csv") == [(2, "a")]
    assert read_stdin(b'{"id": "a"}\n"b"\n', "jsonl") == [(1, "a"), (2, "b")]


def test_dash_reads_sys_stdin_buffer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(b"x\ny\n")))
    assert read_all(open_input("-")) == [(1, "x"), (2, "y")]


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("a.csv", "csv"),
        ("a.txt", "txt"),
        ("a.jsonl", "jsonl"),
        ("A.CSV", "csv"),
        ("a.b.TxT", "txt"),
    ],
)
def test_format_by_extension(tmp_path: Path, name: str, expected: Format) -> None:
    with open_input(write(tmp_path, name, b"")) as source:
        assert source.format == expected


def test_format_option_overrides_extension(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.txt", b"id,name\na,b\n")
    with open_input(path, "csv") as source:
        assert (source.format, source.column) == ("csv", "id")
        assert list(source.records()) == [(2, "a")]


def test_format_option_for_unknown_extension(tmp_path: Path) -> None:
    assert read_file(tmp_path, "ids.dat", b"a\n", "txt") == [(1, "a")]


def test_unknown_extension_is_a_usage_error_naming_format(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.dat", b"a\n")
    with pytest.raises(UsageError, match="--format") as caught:
        open_input(path)
    assert not isinstance(caught.value, InputError)


def test_unknown_extension_is_reported_before_opening_the_file(tmp_path: Path) -> None:
    with pytest.raises(UsageError, match="--format"):
        open_input(str(tmp_path / "missing"))


def test_unknown_format_option_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--format"):
        open_input("-", "xml", stdin=io.BytesIO(b""))  # type: ignore[arg-type]


def test_column_with_txt_is_a_usage_error() -> None:
    with pytest.raises(UsageError, match="--column"):
        open_input("-", column="id", stdin=io.BytesIO(b"a\n"))


def test_missing_file_is_an_input_error(tmp_path: Path) -> None:
    path = str(tmp_path / "nope.csv")
    with pytest.raises(InputError) as caught:
        open_input(path)
    assert str(caught.value) == f"cannot read input {path}: No such file or directory"


def test_directory_is_an_input_error(tmp_path: Path) -> None:
    (tmp_path / "dir.txt").mkdir()
    with pytest.raises(InputError, match="cannot read input"):
        open_input(str(tmp_path / "dir.txt"))


def test_empty_inputs_give_no_records(tmp_path: Path) -> None:
    for name in ("e.csv", "e.txt", "e.jsonl"):
        assert read_file(tmp_path, name, b"") == []
    assert read_file(tmp_path, "h.csv", b"id,name\r\n") == []


# --- CSV ----------------------------------------------------------------------------------------


def test_csv_with_bom_and_crlf(tmp_path: Path) -> None:
    data = b"\xef\xbb\xbfid,name\r\nabc,Alice\r\ndef,Bob\r\n"
    with open_input(write(tmp_path, "ids.csv", data)) as source:
        assert source.column == "id"
        assert list(source.records()) == [(2, "abc"), (3, "def")]


def test_csv_explicit_column(tmp_path: Path) -> None:
    data = b"id,other\na,x\nb,y\n"
    with open_input(write(tmp_path, "ids.csv", data), column="other") as source:
        assert source.column == "other"
        assert list(source.records()) == [(2, "x"), (3, "y")]


@pytest.mark.parametrize("name", ID_COLUMNS)
def test_csv_default_column_names(tmp_path: Path, name: str) -> None:
    data = f"email,{name},created\nx@y,the-id,2024\n".encode()
    with open_input(write(tmp_path, "ids.csv", data)) as source:
        assert source.column == name
        assert list(source.records()) == [(2, "the-id")]


def test_csv_default_column_names_in_order_of_preference(tmp_path: Path) -> None:
    header = ",".join(reversed(ID_COLUMNS))
    data = f"{header}\n4,3,2,1\n".encode()
    with open_input(write(tmp_path, "ids.csv", data)) as source:
        assert source.column == "id"
        assert list(source.records()) == [(2, "1")]
    data = b"external_id,_id\nx,y\n"
    with open_input(write(tmp_path, "ids.csv", data)) as source:
        assert source.column == "_id"


def test_csv_default_column_ignores_case_and_spaces(tmp_path: Path) -> None:
    with open_input(write(tmp_path, "ids.csv", b"Name, ID \nx,abc\n")) as source:
        assert source.column == "ID"
        assert list(source.records()) == [(2, "abc")]


def test_csv_only_column(tmp_path: Path) -> None:
    with open_input(write(tmp_path, "ids.csv", b"identity\na\nb\n")) as source:
        assert source.column == "identity"
        assert list(source.records()) == [(2, "a"), (3, "b")]


def test_csv_ambiguous_columns_is_an_input_error_listing_headers(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.csv", b"email,name\nx,y\n")
    with pytest.raises(InputError, match="--column") as caught:
        open_input(path)
    assert '"email", "name"' in str(caught.value)
    assert "\n" not in str(caught.value)


def test_csv_unknown_column_is_an_input_error_listing_headers(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.csv", b"id,name\nx,y\n")
    with pytest.raises(InputError, match='no column "uuid"') as caught:
        open_input(path, column="uuid")
    assert '"id", "name"' in str(caught.value)


def test_csv_header_errors_come_at_open_after_leading_blank_lines(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.csv", b"\n\r\nemail,name\n")
    with pytest.raises(InputError, match="--column"):
        open_input(path)


def test_csv_blank_rows_and_empty_id_cells(tmp_path: Path) -> None:
    data = b"id,name\n\na,x\n,,\n  ,  \n,Bob\nb\n   c   ,z\n"
    assert read_file(tmp_path, "ids.csv", data) == [
        (3, "a"),
        (6, ""),  # a row with other cells and an empty ID cell: reported as an empty ID
        (7, "b"),
        (8, "c"),
    ]


def test_csv_short_row_with_other_cells_gives_an_empty_id(tmp_path: Path) -> None:
    data = b"name,id\nAlice\n"
    assert read_file(tmp_path, "ids.csv", data) == [(2, "")]


def test_csv_quoted_field_spanning_lines_keeps_its_starting_line(tmp_path: Path) -> None:
    data = b'id,note\r\n"a, b","x"\r\nc,"multi\r\nline\r\nnote"\r\nd,y\r\n'
    assert read_file(tmp_path, "ids.csv", data) == [(2, "a, b"), (3, "c"), (6, "d")]


def test_csv_unparsable_line_is_an_input_error_with_its_line(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.csv", b"id\na\nb\rc\n")
    with open_input(path) as source, pytest.raises(InputError, match="line 3"):
        list(source.records())


# --- JSONL --------------------------------------------------------------------------------------


def test_jsonl_objects_strings_integers_and_blank_lines(tmp_path: Path) -> None:
    data = b'{"id": "a", "name": "x"}\n\n"b"\n{"id": 42}\n  " c "  \r\n7\n{"id": " d "}\n'
    with open_input(write(tmp_path, "ids.jsonl", data)) as source:
        assert source.column == "id"
        assert list(source.records()) == [
            (1, "a"),
            (3, "b"),
            (4, "42"),
            (5, "c"),
            (6, "7"),
            (7, "d"),
        ]


@pytest.mark.parametrize("name", ID_COLUMNS)
def test_jsonl_default_field_names(name: str) -> None:
    data = f'{{"email": "x@y", "{name}": "the-id"}}\n'.encode()
    with open_input("-", "jsonl", stdin=io.BytesIO(data)) as source:
        assert source.column == name
        assert list(source.records()) == [(1, "the-id")]


def test_jsonl_explicit_field_and_only_field() -> None:
    data = b'{"id": "a", "uuid": "u1"}\n{"uuid": "u2"}\n'
    assert read_stdin(data, "jsonl", column="uuid") == [(1, "u1"), (2, "u2")]
    assert read_stdin(b'{"uuid": "u1"}\n', "jsonl") == [(1, "u1")]


def test_jsonl_first_object_without_id_field_is_an_input_error_listing_fields() -> None:
    stdin = io.BytesIO(b'{"email": "x", "name": "y"}\n')
    with pytest.raises(InputError, match="--column") as caught:
        open_input("-", "jsonl", stdin=stdin)
    assert '"email", "name"' in str(caught.value)


def test_jsonl_records_without_a_usable_id_are_invalid_not_errors() -> None:
    data = (
        b'{"id": "a"}\n{"name": "no id"}\n{"id": null}\n{"id": 1.5}\n{"id": true}\n'
        b'{"id": ["x"]}\n{"id": {}}\n[1]\nnull\n'
    )
    id_filter = IdFilter()
    with open_input("-", "jsonl", stdin=io.BytesIO(data)) as source:
        entries = list(id_filter.entries(source.records()))
    assert entries == [
        Entry(1, "a", None),
        Entry(2, '{"name": "no id"}', 'no "id" field'),
        Entry(3, '{"id": null}', 'field "id" is null, not a string or integer'),
        Entry(4, '{"id": 1.5}', 'field "id" is a number with a fraction, not a string or integer'),
        Entry(5, '{"id": true}', 'field "id" is true, not a string or integer'),
        Entry(6, '{"id": ["x"]}', 'field "id" is an array, not a string or integer'),
        Entry(7, '{"id": {}}', 'field "id" is an object, not a string or integer'),
        Entry(8, "[1]", "line is an array, not a JSON object, string or integer"),
        Entry(9, "null", "line is null, not a JSON object, string or integer"),
    ]
    assert all(type(entry.id) is str for entry in entries)
    assert id_filter.counts.invalid == 8


def test_jsonl_bad_json_on_first_line_fails_at_open() -> None:
    with pytest.raises(InputError, match="line 2 is not valid JSON"):
        open_input("-", "jsonl", stdin=io.BytesIO(b"\n{id: 1}\n"))


def test_jsonl_bad_json_later_fails_with_its_line_number(tmp_path: Path) -> None:
    path = write(tmp_path, "ids.jsonl", b'"a"\n"b"\n\n{"id": "c"\n"d"\n')
    with open_input(path) as source:
        records = source.records()
        assert next(records) == (1, "a")
        assert next(records) == (2, "b")
        with pytest.raises(InputError, match="line 4 is not valid JSON"):
            next(records)


# --- encoding -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "header"), [("ids.txt", b""), ("ids.csv", b"id\n")])
def test_non_utf8_is_an_input_error_naming_the_line(
    tmp_path: Path, name: str, header: bytes
) -> None:
    path = write(tmp_path, name, header + b"ok\nok2\ncaf\xe9\n")
    line = header.count(b"\n") + 3
    with open_input(path) as source, pytest.raises(InputError) as caught:
        list(source.records())
    assert f"line {line} is not UTF-8" in str(caught.value)


def test_non_utf8_first_line_fails_at_open() -> None:
    with pytest.raises(InputError, match="line 1 is not UTF-8"):
        open_input("-", stdin=io.BytesIO(b"\xff\xfeA\x00\n"))


# --- SHA-256 ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("ids.txt", b"\xef\xbb\xbfa\r\n\r\nb\nno-newline"),
        ("ids.csv", b"id,x\r\na,1\r\n\r\nb,2\r\n"),
        ("ids.jsonl", b'{"id": "a"}\n"b"\n\n'),
    ],
)
def test_sha256_of_the_file_bytes_after_reading(tmp_path: Path, name: str, data: bytes) -> None:
    with open_input(write(tmp_path, name, data)) as source:
        assert source.sha256 is None
        records = source.records()
        next(records)
        assert source.sha256 is None
        list(records)
        assert source.sha256 == hashlib.sha256(data).hexdigest()


def test_sha256_of_an_empty_file(tmp_path: Path) -> None:
    with open_input(write(tmp_path, "e.txt", b"")) as source:
        list(source.records())
        assert source.sha256 == hashlib.sha256(b"").hexdigest()


def test_sha256_is_none_for_stdin() -> None:
    with open_input("-", stdin=io.BytesIO(b"a\n")) as source:
        list(source.records())
        assert source.sha256 is None


# --- the source object --------------------------------------------------------------------------


def test_records_can_be_read_only_once() -> None:
    with open_input("-", stdin=io.BytesIO(b"a\n")) as source:
        list(source.records())
        with pytest.raises(RuntimeError):
            source.records()


def test_close_closes_a_file_but_not_stdin(tmp_path: Path) -> None:
    source = open_input(write(tmp_path, "ids.txt", b"a\n"))
    with source:
        pass
    assert source._file.closed
    stdin = io.BytesIO(b"a\n")
    with open_input("-", stdin=stdin):
        pass
    assert not stdin.closed


class EndlessIds(io.RawIOBase):
    """An endless stream of ID lines that fails the test if read past `limit` bytes."""

    def __init__(self, template: str, limit: int) -> None:
        self.template = template
        self.limit = limit
        self.bytes_read = 0
        self._counter = itertools.count()
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        size = len(buffer)
        while len(self._pending) < size:
            self._pending += self.template.format(next(self._counter)).encode()
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        self.bytes_read += size
        assert self.bytes_read <= self.limit, "the reader read far past what it needed"
        return size


@pytest.mark.parametrize(
    ("format", "template", "first_ids"),
    [
        ("txt", "id-{}\n", ["id-0", "id-1", "id-2"]),
        ("csv", "id-{}\r\n", ["id-1", "id-2", "id-3"]),  # the first line is the header
        ("jsonl", '{{"id": "id-{}"}}\n', ["id-0", "id-1", "id-2"]),
    ],
)
def test_reading_streams_instead_of_reading_everything_first(
    format: Format, template: str, first_ids: list[str]
) -> None:
    # An endless input: a reader that read everything first would trip the limit.
    raw = EndlessIds(template, limit=10_000_000)
    stdin = io.BufferedReader(raw, buffer_size=8192)
    with open_input("-", format, stdin=stdin) as source:
        entries = IdFilter().entries(source.records())
        assert [entry.id for entry in itertools.islice(entries, 3)] == first_ids
    assert raw.bytes_read <= 64 * 1024


def test_jsonl_streams_from_a_real_file(tmp_path: Path) -> None:
    path = tmp_path / "big.jsonl"
    with path.open("wb") as file:
        for number in range(200_000):
            file.write(b'{"id": "id-%d"}\n' % number)
    with open_input(str(path)) as source:
        records = source.records()
        assert next(records) == (1, "id-0")
        assert source._file.tell() < path.stat().st_size // 10


# --- validation ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("raw_id", "reason"),
    [
        ("", "empty"),
        (".", '"." is not an ID'),
        ("..", '".." is not an ID'),
        ("abc\ndef", "control character U+000A at position 4"),
        ("\x00", "control character U+0000 at position 1"),
        ("a\tb", "control character U+0009 at position 2"),
        ("ab\x7f", "control character U+007F at position 3"),
        ("a\x85", "control character U+0085 at position 2"),
        ("a\x9f", "control character U+009F at position 2"),
        ("a\u00a0b\x1f", "control character U+001F at position 4"),
        ("x" * 1500, "longer than 1024 characters (1500)"),
        ("\ud800", "unpaired surrogate U+D800 at position 1"),
    ],
)
def test_invalid_reasons(raw_id: str, reason: str) -> None:
    assert invalid_reason(raw_id) == reason


@pytest.mark.parametrize(
    "raw_id",
    [
        "abc",
        "a/b",
        "a?x=1",
        "%2F",
        "50%",
        "ünï",
        "with space",
        "...",
        ".a",
        "a#b",
        "a\u00a0b",  # a non-breaking space: not printable by isprintable(), but not Cc
        "a\u200bb",
        "a\u2028b",
        "😀",
        "x" * MAX_ID_LENGTH,
    ],
)
def test_valid_ids(raw_id: str) -> None:
    assert invalid_reason(raw_id) is None


def test_surrogate_from_jsonl_is_invalid() -> None:
    entries = list(IdFilter().entries(read_stdin(b'"a\\ud800"\n', "jsonl")))
    assert entries == [Entry(1, "a\ud800", "unpaired surrogate U+D800 at position 2")]


# --- dedupe and skip ----------------------------------------------------------------------------


def test_dedupe_delivers_each_id_once_and_counts() -> None:
    records = [(1, "a"), (2, "b"), (3, "a"), (4, ""), (5, "c"), (6, ""), (7, "a"), (8, "..")]
    id_filter = IdFilter()
    entries = list(id_filter.entries(records))
    assert entries == [
        Entry(1, "a", None),
        Entry(2, "b", None),
        Entry(4, "", "empty"),
        Entry(5, "c", None),
        Entry(8, "..", '".." is not an ID'),
    ]
    assert id_filter.counts == InputCounts(
        input_lines=8, distinct=5, duplicates=3, invalid=2, skipped=0
    )


def test_skip_counts_skipped_then_duplicates() -> None:
    records = [(1, "done"), (2, "new"), (3, "done"), (4, "new"), (5, "also-done")]
    id_filter = IdFilter(skip={"done", "also-done", "never-seen"})
    assert list(id_filter.entries(records)) == [Entry(2, "new", None)]
    assert id_filter.counts == InputCounts(
        input_lines=5, distinct=1, duplicates=2, invalid=0, skipped=2
    )


def test_check_one_record_at_a_time() -> None:
    id_filter = IdFilter(skip=frozenset({"s"}))
    assert id_filter.check(1, "a") == Entry(1, "a", None)
    assert id_filter.check(2, "a") is None
    assert id_filter.check(3, "s") is None
    assert id_filter.check(4, ".") == Entry(4, ".", '"." is not an ID')
    assert id_filter.counts == InputCounts(
        input_lines=4, distinct=2, duplicates=1, invalid=1, skipped=1
    )


def test_entries_is_lazy() -> None:
    pulled: list[int] = []

    def records() -> Iterator[tuple[int, str]]:
        for number in itertools.count(1):
            pulled.append(number)
            yield number, f"id-{number}"

    entries = IdFilter().entries(records())
    assert next(entries) == Entry(1, "id-1", None)
    assert pulled == [1]


def test_end_to_end_counts_from_a_csv(tmp_path: Path) -> None:
    data = b"id\r\na\r\n\r\nb\r\na\r\n..\r\n..\r\nc\r\n"
    id_filter = IdFilter(skip={"c"})
    with open_input(write(tmp_path, "ids.csv", data)) as source:
        ids = [entry.id for entry in id_filter.entries(source.records())]
    assert ids == ["a", "b", ".."]
    assert id_filter.counts == InputCounts(
        input_lines=6, distinct=3, duplicates=2, invalid=1, skipped=1
    )

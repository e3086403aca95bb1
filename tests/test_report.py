"""The report file: byte for byte what csv.writer would write, whatever the IDs and errors."""

from __future__ import annotations

import csv
import io
import json
import random
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bulkdelete import FileReport, Outcome, Result, read_report
from bulkdelete.outcome import utc_now
from bulkdelete.report import COLUMNS

# Characters csv must quote or double, beside some it must leave alone.
TRICKY = ",\"\r\n \t;'\\|=é中\u2028\x00"
PLAIN = "abcXYZ019-_."


def random_text(rng: random.Random, tricky_share: float) -> str:
    return "".join(
        rng.choice(TRICKY) if rng.random() < tricky_share else rng.choice(PLAIN)
        for _ in range(rng.randrange(0, 12))
    )


def random_results(seed: int, count: int) -> list[Result]:
    rng = random.Random(seed)
    outcomes = list(Outcome)
    results = []
    for _ in range(count):
        share = rng.choice([0.0, 0.0, 0.1, 0.5])
        results.append(
            Result(
                id=random_text(rng, share) or "x",
                outcome=rng.choice(outcomes),
                http_status=rng.choice([None, 204, 404, 500]),
                attempts=rng.randrange(0, 5),
                error=random_text(rng, share),
                request_id=random_text(rng, share),
                finished_at=rng.choice(["", "2026-12-04T18:00:00.123Z"]),
            )
        )
    return results


def csv_writer_text(results: list[Result]) -> str:
    out = io.StringIO(newline="")
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    for r in results:
        status = "" if r.http_status is None else r.http_status
        row = (r.id, r.outcome.value, status, r.attempts, r.error, r.request_id, r.finished_at)
        writer.writerow(row)
    return out.getvalue()


@pytest.mark.parametrize("seed", range(5))
def test_csv_rows_are_what_csv_writer_writes(tmp_path: Path, seed: int) -> None:
    results = random_results(seed, 400)
    assert any('"' in r.id or "," in r.error for r in results), "the tricky rows are there"
    path = tmp_path / "r.csv"
    report = FileReport(path)
    for result in results:
        report.write(result)
    report.close()
    assert path.read_bytes().decode("utf-8") == csv_writer_text(results)
    back = list(read_report(path))
    assert [(r.id, r.outcome, r.error, r.request_id) for r in back] == [
        (r.id, r.outcome, r.error, r.request_id) for r in results
    ]


def test_jsonl_rows_keep_every_character(tmp_path: Path) -> None:
    results = random_results(7, 200)
    path = tmp_path / "r.jsonl"
    report = FileReport(path)
    for result in results:
        report.write(result)
    report.close()
    lines = path.read_text(encoding="utf-8").split("\n")[:-1]  # not splitlines: U+2028
    assert [json.loads(line)["id"] for line in lines] == [r.id for r in results]
    assert [r.error for r in read_report(path)] == [r.error for r in results]


def test_finished_at_is_utc_iso_8601_with_milliseconds() -> None:
    before = datetime.now(UTC)
    stamps = [utc_now() for _ in range(2000)]
    after = datetime.now(UTC)
    for stamp in stamps:
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", stamp)
        when = datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
        assert before - timedelta(milliseconds=1) <= when <= after
    assert stamps == sorted(stamps)

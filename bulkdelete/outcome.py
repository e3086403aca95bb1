"""What happened to one ID: the record every stage passes along and the report stores."""

from __future__ import annotations

import enum
import time
from dataclasses import dataclass


class Outcome(enum.StrEnum):
    """The report's ``outcome`` column."""

    DELETED = "deleted"  # the API answered 200 or 204
    NOT_FOUND = "not_found"  # the API answered 404: the identity is (already) gone
    FAILED = "failed"  # anything else, after retries
    INVALID = "invalid"  # never sent: the ID cannot travel as one path segment


FINAL_OUTCOMES = frozenset({Outcome.DELETED, Outcome.NOT_FOUND, Outcome.INVALID})
"""Outcomes a resumed run does not try again."""


_second_text: tuple[int, str] = (-1, "")  # the last whole second, formatted
_MILLISECONDS = tuple(f".{n:03d}Z" for n in range(1000))


def utc_now() -> str:
    """The current UTC time in ISO 8601 with milliseconds, e.g. ``2026-12-04T16:05:00.123Z``."""
    global _second_text
    now = time.time()
    second = int(now)
    if second != _second_text[0]:
        # One row per ID on the hot path: format the date and time once a second, and the
        # milliseconds never.
        _second_text = (second, time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)))
    return _second_text[1] + _MILLISECONDS[int((now - second) * 1000)]


@dataclass(frozen=True, slots=True)
class Result:
    """One row of the report: the outcome of one distinct ID."""

    id: str
    outcome: Outcome
    http_status: int | None = None
    attempts: int = 0
    error: str = ""
    request_id: str = ""
    finished_at: str = ""

"""What happened to one ID: the record every stage passes along and the report stores."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import UTC, datetime


class Outcome(enum.StrEnum):
    """The report's ``outcome`` column."""

    DELETED = "deleted"  # the API answered 200 or 204
    NOT_FOUND = "not_found"  # the API answered 404: the identity is (already) gone
    FAILED = "failed"  # anything else, after retries
    INVALID = "invalid"  # never sent: the ID cannot travel as one path segment


FINAL_OUTCOMES = frozenset({Outcome.DELETED, Outcome.NOT_FOUND, Outcome.INVALID})
"""Outcomes a resumed run does not try again."""


def utc_now() -> str:
    """The current UTC time in ISO 8601 with milliseconds, e.g. ``2026-12-04T16:05:00.123Z``."""
    return datetime.now(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


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

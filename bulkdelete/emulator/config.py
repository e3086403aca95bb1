"""The emulator's settings, and the parsers for the option texts that describe them."""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bulkdelete.errors import UsageError

_RATE_LIMIT = re.compile(
    r"""^\s*(?P<count>[0-9]+)\s*/\s*
        (?P<amount>[0-9]+(?:\.[0-9]+)?|\.[0-9]+)?\s*
        (?P<unit>[a-z]+)?\s*$""",
    re.VERBOSE | re.IGNORECASE,
)
_UNIT_SECONDS = {
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "secs": 1.0,
    "second": 1.0,
    "seconds": 1.0,
    "m": 60.0,
    "min": 60.0,
    "mins": 60.0,
    "minute": 60.0,
    "minutes": 60.0,
    "h": 3600.0,
    "hr": 3600.0,
    "hour": 3600.0,
    "hours": 3600.0,
}
_RATE_LIMIT_HELP = "expected N/PERIOD such as 100/60s, 100/min, 20/1s, 5/s or 1000/h"


def parse_rate_limit(text: str) -> tuple[int, float]:
    """Read a rolling-window limit such as ``100/60s`` into ``(100, 60.0)``.

    The period is a number with an optional unit (``ms``, ``s``, ``min``, ``h``; seconds when
    the unit is left out) or a unit alone, meaning one of it: ``100/min`` is ``(100, 60.0)``.
    Raises :class:`~bulkdelete.errors.UsageError` when the text is not such a limit.
    """
    match = _RATE_LIMIT.match(text)
    if match is None:
        raise UsageError(f"invalid rate limit {text!r}: {_RATE_LIMIT_HELP}")
    amount, unit = match["amount"], match["unit"]
    if amount is None and unit is None:
        raise UsageError(f"invalid rate limit {text!r}: the period is missing; {_RATE_LIMIT_HELP}")
    if unit is not None and unit.lower() not in _UNIT_SECONDS:
        raise UsageError(
            f"invalid rate limit {text!r}: unknown unit {unit!r} (use ms, s, min or h)"
        )
    count = int(match["count"])
    period = float(amount or 1) * _UNIT_SECONDS[unit.lower() if unit else "s"]
    if count < 1 or period <= 0:
        raise UsageError(
            f"invalid rate limit {text!r}: both the count and the period must be above zero"
        )
    return count, period


def parse_latency(text: str) -> tuple[float, float]:
    """Read ``MEAN[,JITTER]`` seconds (``0.05`` or ``0.05,0.02``) into ``(mean, jitter)``."""
    parts = text.split(",")
    if len(parts) > 2:
        raise UsageError(f"invalid latency {text!r}: expected MEAN or MEAN,JITTER in seconds")
    try:
        values = [float(part) for part in parts]
    except ValueError:
        raise UsageError(
            f"invalid latency {text!r}: expected MEAN or MEAN,JITTER in seconds, e.g. 0.05,0.02"
        ) from None
    mean, jitter = values[0], values[1] if len(values) == 2 else 0.0
    if not (_non_negative(mean) and _non_negative(jitter)):
        raise UsageError(f"invalid latency {text!r}: both numbers must be zero or more")
    return mean, jitter


def _non_negative(value: float) -> bool:
    return math.isfinite(value) and value >= 0


def _check_share(name: str, value: float) -> None:
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise UsageError(f"{name} must be between 0 and 1, got {value}")


def _check_seconds(name: str, value: float) -> None:
    if not _non_negative(value):
        raise UsageError(f"{name} must be a number of seconds, zero or more, got {value}")


@dataclass(frozen=True, slots=True)
class FaultConfig:
    """The bad days the emulator plays, drawn per /v2 request from one ``Random(seed)``.

    ``error_rate``, ``drop_rate`` and ``slow_rate`` are disjoint shares of the requests, so
    together they may not exceed 1. ``drop_after_delete_share`` is the part of the dropped
    requests whose action still happened. ``latency`` (plus or minus up to ``latency_jitter``)
    delays every /v2 answer.
    """

    seed: int = 0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    drop_after_delete_share: float = 0.5
    slow_rate: float = 0.0
    slow_delay: float = 40.0
    latency: float = 0.0
    latency_jitter: float = 0.0

    def __post_init__(self) -> None:
        _check_share("error rate", self.error_rate)
        _check_share("drop rate", self.drop_rate)
        _check_share("drop-after-delete share", self.drop_after_delete_share)
        _check_share("slow rate", self.slow_rate)
        # A little slack so that shares such as 0.7 + 0.2 + 0.1 are not refused for rounding.
        if self.error_rate + self.drop_rate + self.slow_rate > 1.0 + 1e-9:
            raise UsageError(
                "error rate, drop rate and slow rate are shares of the same requests: "
                "together they must not exceed 1"
            )
        _check_seconds("slow delay", self.slow_delay)
        _check_seconds("latency", self.latency)
        _check_seconds("latency jitter", self.latency_jitter)


@dataclass(frozen=True, slots=True)
class EmulatorConfig:
    """Everything a running emulator starts from.

    Seeds: ``seed_external_ids`` get fresh ULIDs, ``seed_identities`` are ``(_id, external_id)``
    pairs kept as given, and ``seed_count`` adds ``user-000001`` and onwards. ``stats_window``
    is the window of :attr:`EmulatorStats.max_in_window` while no rate limit is set.
    """

    host: str = "127.0.0.1"
    port: int = 0
    api_key: str | None = None
    delete_status: int = 204
    rate_limit: int | None = None
    rate_period: float = 60.0
    faults: FaultConfig = FaultConfig()
    seed_external_ids: Sequence[str] = ()
    seed_count: int = 0
    stats_window: float = 1.0
    seed_identities: Sequence[tuple[str, str]] = ()

    def __post_init__(self) -> None:
        # Seeds are kept as tuples so that a config stays what it was built as (and hashable).
        object.__setattr__(self, "seed_external_ids", tuple(self.seed_external_ids))
        object.__setattr__(self, "seed_identities", tuple(map(tuple, self.seed_identities)))
        if not self.host:
            raise UsageError("host must not be empty")
        if not 0 <= self.port <= 65535:
            raise UsageError(f"port must be between 0 and 65535, got {self.port}")
        if self.api_key is not None and not self.api_key.strip():
            raise UsageError("api key must not be empty: leave it out to accept any request")
        if self.delete_status not in (200, 204):
            raise UsageError(f"delete status must be 204 or 200, got {self.delete_status}")
        if self.rate_limit is not None and self.rate_limit < 1:
            raise UsageError(f"rate limit must be at least 1 request, got {self.rate_limit}")
        if not (math.isfinite(self.rate_period) and self.rate_period > 0):
            raise UsageError(f"rate period must be above zero seconds, got {self.rate_period}")
        if self.seed_count < 0:
            raise UsageError(f"seed count must be zero or more, got {self.seed_count}")
        if not (math.isfinite(self.stats_window) and self.stats_window > 0):
            raise UsageError(f"stats window must be above zero seconds, got {self.stats_window}")

"""Pacing: when each request may leave.

The orq.ai API counts requests in a *rolling* 60-second window. A pace of N per period must
therefore never put N+1 requests into any window of that period, not even at start-up. Three
mechanisms share that job:

- slots on an absolute schedule, one interval apart, space requests evenly with no start-up
  burst. (aiolimiter was the first choice: ``AsyncLimiter(N, period)`` lets N out at once, and
  ``AsyncLimiter(1, period / N)``, measured against the emulator, used only 94% of the limit,
  because each wake-up's timer lateness is added to the next interval.)
- a log of the last N send times makes the window guarantee exact even when the event loop
  wakes a task late and two requests end up closer than the interval;
- a shared pause (``pause_until``) holds *every* worker after a 429 or a ``Retry-After``.

The pace adapts: a 429 halves it, and each success wins a little back, up to the ceiling that
``--rate`` set (additive increase, multiplicative decrease).
"""

from __future__ import annotations

import logging
import math
import re
import time
from collections import deque
from dataclasses import dataclass

import anyio

from bulkdelete.errors import UsageError

_log = logging.getLogger("bulkdelete")

_UNITS = {
    "s": 1.0,
    "sec": 1.0,
    "second": 1.0,
    "m": 60.0,
    "min": 60.0,
    "minute": 60.0,
    "h": 3600.0,
    "hour": 3600.0,
}
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d*\.?\d*)\s*([a-z]+)\s*$")

# A log of send times costs memory per slot; past this many per window the even spacing alone
# is what keeps the pace (such a rate is meant not to bind: a benchmark, a local server).
_MAX_LOGGED = 100_000

# --rate auto starts here (requests per second) and learns the rest.
_AUTO_START = 1.0
# Send times kept to learn the API's window from its headers.
_LEARN_LOG = 10_000

# Requests arrive at the server with a little jitter, so the pace keeps a small margin inside
# the limit: 0.3% of the period plus 2 ms (utilisation stays above 99%).
_MARGIN_SHARE = 0.003
_MARGIN_FIXED = 0.002


@dataclass(frozen=True, slots=True)
class Rate:
    """A ceiling of ``count`` requests in any window of ``period`` seconds, or ``auto``."""

    count: int
    period: float
    auto: bool = False

    @classmethod
    def parse(cls, text: str) -> Rate:
        """Parse ``N/s``, ``N/min``, ``N/h`` (also ``N/10s``, ``N/second``...) or ``auto``."""
        if text.strip().lower() == "auto":
            return cls(count=1, period=1.0, auto=True)
        match = _RATE_RE.match(text.lower())
        unit = _UNITS.get(match.group(3)) if match else None
        if match is None or unit is None:
            raise UsageError(
                f"--rate {text!r} is not a rate: write N/s, N/min or N/h (e.g. 100/min), or auto"
            )
        count = int(match.group(1))
        multiple = float(match.group(2)) if match.group(2) else 1.0
        if count < 1 or multiple <= 0:
            raise UsageError(
                f"--rate {text!r} must allow at least one request in a positive period"
            )
        return cls(count=count, period=multiple * unit)

    @property
    def per_second(self) -> float:
        return self.count / self.period

    def __str__(self) -> str:
        if self.auto:
            return "auto"
        for name, seconds in (("s", 1.0), ("min", 60.0), ("h", 3600.0)):
            if self.period == seconds:
                return f"{self.count}/{name}"
        return f"{self.count}/{self.period:g}s"


def format_pace(per_second: float) -> str:
    """A pace in the unit a person reads most easily: 2.5/s, 40/min, 90/h."""
    if per_second >= 1:
        return f"{per_second:.3g}/s"
    if per_second * 60 >= 1:
        return f"{per_second * 60:.3g}/min"
    return f"{per_second * 3600:.3g}/h"


class PacerClosed(Exception):
    """The run is stopping: no further request may leave."""


class Pacer:
    """Hands out send slots: evenly spaced, never more than the ceiling in any window.

    Every request, retries included, calls :meth:`acquire` right before it is sent.
    """

    __slots__ = (
        "_auto",
        "_ceiling",
        "_closed",
        "_count",
        "_doubled_after",
        "_floor",
        "_full",
        "_held_until",
        "_in_flight",
        "_interval",
        "_last_sent",
        "_limit_seen",
        "_log",
        "_next",
        "_paused_until",
        "_per_second",
        "_period_estimate",
        "_rejected_seq",
        "_repace",
        "_sent",
        "_step",
        "_user_ceiling",
        "_waiting",
        "_window",
        "learned_limit",
        "pauses",
        "slowdowns",
    )

    def __init__(self, rate: Rate, *, start: float | None = None) -> None:
        self._auto = rate.auto
        if rate.auto:
            # Nothing known yet: start gently, with no ceiling until the API's headers or its
            # 429s tell the limit.
            self._count = 0
            self._window = 60.0
            self._ceiling = math.inf
            self._step = _AUTO_START / 10
            self._per_second = start or _AUTO_START
            self._log: deque[float] | None = deque(maxlen=_LEARN_LOG)
        else:
            self._count = rate.count
            self._window = rate.period
            margin = rate.period * _MARGIN_SHARE + _MARGIN_FIXED
            self._ceiling = rate.count / (rate.period + margin)
            self._step = self._ceiling / max(rate.count, 20)
            self._per_second = self._ceiling if start is None else min(start, self._ceiling)
            self._log = (
                deque(maxlen=max(rate.count, _LEARN_LOG)) if rate.count <= _MAX_LOGGED else None
            )
        self._user_ceiling = self._ceiling
        self._full = self._window * (1 + _MARGIN_SHARE) + _MARGIN_FIXED
        self._floor = min(self._ceiling, 1.0 / 60.0)
        self._interval = 1.0 / self._per_second
        self._period_estimate = 0.0
        self._rejected_seq = 0
        self._next = 0.0
        self._last_sent = 0.0
        self._sent = 0
        self._in_flight: set[int] = set()
        self._doubled_after = 0
        self._limit_seen = 0
        self._repace: anyio.Event | None = None
        self._paused_until = 0.0
        self._held_until = 0.0
        self._closed = False
        self._waiting: set[anyio.CancelScope] = set()
        self.pauses = 0
        self.slowdowns = 0
        self.learned_limit: tuple[int, float] | None = None

    @property
    def per_second(self) -> float:
        """The pace in force now, in requests per second."""
        return self._per_second

    @property
    def learned(self) -> bool:
        """True once the API's window has been learned from its headers."""
        return self._period_estimate > 0

    @property
    def sent(self) -> int:
        """Requests let out so far."""
        return self._sent

    @property
    def ceiling(self) -> float:
        """The fastest pace this pacer will ever use, in requests per second."""
        return self._ceiling

    def paused_for(self) -> float:
        """Seconds left of the current pause (0 when not paused)."""
        return max(0.0, self._paused_until - time.monotonic())

    async def acquire(self) -> int:
        """Wait until one more request may leave, count it as sent, return its number.

        Raises :class:`PacerClosed` once :meth:`close` was called: nothing more may leave.
        """
        if self._closed:
            raise PacerClosed
        now = time.monotonic()
        log = self._log
        count = self._count
        if (
            now >= self._next
            and now >= self._paused_until
            and now >= self._held_until
            and (log is None or not count or len(log) < count or now >= log[-count] + self._full)
        ):
            # Nothing to wait for (the usual case when the pace does not bind): take the slot
            # without the cancel scope that only a wait needs.
            self._next = now + self._interval
            if log is not None:
                log.append(now)
            self._last_sent = now
            self._sent += 1
            self._in_flight.add(self._sent)
            return self._sent
        with anyio.CancelScope() as scope:
            self._waiting.add(scope)
            try:
                await self._wait_for_slot()
                self._sent += 1
                self._in_flight.add(self._sent)
                return self._sent
            finally:
                self._waiting.discard(scope)
        raise PacerClosed

    async def sleep(self, seconds: float) -> None:
        """Sleep (a retry's backoff), unless :meth:`close` ends the wait early."""
        if self._closed:
            raise PacerClosed
        with anyio.CancelScope() as scope:
            self._waiting.add(scope)
            try:
                await anyio.sleep(seconds)
                return
            finally:
                self._waiting.discard(scope)
        raise PacerClosed

    def close(self) -> None:
        """Let no further request leave; wake every waiting worker with PacerClosed."""
        self._closed = True
        for scope in self._waiting:
            scope.cancel()

    async def _wait_for_slot(self) -> None:
        slot = self._reserve()
        log = self._log
        while True:
            now = time.monotonic()
            if now < self._paused_until:
                await anyio.sleep(self._paused_until - now)
                slot = self._reserve()  # leave the pause one by one, evenly spaced
            elif now < self._held_until:
                await anyio.sleep(self._held_until - now)
            elif now < slot:
                if self._repace is None:
                    self._repace = anyio.Event()
                with anyio.move_on_after(slot - now):
                    await self._repace.wait()
                    slot = self._reserve()
            elif (
                (count := self._count)
                and log is not None
                and len(log) >= count
                and now < log[-count] + self._full
            ):
                await anyio.sleep(log[-count] + self._full - now)
            else:
                if log is not None:
                    log.append(now)
                self._last_sent = now
                return

    def _reserve(self) -> float:
        # Slots follow an absolute schedule: a task that wakes late does not push the ones
        # after it back, so timer lateness never adds up into a slower pace. No credit builds
        # up while idle either: a slot is never earlier than now.
        slot = max(time.monotonic(), self._next)
        self._next = slot + self._interval
        return slot

    def pause_until(self, deadline: float) -> bool:
        """Hold every worker until ``deadline`` (``time.monotonic()``); True if that is news."""
        if deadline <= self._paused_until:
            return False
        self._paused_until = deadline
        self._next = max(self._next, deadline)
        self.pauses += 1
        return True

    def hold_until(self, deadline: float) -> None:
        """Send nothing before ``deadline``: the API said its window is full until then.

        Unlike a pause, a hold keeps the slots already handed out: it is short (until one
        slot frees) and usually ends before the next slot anyway.
        """
        self._held_until = max(self._held_until, deadline)

    def learn(self, sent: int, limit: int, remaining: int, reset: float) -> None:
        """Learn the API's window from its rate-limit headers, and keep the pace under it.

        The API says ``limit`` requests fit in its window and ``limit - remaining`` are in it
        now, counting request number ``sent``. When those requests are this run's own, they are
        ``sent`` and the ones sent just before it, and the one before them has already left
        the window: the window is shorter than that request's age. When the window is full,
        ``reset`` (seconds until its oldest request leaves) tells more exactly: it lasts
        ``now + reset - sent_at(oldest)``.
        Other traffic in the same workspace only makes either estimate longer: slower, safe.
        """
        self._limit_seen = limit
        log = self._log
        in_window = limit - remaining
        if log is None or limit < 1 or in_window < 1:
            return
        now = time.monotonic()
        position = len(log) - (self._sent - sent) - 1  # where request ``sent`` is in the log
        # Requests sent before this one but still unanswered may not have reached the API yet
        # (a new connection is slower than a kept-alive one): the oldest request in its
        # window may be that many further back. A request the API rejected (429) is in the
        # log but not in its window; a sample that spans one would come out too short.
        slack = sum(1 for other in self._in_flight if other < sent)
        if remaining <= 0 and reset > 0 and position - limit + 1 - slack >= 0:
            if self._rejected_seq > sent - limit - slack:
                return
            period = now + reset - log[position - limit + 1 - slack]
        elif position - in_window - slack >= 0:
            if self._rejected_seq >= sent - in_window - slack:
                return
            period = now - log[position - in_window - slack]
        else:
            # Nothing this run sent has left the window yet, so there is no bound to learn.
            # With --rate auto, less than half the window used is room to speed up: double
            # the pace once per round trip (for answers to requests sent since the last), but
            # never past ``limit`` per the time the window has lasted so far: the window is at
            # least that long, so a faster pace would only fill it sooner and meet the wall.
            room = 2 * in_window <= limit
            if self._auto and not self._period_estimate and room and sent > self._doubled_after:
                self._doubled_after = self._sent
                lasted = now - log[0] if log else 0.0
                cap = limit / lasted if lasted > 0 else math.inf
                self._set(max(self._per_second, min(self._per_second * 2, cap)))
            return
        if period <= 0:
            return
        # Every sample is at least the window's length (travel times only add to it), so the
        # shortest recent one is the best estimate; it creeps up a little with each sample so
        # that a window that grows is followed.
        previous = self._period_estimate
        estimate = period if not previous else min(period, previous * 1.002)
        self._period_estimate = estimate
        learned = limit / (estimate * (1 + _MARGIN_SHARE) + _MARGIN_FIXED)
        ceiling = min(self._user_ceiling, learned)
        if self._auto or learned < self._user_ceiling:
            # The API's window is the stricter one: the send log now guards that window.
            self._count, self._window = limit, estimate
            self._full = estimate * (1 + _MARGIN_SHARE) + _MARGIN_FIXED
        if self.learned_limit is None:
            _log.info(
                "the API allows %d requests per %.3g s: pacing at up to %s",
                limit,
                estimate,
                format_pace(ceiling),
            )
        self.learned_limit = (limit, estimate)
        self._ceiling = ceiling
        self._step = ceiling / max(limit, 20)
        self._floor = min(ceiling, 1.0 / 60.0)
        if self._per_second > ceiling or self._auto:
            self._set(ceiling)

    def answered(self, sent: int) -> None:
        """Request number ``sent`` is over: answered, failed or abandoned."""
        self._in_flight.discard(sent)

    def rejected(self, sent: int) -> None:
        """Note a 429 for request number ``sent``: it did not count in the API's window."""
        self._rejected_seq = max(self._rejected_seq, sent)

    def slow_down(self) -> bool:
        """Halve the pace (after a 429); True if the pace changed."""
        slower = max(self._floor, self._per_second / 2)
        if slower >= self._per_second:
            return False
        self.slowdowns += 1
        self._set(slower)
        return True

    def succeeded(self) -> None:
        """Win back a little pace after a success, up to the ceiling."""
        if self._per_second < self._ceiling:
            if self._ceiling < math.inf:
                self._set(min(self._ceiling, self._per_second + self._step))
            elif self._limit_seen == 0:
                # --rate auto against an API that sends no rate-limit headers: probe upwards
                # by 5% a success until a 429 halves it.
                self._set(self._per_second * 1.05)

    def _set(self, per_second: float) -> None:
        previous = self._interval
        self._per_second = per_second
        self._interval = 1.0 / per_second
        if abs(self._interval - previous) > 0.1 * previous:
            # Slots handed out at the old pace are wrong by more than a little (--rate auto's
            # first second-long slots, say): wake their holders to queue again at the new one.
            self._next = self._last_sent + self._interval
            if self._repace is not None:
                self._repace.set()
                self._repace = None


def format_duration(seconds: float) -> str:
    """A duration as a person says it: 40 s, 12 min, 3.5 h."""
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"

"""Rolling windows: the rate limit the emulator enforces, and the peak it measures."""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class WindowState:
    """What the rate-limit headers of one answer say.

    ``remaining`` is the number of requests the window still admits after this one; ``reset`` the
    seconds until one more slot frees (0.0 while one is free).
    """

    admitted: bool
    limit: int
    remaining: int
    reset: float


class RollingWindowLimit:
    """At most ``limit`` admitted requests in any ``period`` seconds: an exact sliding log.

    A request arriving at ``now`` is admitted when fewer than ``limit`` admitted requests arrived
    after ``now - period``. Refused requests are not logged, so they cost no quota.
    """

    __slots__ = ("_admitted", "limit", "period")

    def __init__(self, limit: int, period: float) -> None:
        self.limit = limit
        self.period = period
        self._admitted: deque[float] = deque()

    def _expire(self, now: float) -> deque[float]:
        admitted, horizon = self._admitted, now - self.period
        while admitted and admitted[0] <= horizon:
            admitted.popleft()
        return admitted

    def _state(self, admitted: bool, now: float) -> WindowState:
        log = self._admitted
        remaining = self.limit - len(log)
        if remaining > 0:
            return WindowState(admitted, self.limit, remaining, 0.0)
        # The limit can be lowered while the log is full, so the slot that frees next is not
        # always the oldest one.
        return WindowState(admitted, self.limit, 0, log[len(log) - self.limit] + self.period - now)

    def admit(self, now: float) -> WindowState:
        """Admit the request arriving at ``now`` if the window has room, and log it if so."""
        log = self._expire(now)
        if len(log) >= self.limit:
            return self._state(False, now)
        log.append(now)
        return self._state(True, now)

    def peek(self, now: float) -> WindowState:
        """The window at ``now`` without spending a slot (for answers that cost no quota)."""
        self._expire(now)
        return self._state(len(self._admitted) < self.limit, now)


class PeakCounter:
    """The largest number of arrivals seen in any rolling window of ``window`` seconds."""

    __slots__ = ("_arrivals", "peak", "window")

    def __init__(self, window: float) -> None:
        self.window = window
        self.peak = 0
        self._arrivals: deque[float] = deque()

    def record(self, now: float) -> None:
        """Count one arrival at ``now``."""
        arrivals, horizon = self._arrivals, now - self.window
        while arrivals and arrivals[0] <= horizon:
            arrivals.popleft()
        arrivals.append(now)
        if len(arrivals) > self.peak:
            self.peak = len(arrivals)

    def reset(self) -> None:
        """Forget every arrival."""
        self.peak = 0
        self._arrivals.clear()

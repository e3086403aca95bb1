"""The outage breaker: when the API looks down, stop spending IDs on it, wait, probe, go on.

Without it, an outage turns every ID in the input into a ``failed`` row, one ``--max-attempts``
at a time. With it, once most recent requests end in a 5xx, a timeout or a dropped connection,
no worker starts a request; after a pause (growing from 1 s to 30 s) a single probe request
goes out, and the first healthy answer lets everyone go on. An outage longer than
``--max-outage`` stops the run with :class:`~bulkdelete.errors.OutageError` (exit 3), leaving
a report that ``--resume`` continues.
"""

from __future__ import annotations

import logging
import time
from collections import deque

from bulkdelete.errors import OutageError
from bulkdelete.pacing import Pacer

log = logging.getLogger("bulkdelete")

_RECENT = 20  # requests the breaker looks back over
_MIN_RECENT = 10  # ... and needs before it can judge
_DOWN_SHARE = 0.8  # share of those in trouble that means "down"
_FIRST_PAUSE = 1.0
_MAX_PAUSE = 30.0
_POLL = 0.25  # how often waiting workers look at the breaker again


class OutageBreaker:
    """Watches answers; holds every worker while the API looks down."""

    __slots__ = ("_max_outage", "_opened_at", "_pause", "_probing", "_recent", "_retry_at")

    def __init__(self, max_outage: float) -> None:
        self._max_outage = max_outage
        self._recent: deque[bool] = deque(maxlen=_RECENT)
        self._opened_at: float | None = None  # when the API started to look down
        self._retry_at = 0.0
        self._pause = _FIRST_PAUSE
        self._probing = False

    @property
    def is_open(self) -> bool:
        """True while the API looks down."""
        return self._opened_at is not None

    async def admit(self, pacer: Pacer) -> bool:
        """Wait until a request may start; True when it is the probe of a down API.

        Waits through the pacer, so a stopping run (PacerClosed) ends the wait.
        """
        while self._opened_at is not None:
            now = time.monotonic()
            if not self._probing and now >= self._retry_at:
                self._probing = True
                return True
            await pacer.sleep(_POLL if self._probing else min(_POLL, self._retry_at - now))
        return False

    def record(self, down: bool, *, probe: bool) -> None:
        """Count one answer (``down``: 5xx, timeout or dropped connection).

        Raises :class:`OutageError` when the API has looked down for longer than allowed.
        """
        now = time.monotonic()
        if probe:
            self._probing = False
            if down:
                self._reopen(now)
            else:
                assert self._opened_at is not None
                log.warning(
                    "the API answers again after %.0f s: going on",
                    now - self._opened_at,
                    extra={"event": {"event": "outage_over", "seconds": now - self._opened_at}},
                )
                self._opened_at = None
                self._recent.clear()
            return
        if self._opened_at is not None:
            return  # answers to requests sent before it looked down say nothing new
        self._recent.append(down)
        recent = self._recent
        if len(recent) >= _MIN_RECENT and sum(recent) >= _DOWN_SHARE * len(recent):
            self._opened_at = now
            self._pause = _FIRST_PAUSE
            self._retry_at = now + self._pause
            log.warning(
                "the API looks down (%d of the last %d requests failed with a 5xx, a timeout "
                "or a dropped connection): holding every worker, probing with one request, "
                "for up to --max-outage %.0f s",
                sum(recent),
                len(recent),
                self._max_outage,
                extra={"event": {"event": "outage"}},
            )

    def _reopen(self, now: float) -> None:
        assert self._opened_at is not None
        down_for = now - self._opened_at
        if down_for >= self._max_outage:
            raise OutageError(
                f"the API has looked down for {down_for:.0f} s (5xx answers, timeouts or "
                f"dropped connections), longer than --max-outage {self._max_outage:g} s. "
                "Nothing was marked failed for it; continue later with --resume"
            )
        self._pause = min(_MAX_PAUSE, self._pause * 2)
        self._retry_at = now + min(self._pause, self._max_outage - down_for)

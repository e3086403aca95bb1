"""What the emulator saw, for tests and benchmarks."""

from __future__ import annotations

from collections import Counter, deque

from bulkdelete.emulator.limits import PeakCounter

DELETE_PATHS_KEPT = 100_000
"""How many raw DELETE paths :attr:`EmulatorStats.delete_paths` keeps (the latest ones)."""


class EmulatorStats:
    """Counts of everything sent to the emulator's API, admin routes excepted.

    - ``requests``: every request that was not for an admin route;
    - ``status_counts``: answers by HTTP status (dropped connections have none);
    - ``stray``: requests for no identities route at all (``/v2/identities/a/b``, ``/v2/projects``);
    - ``rate_limited``: requests answered 429;
    - ``dropped``: connections closed without an answer;
    - ``faults``: faults played, by name (``error_500``, ``error_503``, ``drop_before_delete``,
      ``drop_after_delete``, ``slow``, ``outage``);
    - ``deletes_by_id``: DELETEs admitted (past outage, key and rate limit), by the ID as the
      path segment decodes; more than one for an ID means it was sent again;
    - ``deleted_ids``: the decoded IDs whose DELETE really removed an identity;
    - ``delete_paths``: the raw request targets of the latest DELETEs received, stray ones too;
    - ``max_in_window``: the most /v2 requests that arrived within any rolling window of the rate
      limit's period (of ``stats_window`` while no limit is set).

    The emulator updates it on its event loop; reading it from another thread is fine.
    """

    __slots__ = (
        "_peak",
        "delete_paths",
        "deleted_ids",
        "deletes_by_id",
        "dropped",
        "faults",
        "rate_limited",
        "requests",
        "status_counts",
        "stray",
    )

    def __init__(self, window: float) -> None:
        self.requests = 0
        self.status_counts: Counter[int] = Counter()
        self.stray = 0
        self.rate_limited = 0
        self.dropped = 0
        self.faults: Counter[str] = Counter()
        self.deletes_by_id: Counter[str] = Counter()
        self.deleted_ids: set[str] = set()
        self.delete_paths: deque[str] = deque(maxlen=DELETE_PATHS_KEPT)
        self._peak = PeakCounter(window)

    @property
    def max_in_window(self) -> int:
        """The most /v2 requests that arrived within one rolling window."""
        return self._peak.peak

    @property
    def window(self) -> float:
        """The length in seconds of the window :attr:`max_in_window` is measured over."""
        return self._peak.window

    def note_arrival(self, now: float) -> None:
        """Count a /v2 request arriving at ``now`` towards :attr:`max_in_window`."""
        self._peak.record(now)

    def set_window(self, window: float) -> None:
        """Measure :attr:`max_in_window` over ``window`` seconds from now on, starting afresh."""
        self._peak = PeakCounter(window)

    def reset(self) -> None:
        """Start every count afresh, in place."""
        self.requests = 0
        self.status_counts.clear()
        self.stray = 0
        self.rate_limited = 0
        self.dropped = 0
        self.faults.clear()
        self.deletes_by_id.clear()
        self.deleted_ids.clear()
        self.delete_paths.clear()
        self._peak.reset()

    def as_dict(self) -> dict[str, object]:
        """The counts as plain JSON-ready values (status codes as string keys, sorted IDs)."""
        # Each copy below is one C-level call, so a reader on another thread never sees a
        # collection change size under it.
        status_counts = dict(self.status_counts)
        return {
            "requests": self.requests,
            "status_counts": {str(status): n for status, n in sorted(status_counts.items())},
            "stray": self.stray,
            "rate_limited": self.rate_limited,
            "dropped": self.dropped,
            "faults": dict(self.faults),
            "deletes_by_id": dict(self.deletes_by_id),
            "deleted_ids": sorted(self.deleted_ids.copy()),
            "delete_paths": list(self.delete_paths),
            "max_in_window": self.max_in_window,
            "window_seconds": self.window,
        }

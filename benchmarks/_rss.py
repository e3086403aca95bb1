"""Peak memory of a process, read from /proc.

``ru_maxrss`` (getrusage, wait4) will not do for the children the benchmarks start: Linux
carries it over from the parent through fork and exec, so every child would show at least the
harness's own size. VmHWM, the high-water mark of a process's own memory, starts afresh with
each exec.
"""

from __future__ import annotations

import threading


def peak_rss(pid: int | str = "self") -> int:
    """VmHWM of process ``pid`` in bytes; 0 when it is gone (or not Linux)."""
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError):
        pass
    return 0


class PeakWatch:
    """Follows another process's VmHWM until :meth:`stop`; ``peak`` is the last seen (bytes).

    VmHWM only grows, so the last reading before the process ends is its peak, up to what it
    gained in its last ``interval``.
    """

    def __init__(self, pid: int, interval: float = 0.02) -> None:
        self.peak = 0
        self._pid = pid
        self._interval = interval
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._follow, daemon=True)
        self._thread.start()

    def _follow(self) -> None:
        while not self._done.is_set():
            self.peak = max(self.peak, peak_rss(self._pid))
            self._done.wait(self._interval)

    def stop(self) -> int:
        self._done.set()
        self._thread.join()
        return self.peak

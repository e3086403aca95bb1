"""The fault plan: which bad thing, if any, happens to each /v2 request."""

from __future__ import annotations

import enum
import random

from bulkdelete.emulator.config import FaultConfig


class Fault(enum.Enum):
    """What the emulator does to one request instead of (or besides) answering it."""

    NONE = "none"
    SERVER_ERROR = "error_500"  # nothing done
    UNAVAILABLE = "error_503"  # nothing done
    DROP_BEFORE = "drop_before_delete"  # connection closed, nothing done
    DROP_AFTER = "drop_after_delete"  # the action done, then the connection closed
    SLOW = "slow"  # the action done, the answer held back for ``slow_delay``


class FaultPlan:
    """Draws each request's fault and latency from one ``random.Random(seed)``, in arrival order.

    A request takes one draw for its fault while any fault rate is above zero, and one more for
    its latency while there is jitter, so the same seed and the same order of requests always
    give the same outcomes.
    """

    __slots__ = ("_config", "_rng", "_thresholds", "active")

    def __init__(self, config: FaultConfig) -> None:
        self._config = config
        self._rng = random.Random(config.seed)
        error, drop = config.error_rate, config.drop_rate
        self._thresholds = (
            error / 2,
            error,
            error + drop * config.drop_after_delete_share,
            error + drop,
            error + drop + config.slow_rate,
        )
        self.active = self._thresholds[-1] > 0 or config.latency > 0 or config.latency_jitter > 0
        """Whether any request can meet a fault or latency at all."""

    @property
    def config(self) -> FaultConfig:
        """The settings this plan draws from."""
        return self._config

    def draw(self) -> tuple[Fault, float]:
        """The next request's fault and the seconds its answer is to be delayed."""
        config = self._config
        fault = Fault.NONE
        if self._thresholds[-1] > 0:
            u = self._rng.random()
            server_error, unavailable, drop_after, drop_before, slow = self._thresholds
            if u < server_error:
                fault = Fault.SERVER_ERROR
            elif u < unavailable:
                fault = Fault.UNAVAILABLE
            elif u < drop_after:
                fault = Fault.DROP_AFTER
            elif u < drop_before:
                fault = Fault.DROP_BEFORE
            elif u < slow:
                fault = Fault.SLOW
        delay = config.latency
        if config.latency_jitter > 0:
            delay = max(
                0.0, delay + self._rng.uniform(-config.latency_jitter, config.latency_jitter)
            )
        return fault, delay

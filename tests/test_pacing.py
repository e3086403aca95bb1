"""The pacer's arithmetic: rates parsed, and --rate auto never outrunning what it has seen."""

from __future__ import annotations

import time

import pytest

from bulkdelete import Rate, UsageError
from bulkdelete.pacing import Pacer

pytestmark = pytest.mark.anyio


@pytest.mark.parametrize(
    ("text", "count", "period"),
    [("20/min", 20, 60.0), ("100/s", 100, 1.0), ("5/h", 5, 3600.0), ("50/10s", 50, 10.0)],
)
def test_rates(text: str, count: int, period: float) -> None:
    rate = Rate.parse(text)
    assert (rate.count, rate.period, str(Rate(count, period))) == (count, period, str(rate))


@pytest.mark.parametrize("text", ["fast", "0/s", "10/fortnight", "-1/min", ""])
def test_bad_rates_are_usage_errors(text: str) -> None:
    with pytest.raises(UsageError, match="--rate"):
        Rate.parse(text)


async def test_auto_doubles_but_never_past_the_limit_over_the_time_seen() -> None:
    # Answers say: 100 fit in the window, nothing has left it yet. However fast the answers
    # come, the pace may not exceed 100 per the time the window has lasted so far.
    pacer = Pacer(Rate.parse("auto"))
    first = time.monotonic()
    for used in range(1, 50):
        before = pacer.per_second
        sent = await pacer.acquire()
        pacer.answered(sent)
        pacer.learn(sent, limit=100, remaining=100 - used, reset=0.0)
        lasted = time.monotonic() - first
        if pacer.per_second > before:
            assert pacer.per_second <= 100 / lasted * 1.01  # 1%: the clocks are read apart
    assert 1 < pacer.per_second < 200  # sped up from its gentle start, and did not run away

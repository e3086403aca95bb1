"""Bad days: a shared quota, 429 storms and an API that has to be learned."""

from __future__ import annotations

import time

import pytest

from bulkdelete import MemoryReport, OutageError, Outcome, Rate, Result, RunStopped, purge
from bulkdelete.emulator import EmulatorConfig, FaultConfig, running_emulator
from tests.conftest import API_KEY, settings_for

pytestmark = pytest.mark.anyio


async def purge_against_limit(limit: int, count: int, rate: Rate) -> tuple[float, int, int, int]:
    config = EmulatorConfig(api_key=API_KEY, seed_count=count, rate_limit=limit, rate_period=1.0)
    async with running_emulator(config) as emulator:
        started = time.monotonic()
        summary = await purge(
            [f"user-{n:06d}" for n in range(1, count + 1)],
            settings_for(emulator.base_url, rate=rate, concurrency=8),
        )
        elapsed = time.monotonic() - started
        stats = emulator.stats
        return elapsed, summary.deleted, stats.rate_limited, stats.requests


async def test_a_ceiling_five_times_the_limit_stays_under_it() -> None:
    limit, count = 50, 250
    elapsed, deleted, limited, requests = await purge_against_limit(
        limit, count, Rate(5 * limit, 1.0)
    )
    assert deleted == count
    assert limited / requests <= 0.02
    assert elapsed <= 1.15 * count / limit


@pytest.mark.parametrize(("limit", "count"), [(20, 200), (100, 1000)])
async def test_rate_auto_learns_the_limit(limit: int, count: int) -> None:
    # Ten windows: the first is spent learning (nothing has left the window before it ends).
    elapsed, deleted, limited, requests = await purge_against_limit(
        limit, count, Rate.parse("auto")
    )
    assert deleted == count
    assert limited / requests <= 0.02
    assert elapsed <= 1.15 * count / limit


async def test_faults_end_deleted_or_not_found_without_needless_repeats() -> None:
    faults = FaultConfig(
        seed=21,
        error_rate=0.2,
        drop_rate=0.05,
        drop_after_delete_share=0.5,
        slow_rate=0.03,
        slow_delay=1.0,
    )
    config = EmulatorConfig(api_key=API_KEY, seed_count=300, faults=faults)
    async with running_emulator(config) as emulator:
        report = MemoryReport()
        summary = await purge(
            [f"user-{n:06d}" for n in range(1, 301)],
            settings_for(emulator.base_url, timeout=0.5, max_attempts=10),
            report,
        )
        assert summary.failed == 0
        assert summary.deleted + summary.not_found == 300
        assert emulator.identity_count() == 0
        # A repeat is needed only after an attempt that got no clean answer.
        for result in report.results:
            assert emulator.stats.deletes_by_id[result.id] == result.attempts
        doubtful = [r for r in report.results if r.outcome.value == "not_found"]
        assert all("earlier attempt" in r.error for r in doubtful)


async def test_an_answer_held_past_the_timeout_is_retried_then_failed_as_a_timeout() -> None:
    # The emulator deletes at once and holds the answer back for 2 s; --timeout is 0.2 s.
    faults = FaultConfig(slow_rate=1.0, slow_delay=2.0)
    config = EmulatorConfig(api_key=API_KEY, seed_count=1, faults=faults)
    async with running_emulator(config) as emulator:
        report = MemoryReport()
        summary = await purge(
            ["user-000001"],
            settings_for(emulator.base_url, timeout=0.2, max_attempts=2),
            report,
        )
        assert not emulator.exists("user-000001")  # the first attempt deleted it
        assert emulator.stats.deletes_by_id == {"user-000001": 2}
    assert summary.failed == 1
    [result] = report.results
    assert result.outcome is Outcome.FAILED
    assert result.attempts == 2
    assert result.http_status is None
    assert result.error == "timed out after 0.2 s"


async def test_an_absurd_retry_after_stops_the_run() -> None:
    config = EmulatorConfig(api_key=API_KEY, seed_count=5, rate_limit=1, rate_period=600.0)
    async with running_emulator(config) as emulator:
        with pytest.raises(RunStopped, match="--max-retry-after"):
            await purge(
                [f"user-{n:06d}" for n in range(1, 6)],
                settings_for(emulator.base_url, max_retry_after=30.0, concurrency=2),
            )


async def test_an_outage_in_the_middle_pauses_the_run_and_burns_no_ids() -> None:
    config = EmulatorConfig(api_key=API_KEY, seed_count=150)
    async with running_emulator(config) as emulator:
        report = MemoryReport()

        class OutageAfter(MemoryReport):
            def write(self, result: Result) -> None:
                super().write(result)
                if len(self.results) == 50:
                    emulator.start_outage(10.0)

        report = OutageAfter()
        started = time.monotonic()
        summary = await purge(
            [f"user-{n:06d}" for n in range(1, 151)],
            settings_for(emulator.base_url, rate=Rate(50, 1.0), max_attempts=3, max_outage=60),
            report,
        )
        elapsed = time.monotonic() - started
        outage_answers = emulator.stats.faults["outage"]

    assert summary.failed == 0
    assert summary.deleted + summary.not_found == 150
    assert elapsed >= 10
    # Held and probing, not hammering: a probe now and then, not 50 requests a second.
    assert outage_answers < 40


async def test_an_outage_longer_than_max_outage_stops_the_run_resumably() -> None:
    config = EmulatorConfig(api_key=API_KEY, seed_count=100)
    async with running_emulator(config) as emulator:
        emulator.start_outage(60.0)
        report = MemoryReport()
        started = time.monotonic()
        with pytest.raises(OutageError, match="--max-outage"):
            await purge(
                [f"user-{n:06d}" for n in range(1, 101)],
                settings_for(emulator.base_url, max_outage=3.0),
                report,
            )
        assert time.monotonic() - started < 20
        assert [r for r in report.results if r.outcome is Outcome.FAILED] == []
        assert emulator.identity_count() == 100

"""The purge as a library call, against the emulator over loopback."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from urllib.parse import quote

import pytest

from bulkdelete import (
    AuthError,
    MemoryReport,
    Outcome,
    Rate,
    UsageError,
    purge,
)
from bulkdelete.emulator import EmulatorConfig, FaultConfig, running_emulator
from tests.conftest import API_KEY, settings_for

pytestmark = pytest.mark.anyio

HOSTILE = ["a/b", "a?x=1", "a#f", "%2F", "50%", "ünï", "with space"]
# What a client that mangles the IDs above would hit instead.
DECOYS = ["a", "b", "/", "50", "unï", "with", "x", "%", "f"]


def by_id(report: MemoryReport) -> dict[str, Outcome]:
    return {result.id: result.outcome for result in report.results}


async def test_every_outcome_once_per_distinct_id() -> None:
    config = EmulatorConfig(api_key=API_KEY, seed_external_ids=["keep", "gone-1", "gone-2"])
    async with running_emulator(config) as emulator:
        report = MemoryReport()
        ids = ["gone-1", "gone-2", "missing", "..", "gone-1", "", "gone-2", "missing"]
        summary = await purge(ids, settings_for(emulator.base_url), report)

        assert by_id(report) == {
            "gone-1": Outcome.DELETED,
            "gone-2": Outcome.DELETED,
            "missing": Outcome.NOT_FOUND,
            "..": Outcome.INVALID,
            "": Outcome.INVALID,
        }
        assert (summary.deleted, summary.not_found, summary.failed, summary.invalid) == (2, 1, 0, 2)
        assert summary.duplicates == 3
        assert summary.input_lines == 8
        assert summary.exit_code == 1  # invalid IDs make the run not clean
        assert emulator.exists("keep")
        assert not emulator.exists("gone-1")
        assert emulator.stats.deletes_by_id == {"gone-1": 1, "gone-2": 1, "missing": 1}


async def test_result_rows_carry_status_attempts_and_request_id() -> None:
    config = EmulatorConfig(api_key=API_KEY, seed_external_ids=["one"], delete_status=200)
    async with running_emulator(config) as emulator:
        report = MemoryReport()
        await purge(["one", "two"], settings_for(emulator.base_url), report)
    rows = {result.id: result for result in report.results}
    assert rows["one"].http_status == 200
    assert rows["two"].http_status == 404
    assert rows["one"].attempts == 1
    assert rows["one"].request_id
    assert rows["one"].finished_at.endswith("Z")
    assert "T" in rows["one"].finished_at


async def test_hostile_ids_each_delete_exactly_their_identity() -> None:
    config = EmulatorConfig(api_key=API_KEY, seed_external_ids=HOSTILE + DECOYS)
    async with running_emulator(config) as emulator:
        report = MemoryReport()
        await purge(HOSTILE, settings_for(emulator.base_url), report)

        assert by_id(report) == dict.fromkeys(HOSTILE, Outcome.DELETED)
        for decoy in DECOYS:
            assert emulator.exists(decoy), f"{decoy!r} was hit by a mangled ID"
        assert emulator.stats.stray == 0
        assert sorted(emulator.stats.delete_paths) == sorted(
            f"/v2/identities/{quote(identity, safe='')}" for identity in HOSTILE
        )
        assert "/v2/identities/a%2Fb" in emulator.stats.delete_paths
        assert "/v2/identities/%252F" in emulator.stats.delete_paths
        assert "/v2/identities/50%25" in emulator.stats.delete_paths


async def test_ids_that_cannot_be_one_segment_never_reach_the_server() -> None:
    bad = [".", "..", "", "a\x00b", "line\nbreak", "tab\there", "x" * 1025]
    async with running_emulator(EmulatorConfig(api_key=API_KEY)) as emulator:
        report = MemoryReport()
        summary = await purge([*bad, "../projects"], settings_for(emulator.base_url), report)

        assert summary.invalid == len(bad)
        assert emulator.stats.requests == 1  # only ../projects, as one encoded segment
        assert list(emulator.stats.delete_paths) == ["/v2/identities/..%2Fprojects"]
        assert emulator.stats.stray == 0
    reasons = {result.id: result.error for result in report.results}
    assert reasons["a\x00b"].startswith("control character")
    assert reasons["x" * 1025].startswith("longer than 1024")


async def test_async_iterable_input_streams() -> None:
    async def ids() -> AsyncIterator[str]:
        for n in range(50):
            yield f"user-{n:06d}"

    config = EmulatorConfig(api_key=API_KEY, seed_count=30)
    async with running_emulator(config) as emulator:
        summary = await purge(ids(), settings_for(emulator.base_url))
    assert (summary.deleted, summary.not_found) == (30, 20)


async def test_wrong_key_stops_before_anything_is_reported_failed() -> None:
    config = EmulatorConfig(api_key=API_KEY, seed_count=100)
    async with running_emulator(config) as emulator:
        report = MemoryReport()
        ids = [f"user-{n:06d}" for n in range(1, 101)]
        settings = settings_for(emulator.base_url, api_key="wrong-key-123", concurrency=4)
        with pytest.raises(AuthError) as caught:
            await purge(ids, settings, report)

        assert "401" in str(caught.value)
        assert "wrong-key-123" not in str(caught.value)
        assert [r for r in report.results if r.outcome is Outcome.FAILED] == []
        # at most the requests already in flight were sent, nothing after the first 401
        assert emulator.stats.requests <= settings.concurrency
        assert emulator.identity_count() == 100


async def test_key_revoked_mid_run_stops_at_once() -> None:
    config = EmulatorConfig(api_key=API_KEY, seed_count=400)
    async with running_emulator(config) as emulator:
        report = MemoryReport()
        ids = [f"user-{n:06d}" for n in range(1, 401)]

        class RevokeAfter(MemoryReport):
            def write(self, result: object) -> None:
                super().write(result)  # type: ignore[arg-type]
                if len(self.results) == 50:
                    emulator.set_api_key("rotated")

        report = RevokeAfter()
        with pytest.raises(AuthError):
            await purge(ids, settings_for(emulator.base_url, concurrency=4), report)
        sent_after = emulator.stats.requests - 50
        assert 50 <= len(report.results) <= 50 + 4
        assert sent_after <= 4 + 4
        assert all(r.outcome is Outcome.DELETED for r in report.results)


async def test_transient_faults_are_retried_to_a_final_outcome() -> None:
    faults = FaultConfig(seed=11, error_rate=0.3)
    config = EmulatorConfig(api_key=API_KEY, seed_count=200, faults=faults)
    async with running_emulator(config) as emulator:
        report = MemoryReport()
        ids = [f"user-{n:06d}" for n in range(1, 201)]
        summary = await purge(ids, settings_for(emulator.base_url, max_attempts=12), report)

        assert summary.failed == 0
        assert summary.deleted + summary.not_found == 200
        assert emulator.identity_count() == 0
        assert max(result.attempts for result in report.results) > 1
        assert emulator.stats.status_counts[503] + emulator.stats.status_counts[500] > 0


async def test_retries_run_out_into_failed_with_the_last_error() -> None:
    faults = FaultConfig(seed=3, error_rate=1.0)
    config = EmulatorConfig(api_key=API_KEY, seed_count=5, faults=faults)
    async with running_emulator(config) as emulator:
        report = MemoryReport()
        summary = await purge(
            ["user-000001", "user-000002"],
            settings_for(emulator.base_url, max_attempts=3),
            report,
        )
        assert emulator.stats.requests == 6
    assert summary.failed == 2
    for result in report.results:
        assert result.attempts == 3
        assert result.error.startswith("HTTP 50")
        assert result.http_status in (500, 503)


async def test_a_dropped_answer_is_failed_not_claimed_deleted() -> None:
    faults = FaultConfig(seed=5, drop_rate=1.0, drop_after_delete_share=1.0)
    config = EmulatorConfig(api_key=API_KEY, seed_external_ids=["victim"], faults=faults)
    async with running_emulator(config) as emulator:
        report = MemoryReport()
        summary = await purge(["victim"], settings_for(emulator.base_url, max_attempts=2), report)
        # The first attempt deleted it but no answer came back: the report claims no more.
        assert not emulator.exists("victim")
    assert summary.failed == 1
    assert "connection" in report.results[0].error


async def test_plain_http_is_refused_unless_loopback() -> None:
    with pytest.raises(UsageError, match="plain http"):
        await purge(["x"], settings_for("http://api.example.com"))
    with pytest.raises(UsageError, match="API key"):
        await purge(["x"], settings_for("https://api.example.com", api_key=""))


async def test_pace_fills_the_rolling_window_without_a_429() -> None:
    limit, period = 25, 0.5  # 50 requests a second, measured over ten windows and more
    count = 260
    config = EmulatorConfig(api_key=API_KEY, seed_count=count, rate_limit=limit, rate_period=period)
    async with running_emulator(config) as emulator:
        started = time.monotonic()
        summary = await purge(
            [f"user-{n:06d}" for n in range(1, count + 1)],
            settings_for(emulator.base_url, rate=Rate(limit, period), concurrency=4),
        )
        elapsed = time.monotonic() - started
        stats = emulator.stats

    assert summary.deleted == count
    assert stats.rate_limited == 0
    assert stats.max_in_window <= limit
    # The first request opens the first window, so count - 1 intervals is the ideal.
    ideal = (count - 1) * period / limit
    assert ideal / elapsed >= 0.95, f"used {ideal / elapsed:.1%} of the limit"

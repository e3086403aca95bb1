"""The emulator's rolling-window rate limit: exact on a clock we drive, and over HTTP."""

from __future__ import annotations

import asyncio
import random
import time

import aiohttp
import pytest

from bulkdelete.emulator import Emulator, EmulatorConfig, parse_rate_limit
from bulkdelete.emulator.limits import PeakCounter, RollingWindowLimit
from bulkdelete.errors import UsageError
from tests.emulator_fixtures import item_url, raw_url, serving


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("100/60s", (100, 60.0)),
        ("100/min", (100, 60.0)),
        ("20/1s", (20, 1.0)),
        ("5/s", (5, 1.0)),
        ("5/0.5s", (5, 0.5)),
        ("100/60", (100, 60.0)),
        ("10/500ms", (10, 0.5)),
        ("1000/h", (1000, 3600.0)),
        ("50 / 2min", (50, 120.0)),
        ("3/.5S", (3, 0.5)),
    ],
)
def test_parse_rate_limit_reads_count_and_period(text: str, expected: tuple[int, float]) -> None:
    assert parse_rate_limit(text) == expected


@pytest.mark.parametrize(
    ("text", "hint"),
    [
        ("", "N/PERIOD"),
        ("100", "N/PERIOD"),
        ("100/", "period is missing"),
        ("x/60s", "N/PERIOD"),
        ("0/60s", "above zero"),
        ("5/0s", "above zero"),
        ("5/fortnight", "unknown unit"),
        ("-5/s", "N/PERIOD"),
    ],
)
def test_parse_rate_limit_explains_what_is_wrong(text: str, hint: str) -> None:
    with pytest.raises(UsageError, match=hint):
        parse_rate_limit(text)


def test_the_window_admits_n_then_refuses_until_the_oldest_leaves() -> None:
    window = RollingWindowLimit(3, 10.0)
    states = [window.admit(t) for t in (0.0, 1.0, 2.0)]
    assert [s.admitted for s in states] == [True, True, True]
    assert [s.remaining for s in states] == [2, 1, 0]
    assert [s.reset for s in states] == [0.0, 0.0, 8.0]

    refused = window.admit(3.0)
    assert (refused.admitted, refused.remaining, refused.reset) == (False, 0, 7.0)
    # Refusals cost no quota: the slot still frees when the request of t=0 leaves.
    assert not window.admit(9.999).admitted
    again = window.admit(10.0)  # t=0 is no longer *after* 10.0 - 10
    assert (again.admitted, again.remaining) == (True, 0)
    assert again.reset == pytest.approx(1.0)


def test_peek_spends_nothing() -> None:
    window = RollingWindowLimit(2, 1.0)
    for _ in range(5):
        assert window.peek(0.0).remaining == 2
    window.admit(0.0)
    assert window.peek(0.5).remaining == 1
    assert window.peek(1.0).remaining == 2


def test_a_lowered_limit_frees_a_slot_when_enough_requests_have_left() -> None:
    window = RollingWindowLimit(5, 10.0)
    for t in range(5):
        window.admit(float(t))
    window.limit = 2
    refused = window.admit(5.0)
    assert not refused.admitted
    # Four requests (t=0..3) must leave before fewer than two remain: at t=13.
    assert refused.reset == pytest.approx(8.0)
    assert not window.admit(12.9).admitted
    assert window.admit(13.0).admitted


def test_no_window_ever_holds_more_than_n_admissions_and_refusals_are_justified() -> None:
    rng = random.Random(7)
    limit, period = 7, 1.0
    window = RollingWindowLimit(limit, period)
    now = 0.0
    admitted: list[float] = []
    for _ in range(5_000):
        now += rng.expovariate(12.0)
        state = window.admit(now)
        in_window = sum(1 for t in admitted if t > now - period)
        if state.admitted:
            assert in_window < limit
            admitted.append(now)
            assert state.remaining == limit - in_window - 1
        else:
            assert in_window == limit
            oldest = min(t for t in admitted if t > now - period)
            assert state.reset == pytest.approx(oldest + period - now)
    assert 0.3 * len(admitted) < 5_000 - len(admitted)  # the limit really did bind


def test_peak_counter_finds_the_busiest_window() -> None:
    peak = PeakCounter(1.0)
    for t in (0.0, 0.1, 0.2, 1.15, 1.2, 1.21, 1.3, 5.0):
        peak.record(t)
    assert peak.peak == 4  # 0.2 has left by 1.21 (0.2 <= 1.21 - 1), so 1.15, 1.2, 1.21, 1.3
    peak.reset()
    assert peak.peak == 0


@pytest.mark.anyio
async def test_over_http_n_pass_the_next_is_429_and_the_window_then_reopens() -> None:
    config = EmulatorConfig(rate_limit=5, rate_period=0.5, seed_count=20)
    async with serving(config) as (emulator, http):
        started = time.monotonic()
        for number in range(1, 6):
            async with http.delete(item_url(emulator, f"user-{number:06d}")) as response:
                assert response.status == 204
                assert response.headers["X-RateLimit-Limit"] == "5"
                assert response.headers["X-RateLimit-Remaining"] == str(5 - number)
                reset = float(response.headers["X-RateLimit-Reset"])
                assert (reset == 0.0) if number < 5 else (0.0 < reset <= 0.5)
        async with http.delete(item_url(emulator, "user-000006")) as response:
            refused_after = time.monotonic() - started
            assert response.status == 429
            assert response.headers["Retry-After"] == "1"
            assert response.headers["X-RateLimit-Limit"] == "5"
            assert response.headers["X-RateLimit-Remaining"] == "0"
            reset = float(response.headers["X-RateLimit-Reset"])
            assert reset == pytest.approx(0.5 - refused_after, abs=0.05)
            assert "Rate limit" in (await response.json())["message"]
        assert emulator.exists("user-000006")
        assert emulator.stats.rate_limited == 1

        await asyncio.sleep(reset + 0.02)
        # The refused request cost nothing: a full window of five passes again.
        for number in range(6, 11):
            async with http.delete(item_url(emulator, f"user-{number:06d}")) as response:
                assert response.status == 204
        async with http.delete(item_url(emulator, "user-000011")) as response:
            assert response.status == 429
        assert emulator.stats.status_counts == {204: 10, 429: 2}
        assert emulator.stats.deletes_by_id["user-000006"] == 1  # only the admitted attempt


@pytest.mark.anyio
async def test_every_v2_answer_carries_the_headers_and_refusals_cost_no_quota() -> None:
    config = EmulatorConfig(rate_limit=3, rate_period=30.0, api_key="k")
    async with serving(config) as (emulator, http):
        key = {"Authorization": "Bearer k"}
        cases = [
            ("GET", "/v2/identities/a/b", {}, 404),  # stray
            ("PUT", "/v2/identities", {}, 405),
            ("GET", "/v2/identities", {}, 401),
            ("GET", "/v2/identities/missing", key, 404),
        ]
        for method, target, headers, status in cases:
            async with http.request(method, raw_url(emulator, target), headers=headers) as response:
                assert response.status == status
                assert response.headers["X-RateLimit-Limit"] == "3"
        # Only the last one was admitted.
        async with http.get(f"{emulator.base_url}/v2/identities", headers=key) as response:
            assert response.headers["X-RateLimit-Remaining"] == "1"
        async with http.get(f"{emulator.base_url}/_emulator/stats") as response:
            assert "X-RateLimit-Limit" not in response.headers


@pytest.mark.anyio
async def test_the_limit_changes_at_run_time() -> None:
    async with serving(EmulatorConfig(seed_count=10)) as (emulator, http):

        async def status(number: int) -> int:
            async with http.delete(item_url(emulator, f"user-{number:06d}")) as response:
                return response.status

        assert [await status(n) for n in (1, 2)] == [204, 204]
        emulator.set_rate_limit(2, 30.0)
        assert [await status(n) for n in (3, 4, 5)] == [204, 204, 429]
        emulator.set_rate_limit(None)
        assert [await status(n) for n in (5, 6)] == [204, 204]


async def _burst(emulator: Emulator, http: aiohttp.ClientSession, count: int) -> list[int]:
    async def one(number: int) -> int:
        async with http.get(item_url(emulator, f"id-{number}")) as response:
            return response.status

    return list(await asyncio.gather(*(one(n) for n in range(count))))


@pytest.mark.anyio
async def test_max_in_window_counts_every_arrival_refused_ones_too() -> None:
    async with serving(EmulatorConfig(stats_window=30.0)) as (emulator, http):
        assert await _burst(emulator, http, 20) == [404] * 20
        assert emulator.stats.max_in_window == 20
    config = EmulatorConfig(rate_limit=5, rate_period=30.0, stats_window=0.001)
    async with serving(config) as (emulator, http):
        statuses = await _burst(emulator, http, 12)
        assert sorted(statuses) == [404] * 5 + [429] * 7
        assert emulator.stats.max_in_window == 12
        assert emulator.stats.as_dict()["window_seconds"] == 30.0


@pytest.mark.anyio
async def test_max_in_window_of_a_paced_client_stays_within_the_window() -> None:
    async with serving(EmulatorConfig(stats_window=0.2)) as (emulator, http):
        for number in range(12):
            async with http.get(item_url(emulator, f"id-{number}")) as response:
                assert response.status == 404
            await asyncio.sleep(0.05)
        # 4 requests a 0.2 s window at this pace; scheduling can only spread them further.
        assert 1 <= emulator.stats.max_in_window <= 4

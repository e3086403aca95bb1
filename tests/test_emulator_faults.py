"""The emulator's bad days: errors, drops, slow answers, latency and outages, over HTTP."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import replace

import aiohttp
import pytest

from bulkdelete.emulator import Emulator, EmulatorConfig, FaultConfig
from bulkdelete.errors import UsageError
from tests.emulator_fixtures import item_url, serving

pytestmark = pytest.mark.anyio

# What an aiohttp client sees when the server closes the connection without an answer.
DROPPED = (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError)


async def _outcome(http: aiohttp.ClientSession, emulator: Emulator, identity: str) -> str:
    try:
        async with http.delete(item_url(emulator, identity)) as response:
            await response.read()
            return str(response.status)
    except DROPPED:
        return "dropped"


async def _play(faults: FaultConfig, count: int = 200) -> tuple[list[str], dict[str, object]]:
    config = EmulatorConfig(seed_count=count, faults=faults)
    async with serving(config) as (emulator, http):
        outcomes = [await _outcome(http, emulator, f"user-{n:06d}") for n in range(1, count + 1)]
        return outcomes, emulator.stats.as_dict()


async def test_the_same_seed_plays_the_same_faults_and_another_seed_others() -> None:
    faults = FaultConfig(seed=42, error_rate=0.2, drop_rate=0.1, slow_rate=0.05, slow_delay=0.01)
    first, first_stats = await _play(faults)
    second, second_stats = await _play(faults)
    other, _ = await _play(replace(faults, seed=43))
    assert first == second
    for key in ("status_counts", "faults", "dropped", "deleted_ids", "deletes_by_id"):
        assert first_stats[key] == second_stats[key], key
    assert first != other

    # The shares are what was asked for, give or take chance (200 draws and a few retries).
    outcomes = Counter(first)
    assert 20 <= outcomes["500"] + outcomes["503"] <= 70
    assert outcomes["500"] > 0
    assert outcomes["503"] > 0
    assert 1 <= outcomes["dropped"] <= 30
    played = first_stats["faults"]
    assert isinstance(played, dict)
    assert played.get("slow", 0) > 0


async def test_a_dropped_connection_is_seen_by_the_client_and_nothing_was_done() -> None:
    faults = FaultConfig(drop_rate=1.0, drop_after_delete_share=0.0)
    async with serving(EmulatorConfig(seed_count=1, faults=faults)) as (emulator, http):
        with pytest.raises(DROPPED):
            async with http.delete(item_url(emulator, "user-000001")) as response:
                await response.read()
        assert emulator.exists("user-000001")
        assert emulator.stats.dropped >= 1
        assert emulator.stats.status_counts == {}
        # POST is not retried by aiohttp, so this one is exactly one request.
        emulator.reset_stats()
        url = f"{emulator.base_url}/v2/identities"
        with pytest.raises(DROPPED):
            async with http.post(url, json={"external_id": "new"}) as response:
                await response.read()
        assert emulator.stats.dropped == 1
        assert emulator.stats.faults == {"drop_before_delete": 1}
        assert not emulator.exists("new")


async def test_a_drop_after_delete_really_deleted_the_identity() -> None:
    faults = FaultConfig(drop_rate=1.0, drop_after_delete_share=1.0)
    async with serving(EmulatorConfig(seed_count=1, faults=faults)) as (emulator, http):
        with pytest.raises(DROPPED):
            async with http.delete(item_url(emulator, "user-000001")) as response:
                await response.read()
        assert not emulator.exists("user-000001")
        assert emulator.stats.deleted_ids == {"user-000001"}
        assert emulator.stats.faults["drop_after_delete"] >= 1


async def test_a_slow_answer_outlasts_the_client_though_the_delete_happened() -> None:
    faults = FaultConfig(slow_rate=1.0, slow_delay=0.4)
    async with serving(EmulatorConfig(seed_count=2, faults=faults)) as (emulator, http):
        timeout = aiohttp.ClientTimeout(total=0.1)
        with pytest.raises(asyncio.TimeoutError):
            async with http.delete(item_url(emulator, "user-000001"), timeout=timeout):
                pass
        assert not emulator.exists("user-000001")

        started = time.monotonic()
        async with http.delete(item_url(emulator, "user-000002")) as response:
            assert response.status == 204
        assert time.monotonic() - started >= 0.4


async def test_server_errors_are_500_or_503_with_a_message_and_change_nothing() -> None:
    faults = FaultConfig(seed=1, error_rate=1.0)
    async with serving(EmulatorConfig(seed_count=1, faults=faults)) as (emulator, http):
        statuses: Counter[int] = Counter()
        for _ in range(40):
            async with http.delete(item_url(emulator, "user-000001")) as response:
                statuses[response.status] += 1
                assert (await response.json())["message"]
        assert set(statuses) == {500, 503}
        assert emulator.exists("user-000001")
        assert emulator.stats.deletes_by_id == {"user-000001": 40}
        # Admin routes never meet a fault.
        async with http.get(f"{emulator.base_url}/_emulator/stats") as response:
            assert response.status == 200


async def test_latency_delays_every_answer_within_the_jitter() -> None:
    faults = FaultConfig(latency=0.15, latency_jitter=0.05)
    async with serving(EmulatorConfig(faults=faults)) as (emulator, http):

        async def timed(number: int) -> float:
            started = time.monotonic()
            async with http.get(item_url(emulator, f"id-{number}")) as response:
                assert response.status == 404
            return time.monotonic() - started

        durations = await asyncio.gather(*(timed(n) for n in range(10)))
    assert min(durations) >= 0.1
    assert max(durations) < 0.2 + 0.15  # the jitter's top plus generous room for the loop
    assert max(durations) - min(durations) > 0.005


async def test_an_outage_answers_503_for_its_length_from_python_or_the_admin_route() -> None:
    async with serving(EmulatorConfig(seed_count=3)) as (emulator, http):

        async def status(number: int) -> int:
            async with http.delete(item_url(emulator, f"user-{number:06d}")) as response:
                return response.status

        emulator.start_outage(0.3)
        assert await status(1) == 503
        async with http.get(f"{emulator.base_url}/v2/identities") as response:
            assert response.status == 503
            assert "outage" in (await response.json())["message"]
        await asyncio.sleep(0.35)
        assert await status(1) == 204

        admin = f"{emulator.base_url}/_emulator/outage"
        async with http.post(admin, params={"seconds": "30"}) as response:
            assert response.status == 200
        assert await status(2) == 503
        async with http.get(f"{emulator.base_url}/_emulator/stats") as response:
            assert response.status == 200  # admin routes work through an outage
        async with http.post(admin, params={"seconds": "0"}) as response:
            assert response.status == 200
        assert await status(2) == 204
        for bad in ("", "soon", "-1", "nan"):
            async with http.post(admin, params={"seconds": bad}) as response:
                assert response.status == 400
        assert emulator.stats.faults["outage"] == 3
        assert emulator.exists("user-000003")


async def test_faults_can_be_switched_at_run_time() -> None:
    async with serving(EmulatorConfig(seed_count=2)) as (emulator, http):
        emulator.set_faults(FaultConfig(error_rate=1.0))
        assert await _outcome(http, emulator, "user-000001") in {"500", "503"}
        emulator.set_faults(FaultConfig())
        assert await _outcome(http, emulator, "user-000001") == "204"


@pytest.mark.parametrize(
    "changes",
    [
        {"error_rate": 1.5},
        {"drop_rate": -0.1},
        {"slow_rate": float("nan")},
        {"error_rate": 0.6, "drop_rate": 0.3, "slow_rate": 0.2},
        {"slow_delay": -1.0},
        {"latency": float("inf")},
        {"drop_after_delete_share": 2.0},
    ],
)
def test_fault_settings_out_of_range_are_usage_errors(changes: dict[str, float]) -> None:
    with pytest.raises(UsageError):
        FaultConfig(**changes)  # type: ignore[arg-type]

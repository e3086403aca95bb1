"""The official Python SDK (orq-ai-sdk) agrees with the emulator, traps included."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from orq_ai_sdk import Orq
from orq_ai_sdk.models import OrqError

from bulkdelete.emulator import Emulator, EmulatorConfig, emulator_in_thread

KEY = "sdk-test-key"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    config = EmulatorConfig(api_key=KEY, delete_status=200, seed_count=5)
    with emulator_in_thread(config) as emulator:
        yield emulator


@pytest.fixture
def orq(emulator: Emulator) -> Orq:
    return Orq(api_key=KEY, server_url=emulator.base_url)


def test_create_retrieve_list_and_delete(emulator: Emulator, orq: Orq) -> None:
    created = orq.identities.create(external_id="sdk-1", display_name="From the SDK")
    identity = created.result.identity
    assert identity.external_id == "sdk-1"
    assert identity.display_name == "From the SDK"

    assert orq.identities.retrieve(id=identity.id).identity.external_id == "sdk-1"
    assert orq.identities.retrieve(id="sdk-1").identity.id == identity.id

    seen: list[str] = []
    page = orq.identities.list(limit=2)
    while True:
        seen.extend(item.external_id for item in page.data)
        if not page.has_more:
            break
        page = orq.identities.list(limit=2, starting_after=page.data[-1].id)
    assert seen == [*(f"user-{n:06d}" for n in range(1, 6)), "sdk-1"]

    orq.identities.delete(id="sdk-1")
    assert not emulator.exists("sdk-1")
    assert emulator.stats.deleted_ids == {"sdk-1"}


def test_deleting_a_missing_identity_raises_the_sdk_error_with_404(orq: Orq) -> None:
    with pytest.raises(OrqError) as raised:
        orq.identities.delete(id="nobody")
    assert raised.value.status_code == 404
    assert "Identity not found" in raised.value.body


def test_a_wrong_key_raises_the_sdk_error_with_401(emulator: Emulator) -> None:
    with pytest.raises(OrqError) as raised:
        Orq(api_key="wrong", server_url=emulator.base_url).identities.delete(id="user-000001")
    assert raised.value.status_code == 401
    assert emulator.exists("user-000001")


def test_the_sdk_chokes_on_the_documented_204() -> None:
    with emulator_in_thread(EmulatorConfig(seed_count=1)) as emulator:
        orq = Orq(api_key=KEY, server_url=emulator.base_url)
        with pytest.raises(OrqError) as raised:
            orq.identities.delete(id="user-000001")
        assert raised.value.status_code == 204
        assert not emulator.exists("user-000001")  # deleted, although the SDK says it failed


def test_the_emulator_shows_the_sdk_putting_ids_into_the_path_unencoded(
    emulator: Emulator, orq: Orq
) -> None:
    emulator.add_identities(["a", "a?x=1"])
    orq.identities.delete(id="a?x=1")
    assert emulator.exists("a?x=1")
    assert not emulator.exists("a")  # the wrong identity went

    with pytest.raises(OrqError) as raised:
        orq.identities.delete(id="../projects")
    assert raised.value.status_code == 404
    assert emulator.stats.stray == 1

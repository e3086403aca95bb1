"""The emulator's identity store and ULIDs, on their own."""

from __future__ import annotations

import time

import pytest

from bulkdelete.emulator.store import (
    ULID_PATTERN,
    DuplicateIdentityError,
    IdentityStore,
    UlidFactory,
    ulid_timestamp_ms,
)


def test_ulids_are_26_crockford_characters_in_creation_order() -> None:
    new_ulid = UlidFactory()
    before = time.time_ns() // 1_000_000
    ulids = [new_ulid() for _ in range(10_000)]  # many share a millisecond
    after = time.time_ns() // 1_000_000
    assert all(ULID_PATTERN.match(ulid) for ulid in ulids)
    assert ulids == sorted(ulids)
    assert len(set(ulids)) == len(ulids)
    assert before <= ulid_timestamp_ms(ulids[0]) <= ulid_timestamp_ms(ulids[-1]) <= after + 1
    # The random part really is random between factories.
    assert UlidFactory()()[10:] != UlidFactory()()[10:]


def _external_ids(store: IdentityStore, **cursor: str) -> list[str]:
    page, _ = store.page(100_000, **cursor)
    return [identity.external_id for identity in page]


def test_get_and_delete_by_either_name() -> None:
    store = IdentityStore()
    first = store.add("one")
    second = store.add("two", identity_id="given-id")
    assert store.get(first.id) is first
    assert store.get("one") is first
    assert store.get("given-id") is second
    assert store.delete("one") is first
    assert store.get(first.id) is None
    assert store.delete(first.id) is None
    assert store.delete("given-id") is second
    assert store.get("two") is None
    assert len(store) == 0


def test_duplicates_are_refused() -> None:
    store = IdentityStore()
    store.add("x", identity_id="id-x")
    with pytest.raises(DuplicateIdentityError):
        store.add("x")
    with pytest.raises(DuplicateIdentityError):
        store.add("y", identity_id="id-x")


def test_paging_survives_many_deletes_and_a_deleted_id_coming_back() -> None:
    store = IdentityStore()
    ids = [store.add(f"e{n:05d}").id for n in range(5_000)]
    for identity_id in ids[:4_000]:
        store.delete(identity_id)  # enough to rebuild the order list, more than once
    assert _external_ids(store) == [f"e{n:05d}" for n in range(4_000, 5_000)]
    page, has_more = store.page(3, starting_after=ids[4_500])
    assert [identity.id for identity in page] == ids[4_501:4_504]
    assert has_more

    store.add("back", identity_id=ids[10])  # an _id that sorts early, and was deleted
    store.add("early", identity_id="0")  # sorts before every ULID
    walked = _external_ids(store)
    assert walked[:2] == ["early", "back"]
    assert len(walked) == len(set(walked)) == 1_002


def test_an_id_deleted_and_added_again_is_listed_once() -> None:
    store = IdentityStore()
    store.add("first", identity_id="id-1")
    store.add("other", identity_id="id-2")
    store.delete("id-1")
    store.add("second", identity_id="id-1")
    assert _external_ids(store) == ["second", "other"]


def test_cursors_accept_external_ids_and_unknown_places() -> None:
    store = IdentityStore()
    for name in ("a", "b", "c", "d"):
        store.add(name, identity_id=f"id-{name}")
    assert _external_ids(store, starting_after="b") == ["c", "d"]
    assert _external_ids(store, starting_after="id-bb") == ["c", "d"]  # between b and c
    assert _external_ids(store, ending_before="c") == ["a", "b"]
    page, has_more = store.page(1, ending_before="id-d")
    assert [identity.external_id for identity in page] == ["c"]
    assert has_more
    page, has_more = store.page(2, starting_after="id-b")
    assert [identity.external_id for identity in page] == ["c", "d"]
    assert not has_more

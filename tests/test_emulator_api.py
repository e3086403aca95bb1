"""The emulator's routes, answers and bookkeeping, over HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from bulkdelete.emulator import EmulatorConfig
from bulkdelete.emulator.store import ULID_PATTERN
from tests.emulator_fixtures import (
    HOSTILE_IDS,
    SchemaViolation,
    item_url,
    raw_url,
    serving,
    validate_response,
)

pytestmark = pytest.mark.anyio


async def _json(response: aiohttp.ClientResponse) -> Any:
    return json.loads(await response.read())


async def test_create_answers_201_with_the_identity() -> None:
    async with serving() as (emulator, http):
        body = {"external_id": "customer-1", "display_name": "Ada", "tags": ["vip"]}
        async with http.post(f"{emulator.base_url}/v2/identities", json=body) as response:
            assert response.status == 201
            created = await _json(response)
            location = response.headers["Location"]
            assert response.headers["x-request-id"]
    validate_response("CreateIdentityResponse", created)
    identity = created["identity"]
    assert ULID_PATTERN.match(identity["_id"])
    assert identity["external_id"] == "customer-1"
    assert identity["display_name"] == "Ada"
    assert identity["tags"] == ["vip"]
    assert location == f"/v2/identities/{identity['_id']}"
    assert emulator.exists("customer-1")
    assert emulator.exists(identity["_id"])


async def test_a_duplicate_external_id_is_refused_with_409() -> None:
    async with serving() as (emulator, http):
        url = f"{emulator.base_url}/v2/identities"
        async with http.post(url, json={"external_id": "twice"}) as response:
            assert response.status == 201
        async with http.post(url, json={"external_id": "twice"}) as response:
            assert response.status == 409
            assert "twice" in (await _json(response))["message"]
        assert emulator.identity_count() == 1


@pytest.mark.parametrize(
    ("body", "status"),
    [
        (b"{not json", 400),
        (b"", 400),
        (b"\xff\xfe\x00garbage", 400),
        (b"[" * 100_000 + b"]" * 100_000, 400),
        (b"[1, 2]", 422),
        (b"{}", 422),
        (b'{"display_name": "no external id"}', 422),
        (b'{"external_id": 5}', 422),
        (b'{"external_id": ""}', 422),
        (b'{"external_id": "x", "tags": "not-a-list"}', 422),
        (b'{"external_id": "x", "tags": [1]}', 422),
        (b'{"external_id": "x", "metadata": [1]}', 422),
        (b'{"external_id": "x", "email": {"a": 1}}', 422),
        (b'{"external_id": "\\ud800"}', 400),
        (b'{"external_id": "x", "metadata": {"k": ["\\udfff"]}}', 400),
    ],
)
async def test_a_bad_create_body_gets_a_clear_4xx(body: bytes, status: int) -> None:
    async with serving() as (emulator, http):
        headers = {"Content-Type": "application/json"}
        url = f"{emulator.base_url}/v2/identities"
        async with http.post(url, data=body, headers=headers) as response:
            assert response.status == status
            assert (await _json(response))["message"]
        assert emulator.identity_count() == 0
        assert 500 not in emulator.stats.status_counts


async def test_retrieve_by_id_or_external_id() -> None:
    async with serving(EmulatorConfig(seed_external_ids=["ext-1"])) as (emulator, http):
        (identity_id,) = emulator.add_identities(["ext-2"])
        for key, external_id in ((identity_id, "ext-2"), ("ext-2", "ext-2"), ("ext-1", "ext-1")):
            async with http.get(item_url(emulator, key)) as response:
                assert response.status == 200
                body = await _json(response)
            validate_response("RetrieveIdentityResponse", body)
            assert body["identity"]["external_id"] == external_id
        async with http.get(item_url(emulator, "nobody")) as response:
            assert response.status == 404
            assert await _json(response) == {"error": "Identity not found"}


async def test_delete_answers_204_then_404() -> None:
    async with serving(EmulatorConfig(seed_count=2)) as (emulator, http):
        async with http.delete(item_url(emulator, "user-000001")) as response:
            assert response.status == 204
            assert await response.read() == b""
        async with http.delete(item_url(emulator, "user-000001")) as response:
            assert response.status == 404
            assert await _json(response) == {"error": "Identity not found"}
        assert not emulator.exists("user-000001")
        assert emulator.exists("user-000002")
        stats = emulator.stats
        assert stats.deletes_by_id == {"user-000001": 2}
        assert stats.deleted_ids == {"user-000001"}
        assert stats.status_counts == {204: 1, 404: 1}
        assert list(stats.delete_paths) == ["/v2/identities/user-000001"] * 2


async def test_delete_status_200_answers_an_empty_object() -> None:
    async with serving(EmulatorConfig(delete_status=200, seed_count=1)) as (emulator, http):
        async with http.delete(item_url(emulator, "user-000001")) as response:
            assert response.status == 200
            body = await _json(response)
        assert body == {}
        validate_response("DeleteIdentityResponse", body)


async def test_delete_by_ulid_removes_the_identity_under_both_names() -> None:
    async with serving() as (emulator, http):
        (identity_id,) = emulator.add_identities(["by-ulid"])
        async with http.delete(item_url(emulator, identity_id)) as response:
            assert response.status == 204
        assert not emulator.exists(identity_id)
        assert not emulator.exists("by-ulid")
        assert emulator.stats.deleted_ids == {identity_id}


async def _walk(
    http: aiohttp.ClientSession, base_url: str, limit: int
) -> list[list[dict[str, Any]]]:
    pages: list[list[dict[str, Any]]] = []
    params: dict[str, str] = {"limit": str(limit)}
    while True:
        async with http.get(f"{base_url}/v2/identities", params=params) as response:
            assert response.status == 200
            body = await _json(response)
        validate_response("ListIdentitiesResponse", body)
        assert body["object"] == "list"
        pages.append(body["data"])
        if not body["has_more"]:
            return pages
        params["starting_after"] = body["data"][-1]["_id"]


async def test_list_pagination_walks_every_identity_once_in_creation_order() -> None:
    async with serving(EmulatorConfig(seed_count=25)) as (emulator, http):
        pages = await _walk(http, emulator.base_url, limit=7)
        assert [len(page) for page in pages] == [7, 7, 7, 4]
        walked = [identity["external_id"] for page in pages for identity in page]
        assert walked == [f"user-{n:06d}" for n in range(1, 26)]
        ids = [identity["_id"] for page in pages for identity in page]
        assert ids == sorted(ids)
        # An exact multiple of the page size must not end on an empty page with has_more.
        assert [len(page) for page in await _walk(http, emulator.base_url, limit=5)] == [5] * 5

        params = {"limit": "3", "ending_before": ids[10]}
        async with http.get(f"{emulator.base_url}/v2/identities", params=params) as response:
            body = await _json(response)
        assert [identity["_id"] for identity in body["data"]] == ids[7:10]
        assert body["has_more"] is True


async def test_list_skips_deleted_identities() -> None:
    async with serving(EmulatorConfig(seed_count=10)) as (emulator, http):
        for number in (1, 4, 5, 10):
            async with http.delete(item_url(emulator, f"user-{number:06d}")) as response:
                assert response.status == 204
        pages = await _walk(http, emulator.base_url, limit=3)
        walked = [identity["external_id"] for page in pages for identity in page]
        assert walked == [f"user-{n:06d}" for n in (2, 3, 6, 7, 8, 9)]


@pytest.mark.parametrize(
    "query",
    [
        "limit=0",
        "limit=201",
        "limit=-1",
        "limit=ten",
        "limit=%EF%BC%91",  # a full-width digit one
        "starting_after=a&ending_before=b",
    ],
)
async def test_list_refuses_bad_parameters_with_400(query: str) -> None:
    async with (
        serving() as (emulator, http),
        http.get(raw_url(emulator, f"/v2/identities?{query}")) as response,
    ):
        assert response.status == 400
        assert (await _json(response))["message"]


async def test_patch_updates_the_profile() -> None:
    async with serving(EmulatorConfig(seed_external_ids=["p"])) as (emulator, http):
        url = item_url(emulator, "p")
        async with http.patch(url, json={"email": "p@example.com", "tags": ["a"]}) as response:
            assert response.status == 200
            body = await _json(response)
        assert body["identity"]["email"] == "p@example.com"
        async with http.patch(url, json={"email": None}) as response:
            body = await _json(response)
        assert "email" not in body["identity"]
        assert body["identity"]["tags"] == ["a"]
        async with http.patch(url, data=b"nope") as response:
            assert response.status == 400


@pytest.mark.parametrize(
    ("method", "target", "allow"),
    [
        ("PUT", "/v2/identities/x", "GET, PATCH, DELETE"),
        ("POST", "/v2/identities/x", "GET, PATCH, DELETE"),
        ("DELETE", "/v2/identities", "GET, POST"),
        ("PATCH", "/v2/identities", "GET, POST"),
    ],
)
async def test_a_wrong_method_on_a_known_route_is_405(method: str, target: str, allow: str) -> None:
    async with serving(EmulatorConfig(seed_external_ids=["x"])) as (emulator, http):
        async with http.request(method, raw_url(emulator, target)) as response:
            assert response.status == 405
            assert response.headers["Allow"] == allow
        assert emulator.stats.stray == 0
        assert emulator.exists("x")


STRAY_TARGETS = [
    "/v2/identities/a/b",
    "/v2/identities/a/",
    "/v2/identities/",
    "/v2/identities//a",
    "/v2/identities/..",
    "/v2/identities/.",
    "/v2/identities/../projects",
    "/v2/projects",
    "/v2",
    "/v2/",
    "/",
    "/identities/a",
    "/_emulator/nothing-here",
]


async def test_paths_that_name_no_identities_route_are_stray() -> None:
    async with serving(EmulatorConfig(seed_external_ids=["a", "b", "a/b", ".."])) as (
        emulator,
        http,
    ):
        for target in STRAY_TARGETS:
            async with http.delete(raw_url(emulator, target)) as response:
                assert response.status == 404, target
                assert "no route" in (await _json(response))["message"]
        stats = emulator.stats
        assert stats.stray == len(STRAY_TARGETS)
        assert list(stats.delete_paths) == STRAY_TARGETS
        assert stats.deletes_by_id == {}
        assert emulator.identity_count() == 4


@pytest.mark.parametrize("hostile_id", HOSTILE_IDS)
async def test_a_hostile_id_sent_encoded_once_deletes_exactly_that_identity(
    hostile_id: str,
) -> None:
    decoys = ["a", "b", "/", "50", "a?x=1%", "with", "%252F", "un"]
    seeds = [hostile_id, *(decoy for decoy in decoys if decoy != hostile_id)]
    async with serving(EmulatorConfig(seed_external_ids=seeds)) as (emulator, http):
        async with http.get(item_url(emulator, hostile_id)) as response:
            assert response.status == 200
            assert (await _json(response))["identity"]["external_id"] == hostile_id
        async with http.delete(item_url(emulator, hostile_id)) as response:
            assert response.status == 204
        assert not emulator.exists(hostile_id)
        assert all(emulator.exists(decoy) for decoy in seeds[1:])
        assert emulator.stats.deleted_ids == {hostile_id}
        assert emulator.stats.deletes_by_id == {hostile_id: 1}
        assert emulator.stats.stray == 0


@pytest.mark.parametrize(
    ("raw_segment", "identity_id"),
    [
        ("a%2Fb", "a/b"),
        ("%252F", "%2F"),
        ("a%3Fx%3D1", "a?x=1"),
        ("%C3%BCn%C3%AF", "ünï"),
        ("with%20space", "with space"),
        ("%2E%2E", ".."),
        ("50%", "50%"),  # a stray percent sign stays as it is, as unquote leaves it
        ("a?x=1", "a"),  # the query string is not part of the segment
    ],
)
async def test_the_segment_is_percent_decoded_exactly_once(
    raw_segment: str, identity_id: str
) -> None:
    async with serving(EmulatorConfig(seed_external_ids=[identity_id, "decoy"])) as (
        emulator,
        http,
    ):
        async with http.delete(raw_url(emulator, f"/v2/identities/{raw_segment}")) as response:
            assert response.status == 204
        assert emulator.stats.deleted_ids == {identity_id}
        assert emulator.identity_count() == 1


async def test_a_segment_that_is_not_utf8_is_400() -> None:
    async with serving() as (emulator, http):
        async with http.delete(raw_url(emulator, "/v2/identities/%FF%FE")) as response:
            assert response.status == 400
        assert 500 not in emulator.stats.status_counts


async def test_the_api_key_is_required_and_can_change_at_run_time() -> None:
    config = EmulatorConfig(api_key="secret", seed_count=5)
    async with serving(config) as (emulator, http):

        async def delete(number: int, authorization: str | None) -> aiohttp.ClientResponse:
            headers = {} if authorization is None else {"Authorization": authorization}
            url = item_url(emulator, f"user-{number:06d}")
            async with http.delete(url, headers=headers) as response:
                await response.read()
                return response

        for authorization in (None, "Bearer wrong", "secret", "Basic secret"):
            response = await delete(1, authorization)
            assert response.status == 401
            assert response.headers["WWW-Authenticate"] == "Bearer"
        assert (await delete(1, "Bearer secret")).status == 204
        assert (await delete(2, "bearer secret")).status == 204

        emulator.set_api_key("rotated")
        assert (await delete(3, "Bearer secret")).status == 401
        assert (await delete(3, "Bearer rotated")).status == 204
        emulator.set_api_key(None)
        assert (await delete(4, None)).status == 204
        assert emulator.stats.deleted_ids == {f"user-{n:06d}" for n in (1, 2, 3, 4)}


async def test_a_refused_key_gets_a_message_body() -> None:
    async with (
        serving(EmulatorConfig(api_key="secret")) as (emulator, http),
        http.get(f"{emulator.base_url}/v2/identities") as response,
    ):
        assert response.status == 401
        body = await _json(response)
    assert isinstance(body["message"], str)
    assert body["message"]


async def test_every_answer_has_its_own_request_id() -> None:
    async with serving(EmulatorConfig(seed_count=10)) as (emulator, http):
        targets = [
            ("DELETE", "/v2/identities/user-000001"),
            ("DELETE", "/v2/identities/nobody"),
            ("GET", "/v2/identities"),
            ("PUT", "/v2/identities"),
            ("GET", "/nowhere"),
            ("GET", "/_emulator/stats"),
            ("POST", "/_emulator/reset-stats"),
        ] * 5

        async def request_id(method: str, target: str) -> str:
            async with http.request(method, raw_url(emulator, target)) as response:
                return response.headers["x-request-id"]

        ids = await asyncio.gather(*(request_id(m, t) for m, t in targets))
    assert len(set(ids)) == len(targets)


async def test_admin_routes_report_and_reset_the_stats_without_being_counted() -> None:
    async with serving(EmulatorConfig(seed_count=3)) as (emulator, http):
        for number in (1, 2, 2):
            async with http.delete(item_url(emulator, f"user-{number:06d}")):
                pass
        async with http.get(f"{emulator.base_url}/_emulator/stats") as response:
            assert response.status == 200
            reported = await _json(response)
        assert reported["requests"] == 3
        assert reported["status_counts"] == {"204": 2, "404": 1}
        assert reported["deletes_by_id"] == {"user-000001": 1, "user-000002": 2}
        assert reported["deleted_ids"] == ["user-000001", "user-000002"]
        assert reported["identities"] == 1
        assert reported == {**emulator.stats.as_dict(), "identities": 1}

        async with http.get(f"{emulator.base_url}/_emulator/reset-stats") as response:
            assert response.status == 405
        async with http.post(f"{emulator.base_url}/_emulator/reset-stats") as response:
            assert response.status == 204
        assert emulator.stats.as_dict()["requests"] == 0
        assert emulator.stats.deletes_by_id == {}
        assert emulator.stats.max_in_window == 0


async def test_add_identities_returns_time_ordered_ulids_and_refuses_duplicates() -> None:
    async with serving() as (emulator, _):
        ids = emulator.add_identities(f"bulk-{n}" for n in range(500))
        assert all(ULID_PATTERN.match(identity_id) for identity_id in ids)
        assert ids == sorted(ids)
        assert len(set(ids)) == 500
        assert emulator.identity_count() == 500
        with pytest.raises(ValueError, match="bulk-7"):
            emulator.add_identities(["fresh", "bulk-7"])
        with pytest.raises(ValueError, match="twice"):
            emulator.add_identities(["same", "same"])
        with pytest.raises(ValueError, match="not valid Unicode"):
            emulator.add_identities(["\ud800"])
        assert not emulator.exists("fresh")
        assert emulator.identity_count() == 500


async def test_seeds_with_given_ids_keep_them() -> None:
    config = EmulatorConfig(seed_identities=[("custom-id-1", "ext-1")], seed_count=1)
    async with serving(config) as (emulator, http):
        async with http.get(item_url(emulator, "custom-id-1")) as response:
            assert (await _json(response))["identity"]["external_id"] == "ext-1"
        assert emulator.exists("user-000001")


def test_the_schema_check_itself_fails_on_a_wrong_body() -> None:
    with pytest.raises(SchemaViolation):
        validate_response("RetrieveIdentityResponse", {"identity": {"_id": "x"}})
    with pytest.raises(SchemaViolation):
        validate_response("ListIdentitiesResponse", {"object": "list", "data": {}})
    with pytest.raises(AssertionError):
        validate_response(
            "CreateIdentityResponse",
            {
                "identity": {
                    "_id": "x",
                    "external_id": "y",
                    "workspace_id": "w",
                    "created": "c",
                    "updated": "u",
                    "undeclared": 1,
                }
            },
        )

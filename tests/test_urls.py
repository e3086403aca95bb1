"""Every ID travels as exactly one percent-encoded path segment, under any base URL."""

from __future__ import annotations

import pytest

from bulkdelete.client import identity_url


@pytest.mark.parametrize(
    ("identity_id", "segment"),
    [
        ("a/b", "a%2Fb"),
        ("a?x=1", "a%3Fx%3D1"),
        ("a#f", "a%23f"),
        ("%2F", "%252F"),
        ("50%", "50%25"),
        ("ünï", "%C3%BCn%C3%AF"),
        ("with space", "with%20space"),
        ("../projects", "..%2Fprojects"),
        ("user-000001", "user-000001"),
        ("01ARZ3NDEKTSV4RRFFQ69G5FAV", "01ARZ3NDEKTSV4RRFFQ69G5FAV"),
    ],
)
@pytest.mark.parametrize("base", ["https://api.orq.ai", "https://gateway.example/orq"])
def test_one_encoded_segment(base: str, identity_id: str, segment: str) -> None:
    url = identity_url(base, identity_id)
    prefix = base.removeprefix("https://").partition("/")[2]
    expected = f"/{prefix}/v2/identities/{segment}" if prefix else f"/v2/identities/{segment}"
    assert url.raw_path == expected
    assert str(url) == base + f"/v2/identities/{segment}"
    assert url.query_string == ""
    assert url.fragment == ""

"""The emulator's identities: ULIDs, the identity record, and the in-memory store."""

from __future__ import annotations

import re
import secrets
import time
from bisect import bisect_left, bisect_right
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

WORKSPACE_ID = "01EMULATEDWORKSPACE0000000"
"""The ``workspace_id`` every emulated identity belongs to."""

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_CROCKFORD_VALUE = {char: value for value, char in enumerate(_CROCKFORD)}
_RANDOM_BITS = 80
ULID_PATTERN = re.compile(r"^[0-7][0-9A-HJKMNP-TV-Z]{25}$")
"""What a ULID looks like: 26 characters of Crockford base32, at most 128 bits."""


def _encode_ulid(value: int) -> str:
    chars = [""] * 26
    for position in range(25, -1, -1):
        chars[position] = _CROCKFORD[value & 31]
        value >>= 5
    return "".join(chars)


def ulid_timestamp_ms(ulid: str) -> int:
    """The creation time of a ULID in milliseconds since the Unix epoch."""
    value = 0
    for char in ulid[:10]:
        value = value * 32 + _CROCKFORD_VALUE[char]
    return value


class UlidFactory:
    """Makes ULIDs that sort in the order they were made, even within one millisecond.

    Within a millisecond (or when the clock steps back) the random part of the previous ULID is
    incremented, as the ULID spec's monotonic mode does, so that sorting by ``_id`` is sorting
    by creation.
    """

    __slots__ = ("_last_ms", "_last_random")

    def __init__(self) -> None:
        self._last_ms = -1
        self._last_random = 0

    def __call__(self) -> str:
        now_ms = time.time_ns() // 1_000_000
        if now_ms > self._last_ms:
            self._last_ms, self._last_random = now_ms, secrets.randbits(_RANDOM_BITS)
        else:
            self._last_random += 1
            if self._last_random >> _RANDOM_BITS:
                self._last_ms, self._last_random = self._last_ms + 1, 0
        return _encode_ulid((self._last_ms << _RANDOM_BITS) | self._last_random)


def _iso_from_ms(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")[:-6] + "Z"


def _now_iso() -> str:
    return _iso_from_ms(time.time_ns() // 1_000_000)


PROFILE_FIELDS: Mapping[str, type] = {
    "display_name": str,
    "email": str,
    "avatar_url": str,
    "tags": list,
    "metadata": dict,
}
"""The identity fields a client may set on create and update, with their JSON types."""


@dataclass(slots=True)
class Identity:
    """One identity as the API shows it."""

    id: str
    external_id: str
    created: str
    updated: str
    profile: dict[str, object] = field(default_factory=dict)

    def to_json(self) -> dict[str, object]:
        """The identity as the API's ``Identity`` schema shows it."""
        return {
            "_id": self.id,
            "external_id": self.external_id,
            "workspace_id": WORKSPACE_ID,
            **self.profile,
            "created": self.created,
            "updated": self.updated,
        }


class DuplicateIdentityError(ValueError):
    """An identity with this ``external_id`` (or ``_id``) exists already."""


class IdentityStore:
    """Identities, found by ``_id`` or by ``external_id`` with one dict lookup each.

    Listing walks the ``_id``s in sorted order (ULIDs sort by creation). Deleting only drops the
    dict entries; the sorted list keeps the dead ``_id`` until dead entries outnumber live ones,
    so a delete costs O(1) and the list is rebuilt at most once per as many deletes as it holds.
    """

    __slots__ = ("_by_external_id", "_by_id", "_dead", "_new_ulid", "_order")

    def __init__(self) -> None:
        self._by_id: dict[str, Identity] = {}
        self._by_external_id: dict[str, Identity] = {}
        self._order: list[str] = []
        self._dead = 0
        self._new_ulid = UlidFactory()

    def __len__(self) -> int:
        return len(self._by_id)

    def add(
        self,
        external_id: str,
        *,
        identity_id: str | None = None,
        profile: Mapping[str, object] | None = None,
    ) -> Identity:
        """Create an identity; a fresh ULID becomes its ``_id`` unless ``identity_id`` is given.

        Raises :class:`DuplicateIdentityError` when the ``external_id`` or ``_id`` is taken.
        """
        if external_id in self._by_external_id:
            raise DuplicateIdentityError(
                f"an identity with external_id {external_id!r} already exists"
            )
        if identity_id is None:
            identity_id = self._new_ulid()
            created = _iso_from_ms(ulid_timestamp_ms(identity_id))
        elif identity_id in self._by_id:
            raise DuplicateIdentityError(f"an identity with _id {identity_id!r} already exists")
        else:
            created = _now_iso()
        identity = Identity(identity_id, external_id, created, created, dict(profile or {}))
        self._by_id[identity_id] = identity
        self._by_external_id[external_id] = identity
        self._remember_order(identity_id)
        return identity

    def _remember_order(self, identity_id: str) -> None:
        order = self._order
        if not order or identity_id > order[-1]:
            order.append(identity_id)
            return
        position = bisect_left(order, identity_id)
        if position < len(order) and order[position] == identity_id:
            self._dead -= 1  # the _id of a deleted identity, now back
        else:
            order.insert(position, identity_id)

    def get(self, key: str) -> Identity | None:
        """The identity whose ``_id``, or else whose ``external_id``, is ``key``."""
        identity = self._by_id.get(key)
        if identity is None:
            identity = self._by_external_id.get(key)
        return identity

    def delete(self, key: str) -> Identity | None:
        """Remove the identity ``key`` names (as :meth:`get` finds it); ``None`` if none does."""
        identity = self._by_id.pop(key, None)
        if identity is None:
            identity = self._by_external_id.pop(key, None)
            if identity is None:
                return None
            del self._by_id[identity.id]
        else:
            del self._by_external_id[identity.external_id]
        self._dead += 1
        if self._dead > 1024 and self._dead * 2 > len(self._order):
            by_id = self._by_id
            self._order = [identity_id for identity_id in self._order if identity_id in by_id]
            self._dead = 0
        return identity

    def has_external_id(self, external_id: str) -> bool:
        """Whether a live identity has this ``external_id``."""
        return external_id in self._by_external_id

    def update(self, identity: Identity, profile: Mapping[str, object]) -> None:
        """Set the given profile fields (``None`` removes one) and stamp ``updated``."""
        for name, value in profile.items():
            if value is None:
                identity.profile.pop(name, None)
            else:
                identity.profile[name] = value
        identity.updated = _now_iso()

    def page(
        self,
        limit: int,
        *,
        starting_after: str | None = None,
        ending_before: str | None = None,
    ) -> tuple[list[Identity], bool]:
        """Up to ``limit`` identities in ``_id`` order after (or before) a cursor, and whether
        more lie beyond them in that direction.

        A cursor is an ``_id``; the ``external_id`` of a live identity is accepted too, and an
        unknown cursor still marks a place in the order.
        """
        order, by_id = self._order, self._by_id
        found: list[Identity] = []
        if ending_before is None:
            position = (
                0 if starting_after is None else bisect_right(order, self._cursor(starting_after))
            )
            while position < len(order) and len(found) <= limit:
                identity = by_id.get(order[position])
                if identity is not None:
                    found.append(identity)
                position += 1
            return found[:limit], len(found) > limit
        position = bisect_left(order, self._cursor(ending_before)) - 1
        while position >= 0 and len(found) <= limit:
            identity = by_id.get(order[position])
            if identity is not None:
                found.append(identity)
            position -= 1
        return found[:limit][::-1], len(found) > limit

    def _cursor(self, cursor: str) -> str:
        if cursor in self._by_id:
            return cursor
        identity = self._by_external_id.get(cursor)
        return cursor if identity is None else identity.id

    def identities(self) -> list[Identity]:
        """Every identity, in ``_id`` order."""
        return [self._by_id[i] for i in self._order if i in self._by_id]

"""Helpers for the emulator's tests: raw URLs, a client, and the spec's response schemas."""

from __future__ import annotations

import functools
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import jsonschema  # type: ignore[import-untyped]  # jsonschema ships no type information
import referencing
import referencing.jsonschema
import yaml
import yarl

from bulkdelete.emulator import Emulator, EmulatorConfig, running_emulator

SPEC_PATH = Path(__file__).parent / "data" / "orq-identities-openapi.yaml"
_SPEC_URI = "urn:orq-identities-openapi"

SchemaViolation: type[Exception] = jsonschema.ValidationError
"""What :func:`validate_response` raises for a body the spec's schema refuses."""

HOSTILE_IDS = ("a/b", "a?x=1", "a#f", "%2F", "50%", "ünï", "with space")
"""External IDs that break clients which do not put an ID into one encoded path segment."""


def raw_url(emulator: Emulator, raw_target: str) -> yarl.URL:
    """The emulator's URL for a request target sent exactly as written (no re-encoding)."""
    return yarl.URL(emulator.base_url + raw_target, encoded=True)


def item_url(emulator: Emulator, identity_id: str) -> yarl.URL:
    """The URL of one identity, its ID percent-encoded once as one path segment."""
    return raw_url(emulator, "/v2/identities/" + quote(identity_id, safe=""))


@asynccontextmanager
async def serving(
    config: EmulatorConfig | None = None,
) -> AsyncIterator[tuple[Emulator, aiohttp.ClientSession]]:
    """An emulator with ``config`` and an aiohttp client session for it."""
    async with (
        running_emulator(config or EmulatorConfig()) as emulator,
        aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=10)) as session,
    ):
        yield emulator, session


@functools.cache
def _spec() -> dict[str, Any]:
    spec: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))
    return spec


@functools.cache
def _registry() -> referencing.Registry[Any]:
    resource = referencing.Resource.from_contents(
        _spec(), default_specification=referencing.jsonschema.DRAFT202012
    )
    registry: referencing.Registry[Any] = referencing.Registry().with_resource(_SPEC_URI, resource)
    return registry


def schema_properties(name: str) -> set[str]:
    """The property names the spec's schema ``name`` declares."""
    return set(_spec()["components"]["schemas"][name]["properties"])


def validate_response(schema_name: str, body: object) -> None:
    """Fail unless ``body`` is valid against the spec's ``components.schemas.<schema_name>``,
    and every identity in it carries only fields the spec's ``Identity`` declares."""
    validator = jsonschema.Draft202012Validator(
        {"$ref": f"{_SPEC_URI}#/components/schemas/{schema_name}"}, registry=_registry()
    )
    validator.validate(body)
    identities: list[object] = []
    if isinstance(body, Mapping):
        if "identity" in body:
            identities.append(body["identity"])
        if isinstance(body.get("data"), list):
            identities.extend(body["data"])
    declared = schema_properties("Identity")
    for identity in identities:
        assert isinstance(identity, Mapping)
        assert set(identity) <= declared, set(identity) - declared

"""The emulated Identities API: one request handler that routes on the raw request target.

aiohttp's router matches the *decoded* path, where ``/v2/identities/a%2Fb`` would look like two
segments, so this handler splits the raw target itself and percent-decodes the one ID segment
exactly once. Every answer carries an ``x-request-id``; every /v2 answer carries the rate-limit
headers while a limit is set.

Order of checks for a /v2 request: the route (stray paths 404, wrong methods 405), an outage
(503), the API key (401), the rolling window (429), then the fault plan, then the handler.
Only requests that pass the window spend a slot of it. List filters other than the cursors
(``search``, ``filter_by.tags``, ``sort_by``, ``include_*``) are accepted and ignored.
"""

from __future__ import annotations

import asyncio
import enum
import itertools
import json
import math
import secrets
import time
from collections.abc import Iterable, Mapping
from urllib.parse import quote, unquote

from aiohttp import web

from bulkdelete.emulator.config import EmulatorConfig, FaultConfig
from bulkdelete.emulator.faults import Fault, FaultPlan
from bulkdelete.emulator.limits import RollingWindowLimit, WindowState
from bulkdelete.emulator.seeding import generated_external_ids
from bulkdelete.emulator.stats import EmulatorStats
from bulkdelete.emulator.store import (
    PROFILE_FIELDS,
    DuplicateIdentityError,
    IdentityStore,
)
from bulkdelete.errors import UsageError

COLLECTION_PATH = "/v2/identities"
ITEM_PREFIX = "/v2/identities/"
ADMIN_PREFIX = "/_emulator/"
DEFAULT_PAGE_SIZE = 10
MAX_PAGE_SIZE = 200

_IDENTITY_NOT_FOUND = b'{"error": "Identity not found"}'
_EMPTY_OBJECT = b"{}"
_JSON = "application/json"


class _Route(enum.Enum):
    COLLECTION = "collection"
    ITEM = "item"


_METHODS = {_Route.COLLECTION: ("GET", "POST"), _Route.ITEM: ("GET", "PATCH", "DELETE")}
_EXPECTED: dict[type, str] = {str: "a string", list: "a list of strings", dict: "a JSON object"}


def _json(status: int, payload: object, headers: dict[str, str]) -> web.Response:
    body = json.dumps(payload, ensure_ascii=False).encode()
    return web.Response(status=status, body=body, content_type=_JSON, headers=headers)


def _message(status: int, message: str, headers: dict[str, str]) -> web.Response:
    return _json(status, {"message": message}, headers)


class EmulatedApi:
    """One emulator's state (identities, limits, faults, stats) and its request handler."""

    __slots__ = (
        "_authorization",
        "_request_numbers",
        "_request_prefix",
        "_stats_window",
        "delete_status",
        "faults",
        "limit",
        "outage_until",
        "stats",
        "store",
    )

    def __init__(self, config: EmulatorConfig) -> None:
        self.store = IdentityStore()
        try:
            for identity_id, external_id in config.seed_identities:
                self.store.add(external_id, identity_id=identity_id)
            for external_id in itertools.chain(
                config.seed_external_ids, generated_external_ids(config.seed_count)
            ):
                self.store.add(external_id)
        except DuplicateIdentityError as exc:
            raise UsageError(f"cannot seed the emulator: {exc}") from None
        self._stats_window = config.stats_window
        self.stats = EmulatorStats(config.stats_window)
        self.limit: RollingWindowLimit | None = None
        self.set_rate_limit(config.rate_limit, config.rate_period)
        self._authorization: str | None = None
        self.set_api_key(config.api_key)
        self.delete_status = config.delete_status
        self.faults = FaultPlan(config.faults)
        self.outage_until = 0.0
        self._request_prefix = f"req_{secrets.token_hex(4)}_"
        self._request_numbers = itertools.count(1)

    # -- controls ---------------------------------------------------------------------------

    def set_api_key(self, key: str | None) -> None:
        """Require ``Authorization: Bearer <key>`` from now on; ``None`` accepts any request."""
        if key is not None and not key.strip():
            raise UsageError("api key must not be empty: pass None to accept any request")
        self._authorization = None if key is None else f"Bearer {key}"

    def set_rate_limit(self, limit: int | None, period: float = 60.0) -> None:
        """Admit at most ``limit`` requests in any ``period`` seconds; ``None`` lifts the limit.

        Requests admitted so far stay in the window, as they would on the real API.
        """
        if limit is None:
            self.limit = None
            window = self._stats_window
        else:
            if limit < 1 or not (math.isfinite(period) and period > 0):
                raise UsageError(f"invalid rate limit {limit}/{period}s: both must be above zero")
            if self.limit is None:
                self.limit = RollingWindowLimit(limit, period)
            else:
                self.limit.limit, self.limit.period = limit, period
            window = period
        if self.stats.window != window:
            self.stats.set_window(window)

    def set_faults(self, faults: FaultConfig) -> None:
        """Play ``faults`` from now on, drawing afresh from its seed."""
        self.faults = FaultPlan(faults)

    def start_outage(self, seconds: float) -> None:
        """Answer every /v2 request 503 for the next ``seconds`` (0 ends an outage)."""
        if not (math.isfinite(seconds) and seconds >= 0):
            raise UsageError(f"an outage lasts zero seconds or more, not {seconds}")
        self.outage_until = time.monotonic() + seconds

    def add_identities(self, external_ids: Iterable[str]) -> list[str]:
        """Create identities with these ``external_id``s, all or none; return their ``_id``s."""
        wanted = list(external_ids)
        seen: set[str] = set()
        for external_id in wanted:
            if not external_id or not _is_unicode(external_id):
                raise ValueError(f"external_id {external_id!r} is empty or not valid Unicode")
            if external_id in seen or self.store.has_external_id(external_id):
                raise DuplicateIdentityError(
                    f"an identity with external_id {external_id!r} exists already or comes twice"
                )
            seen.add(external_id)
        return [self.store.add(external_id).id for external_id in wanted]

    # -- the request handler -----------------------------------------------------------------

    async def handle(self, request: web.BaseRequest) -> web.StreamResponse:
        """Answer one request (aiohttp's low-level handler)."""
        headers = {"x-request-id": f"{self._request_prefix}{next(self._request_numbers)}"}
        target = request.raw_path
        path = target.partition("?")[0].partition("#")[0]
        if path.startswith(ADMIN_PREFIX):
            admin_response = self._admin(request, path, headers)
            if admin_response is not None:
                return admin_response
        stats = self.stats
        stats.requests += 1
        method = request.method
        if method == "DELETE":
            stats.delete_paths.append(target)
        if path.startswith("/v2/") or path == "/v2":
            response = await self._v2(request, method, path, headers)
        else:
            stats.stray += 1
            response = _message(404, f"no route for {method} {path}", headers)
        if response is None:
            stats.dropped += 1
            # The transport is closed: aiohttp's attempt to write this fails and is ignored.
            return web.Response(status=500)
        stats.status_counts[response.status] += 1
        return response

    async def _v2(
        self, request: web.BaseRequest, method: str, path: str, headers: dict[str, str]
    ) -> web.Response | None:
        now = time.monotonic()
        self.stats.note_arrival(now)
        fault, delay = self.faults.draw() if self.faults.active else (Fault.NONE, 0.0)
        resolved = self._resolve(method, path, headers)
        window: WindowState | None = None
        if isinstance(resolved, web.Response):
            response: web.Response | None = resolved
        else:
            response, window = self._refuse(request, now, headers)
            if response is None:
                route, key = resolved
                response = await self._play(fault, request, method, route, key, headers)
                if fault is Fault.SLOW:
                    delay += self.faults.config.slow_delay
        if response is not None and self.limit is not None:
            state = window or self.limit.peek(now)
            response.headers["X-RateLimit-Limit"] = str(state.limit)
            response.headers["X-RateLimit-Remaining"] = str(state.remaining)
            response.headers["X-RateLimit-Reset"] = f"{state.reset:.3f}"
        if delay:
            await asyncio.sleep(delay)
        if response is None and request.transport is not None:
            request.transport.close()
        return response

    async def _play(
        self,
        fault: Fault,
        request: web.BaseRequest,
        method: str,
        route: _Route,
        key: str,
        headers: dict[str, str],
    ) -> web.Response | None:
        """Answer an admitted request, as the fault drawn for it allows (``None``: drop it)."""
        if method == "DELETE":
            self.stats.deletes_by_id[key] += 1
        if fault is Fault.NONE:
            return await self._answer(request, method, route, key, headers)
        self.stats.faults[fault.value] += 1
        if fault is Fault.SERVER_ERROR:
            return _message(500, "Internal server error", headers)
        if fault is Fault.UNAVAILABLE:
            return _message(503, "Service unavailable, try again later", headers)
        if fault is Fault.DROP_BEFORE:
            return None
        response = await self._answer(request, method, route, key, headers)
        return None if fault is Fault.DROP_AFTER else response

    def _resolve(
        self, method: str, path: str, headers: dict[str, str]
    ) -> tuple[_Route, str] | web.Response:
        """The route and decoded ID a /v2 path names, or the answer when it names none."""
        if path == COLLECTION_PATH:
            route, key = _Route.COLLECTION, ""
        elif path.startswith(ITEM_PREFIX):
            segment = path[len(ITEM_PREFIX) :]
            if not segment or "/" in segment or segment in (".", ".."):
                self.stats.stray += 1
                return _message(404, f"no route for {method} {path}", headers)
            try:
                key = unquote(segment, errors="strict")
            except UnicodeDecodeError:
                return _message(
                    400, "the identity ID in the path is not UTF-8 once percent-decoded", headers
                )
            route = _Route.ITEM
        else:
            self.stats.stray += 1
            return _message(404, f"no route for {method} {path}", headers)
        if method not in _METHODS[route]:
            headers["Allow"] = ", ".join(_METHODS[route])
            return _message(405, f"method {method} is not allowed here", headers)
        return route, key

    def _refuse(
        self, request: web.BaseRequest, now: float, headers: dict[str, str]
    ) -> tuple[web.Response | None, WindowState | None]:
        """Refuse the request for an outage, the key or the rolling window, or admit it.

        Returns the refusal (``None`` when admitted) and the window after the admission.
        """
        if now < self.outage_until:
            self.stats.faults["outage"] += 1
            return _message(503, "Service unavailable (emulated outage)", headers), None
        authorization = self._authorization
        if authorization is not None:
            sent = request.headers.get("Authorization")
            if sent != authorization:
                scheme, _, token = (sent or "").partition(" ")
                if scheme.lower() != "bearer" or f"Bearer {token.strip()}" != authorization:
                    headers["WWW-Authenticate"] = "Bearer"
                    reason = "Invalid API key" if sent else "Missing API key"
                    refusal = _message(401, f"{reason}: send Authorization: Bearer <key>", headers)
                    return refusal, None
        limit = self.limit
        if limit is None:
            return None, None
        state = limit.admit(now)
        if state.admitted:
            return None, state
        self.stats.rate_limited += 1
        retry_after = max(1, math.ceil(state.reset))
        headers["Retry-After"] = str(retry_after)
        refusal = _message(
            429,
            f"Rate limit exceeded: at most {limit.limit} requests in any "
            f"{limit.period:g} s; retry after {retry_after} s",
            headers,
        )
        return refusal, state

    async def _answer(
        self,
        request: web.BaseRequest,
        method: str,
        route: _Route,
        key: str,
        headers: dict[str, str],
    ) -> web.Response:
        store = self.store
        if route is _Route.ITEM:
            if method == "DELETE":
                if store.delete(key) is None:
                    return web.Response(
                        status=404, body=_IDENTITY_NOT_FOUND, content_type=_JSON, headers=headers
                    )
                self.stats.deleted_ids.add(key)
                if self.delete_status == 204:
                    return web.Response(status=204, headers=headers)
                return web.Response(
                    status=200, body=_EMPTY_OBJECT, content_type=_JSON, headers=headers
                )
            identity = store.get(key)
            if identity is None:
                return web.Response(
                    status=404, body=_IDENTITY_NOT_FOUND, content_type=_JSON, headers=headers
                )
            if method == "PATCH":
                body = await self._json_body(request, headers)
                if isinstance(body, web.Response):
                    return body
                profile = _profile(body, headers)
                if isinstance(profile, web.Response):
                    return profile
                store.update(identity, profile)
            return _json(200, {"identity": identity.to_json()}, headers)
        if method == "GET":
            return self._list(request, headers)
        return await self._create(request, headers)

    def _list(self, request: web.BaseRequest, headers: dict[str, str]) -> web.Response:
        query = request.query
        limit_text = query.get("limit")
        if limit_text is None:
            limit = DEFAULT_PAGE_SIZE
        elif limit_text.isascii() and limit_text.isdigit():
            limit = int(limit_text)
        else:
            limit = -1
        if not 1 <= limit <= MAX_PAGE_SIZE:
            return _message(400, f"limit must be a whole number from 1 to {MAX_PAGE_SIZE}", headers)
        starting_after = query.get("starting_after") or None
        ending_before = query.get("ending_before") or None
        if starting_after is not None and ending_before is not None:
            return _message(400, "give starting_after or ending_before, not both", headers)
        page, has_more = self.store.page(
            limit, starting_after=starting_after, ending_before=ending_before
        )
        payload = {
            "object": "list",
            "data": [identity.to_json() for identity in page],
            "has_more": has_more,
        }
        return _json(200, payload, headers)

    async def _create(self, request: web.BaseRequest, headers: dict[str, str]) -> web.Response:
        body = await self._json_body(request, headers)
        if isinstance(body, web.Response):
            return body
        external_id = body.get("external_id")
        if external_id is None:
            return _message(422, "external_id is required", headers)
        if not isinstance(external_id, str) or not external_id:
            return _message(422, "external_id must be a non-empty string", headers)
        profile = _profile(body, headers)
        if isinstance(profile, web.Response):
            return profile
        try:
            identity = self.store.add(
                external_id, profile={k: v for k, v in profile.items() if v is not None}
            )
        except DuplicateIdentityError:
            return _message(
                409, f"An identity with external_id {external_id!r} already exists", headers
            )
        headers["Location"] = ITEM_PREFIX + quote(identity.id, safe="")
        return _json(201, {"identity": identity.to_json()}, headers)

    @staticmethod
    async def _json_body(
        request: web.BaseRequest, headers: dict[str, str]
    ) -> dict[str, object] | web.Response:
        try:
            raw = await request.read()
        except web.HTTPRequestEntityTooLarge:
            return _message(413, "the request body is too large", headers)
        if not raw.strip():
            return _message(400, "the request body is empty: send a JSON object", headers)
        try:
            body = json.loads(raw)
        except (ValueError, RecursionError) as exc:
            return _message(400, f"the request body is not valid JSON: {exc}", headers)
        if not isinstance(body, dict):
            return _message(422, "the request body must be a JSON object", headers)
        try:
            # JSON escapes can spell lone surrogates, which no answer could ever encode.
            json.dumps(body, ensure_ascii=False).encode()
        except UnicodeEncodeError:
            return _message(
                400, "the request body holds a lone surrogate (\\ud800-\\udfff)", headers
            )
        return body

    # -- admin routes ------------------------------------------------------------------------

    def _admin(
        self, request: web.BaseRequest, path: str, headers: dict[str, str]
    ) -> web.Response | None:
        method = request.method
        if path == "/_emulator/stats":
            if method != "GET":
                headers["Allow"] = "GET"
                return _message(405, f"method {method} is not allowed here", headers)
            payload = self.stats.as_dict()
            payload["identities"] = len(self.store)
            return _json(200, payload, headers)
        if path not in ("/_emulator/reset-stats", "/_emulator/outage"):
            return None
        if method != "POST":
            headers["Allow"] = "POST"
            return _message(405, f"method {method} is not allowed here", headers)
        if path == "/_emulator/reset-stats":
            self.stats.reset()
            return web.Response(status=204, headers=headers)
        try:
            seconds = float(request.query.get("seconds", ""))
            self.start_outage(seconds)
        except (ValueError, UsageError):
            return _message(400, "give the outage length as ?seconds=N (0 ends it)", headers)
        return _json(200, {"outage_seconds": seconds}, headers)


def _is_unicode(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _profile(
    body: Mapping[str, object], headers: dict[str, str]
) -> dict[str, object] | web.Response:
    """The profile fields of a create or update body; ``None`` values mean "remove"."""
    profile: dict[str, object] = {}
    for name, kind in PROFILE_FIELDS.items():
        if name not in body:
            continue
        value = body[name]
        if kind is list:
            valid = isinstance(value, list) and all(isinstance(tag, str) for tag in value)
        else:
            valid = isinstance(value, kind)
        if not (valid or value is None):
            return _message(422, f"{name} must be {_EXPECTED[kind]}", headers)
        profile[name] = value
    return profile

"""Sending deletes: one ``DELETE /v2/identities/{id}`` with retries, turned into an outcome.

This is the one boundary where aiohttp's errors become the project's: a timeout or a dropped
connection is a retry and, in the end, a ``failed`` row; a 401 or 403 is an :class:`AuthError`
that stops the run.
"""

from __future__ import annotations

import email.utils
import json
import logging
import random
import re
import time
from datetime import UTC, datetime
from types import TracebackType
from urllib.parse import quote

import aiohttp
import anyio
from multidict import CIMultiDictProxy
from yarl import URL

from bulkdelete._version import __version__
from bulkdelete.errors import AuthError, RunStopped
from bulkdelete.outage import OutageBreaker
from bulkdelete.outcome import Outcome, Result, utc_now
from bulkdelete.pacing import Pacer
from bulkdelete.settings import Settings

log = logging.getLogger("bulkdelete")

USER_AGENT = f"bulkdelete/{__version__} aiohttp/{aiohttp.__version__}"
RETRYABLE_STATUSES = frozenset({408, 425, 429, 500, 502, 503, 504}) | frozenset(range(505, 600))
# However often the API says 429 or looks down, one ID is sent at most this often.
_MAX_SENDS = 100
_EPOCH_THRESHOLD = 1_000_000_000  # a reset header this large is a Unix time, not a delay


def identity_url(base_url: str, identity_id: str) -> URL:
    """The URL that deletes exactly ``identity_id``: the ID as one percent-encoded segment.

    ``quote(..., safe="")`` encodes ``/ ? # %`` and everything else outside the unreserved set,
    and ``encoded=True`` stops yarl from decoding or re-encoding it afterwards.
    """
    return IdentityUrls(base_url).url(identity_id)


_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]+")


class IdentityUrls:
    """Builds identity URLs under one base URL; the hot path's share of :func:`identity_url`."""

    __slots__ = ("_base", "_prefix")

    def __init__(self, base_url: str) -> None:
        self._base = URL(base_url)
        self._prefix = self._base.raw_path.rstrip("/") + "/v2/identities/"

    def url(self, identity_id: str) -> URL:
        # Most IDs are unreserved characters only: nothing to encode, so skip quote().
        segment = identity_id if _UNRESERVED.fullmatch(identity_id) else quote(identity_id, safe="")
        return self._base.with_path(self._prefix + segment, encoded=True)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delay-seconds or an HTTP date)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def parse_reset(value: str | None) -> float | None:
    """Seconds until the window frees a slot, from ``X-RateLimit-Reset`` (delay or Unix time)."""
    if not value:
        return None
    try:
        number = float(value)
    except ValueError:
        return None
    if number > _EPOCH_THRESHOLD:
        number -= time.time()
    return max(0.0, number)


def body_message(body: bytes, limit: int = 200) -> str:
    """The API's own words from an error body (``message`` or ``error``), else the raw text."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        for key in ("message", "error", "detail"):
            value = data.get(key)
            if isinstance(value, str) and value:
                text = value
                break
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(exc: BaseException) -> str:
    """A one-line description of a transport error, without the request's headers."""
    if isinstance(exc, aiohttp.ServerDisconnectedError):
        return "connection closed by the server before it answered"
    if isinstance(exc, aiohttp.ClientConnectorError):
        return f"cannot connect: {exc.os_error.strerror or exc.os_error}"
    name = type(exc).__name__
    detail = str(exc).strip()
    return f"{name}: {detail}" if detail else name


def new_session(settings: Settings) -> aiohttp.ClientSession:
    """The aiohttp session every request of a run goes through (call it in a running loop).

    Its connection pool holds ``settings.concurrency`` kept-alive connections.
    """
    connector = aiohttp.TCPConnector(
        limit=settings.concurrency, limit_per_host=settings.concurrency, ttl_dns_cache=300
    )
    session = aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=settings.timeout),
        headers={
            "Authorization": f"Bearer {settings.api_key}",
            "User-Agent": USER_AGENT,
            "Accept": "application/json",
        },
        cookie_jar=aiohttp.DummyCookieJar(),
        raise_for_status=False,
    )
    # aiohttp silently resends an idempotent request once when a kept-alive connection
    # drops. A DELETE that may already have worked must be counted as an attempt and its
    # doubt reported, so every resend is ours. (aiohttp's own test client does the same.)
    session._retry_connection = False
    return session


class DeleteClient:
    """Deletes one ID at a time, as many at once as the caller runs, at the pacer's pace.

    Use as an async context manager: it owns one aiohttp session whose connection pool is
    sized to ``settings.concurrency`` and kept alive between requests.
    """

    def __init__(self, settings: Settings, pacer: Pacer, *, rng: random.Random | None = None):
        self._settings = settings
        self._pacer = pacer
        self._rng = rng or random.Random()
        self._session: aiohttp.ClientSession | None = None
        self._timeout_text = f"timed out after {settings.timeout:g} s"
        self._breaker = OutageBreaker(settings.max_outage)
        self._urls = IdentityUrls(settings.base_url)

    async def __aenter__(self) -> DeleteClient:
        self._session = new_session(self._settings)
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._session is not None:
            with anyio.CancelScope(shield=True):
                await self._session.close()
            self._session = None

    def _redact(self, text: str) -> str:
        key = self._settings.api_key
        return text.replace(key, "[redacted]") if key and key in text else text

    async def delete(self, identity_id: str) -> Result:
        """Delete one identity; return its outcome.

        Raises only what stops the whole run: :class:`AuthError`, :class:`RunStopped`, and
        :class:`PacerClosed` when the run is stopping before this ID could be finished.
        """
        return await self._send("DELETE", identity_id)

    async def look_up(self, identity_id: str) -> Result:
        """Ask whether an identity exists (``GET``), paced and retried like a delete.

        The outcome is ``deleted`` when it exists (a delete would remove it) and ``not_found``
        when it is already gone. Nothing is changed.
        """
        return await self._send("GET", identity_id)

    async def _send(self, method: str, identity_id: str) -> Result:
        session = self._session
        if session is None:
            raise RuntimeError("DeleteClient must be used as 'async with DeleteClient(...)'")
        settings = self._settings
        pacer = self._pacer
        breaker = self._breaker
        url = self._urls.url(identity_id)
        trouble = ""  # what went wrong on an earlier attempt: that attempt may have deleted it
        status: int | None = None
        request_id = ""
        sends = 0  # requests sent for this ID: the report's attempts
        counted = 0  # those that count against --max-attempts (not 429s, not in an outage)
        while True:
            probe = breaker.is_open and await breaker.admit(pacer)
            sent = await pacer.acquire()
            sends += 1
            down = True
            try:
                try:
                    async with session.request(method, url, allow_redirects=False) as response:
                        status = response.status
                        body = await response.read()
                        headers = response.headers
                finally:
                    pacer.answered(sent)
            except TimeoutError:
                status, error = None, self._timeout_text
            except aiohttp.ClientError as exc:
                status, error = None, self._redact(describe(exc))
            else:
                request_id = headers.get("x-request-id", "")
                down = status >= 500
                breaker.record(down, probe=probe)
                if status == 200 or status == 204 or status == 404:
                    pacer.succeeded()
                    self._watch_limits(headers, sent)
                    if status != 404:
                        return Result(
                            identity_id, Outcome.DELETED, status, sends, "", request_id, utc_now()
                        )
                    note = f"earlier attempt: {trouble}; it may have deleted the identity"
                    return Result(
                        identity_id,
                        Outcome.NOT_FOUND,
                        status,
                        sends,
                        note if trouble else "",
                        request_id,
                        utc_now(),
                    )
                message = self._redact(body_message(body))
                if status in (401, 403):
                    raise AuthError(
                        f"the API refused the key (HTTP {status}: {message or 'no message'}); "
                        "check ORQ_API_KEY or --api-key-file. Nothing more was sent"
                    )
                error = f"HTTP {status}: {message}" if message else f"HTTP {status}"
                if status not in RETRYABLE_STATUSES:
                    return Result(
                        identity_id, Outcome.FAILED, status, sends, error, request_id, utc_now()
                    )
                if status == 429:
                    pacer.rejected(sent)
                reset = self._watch_limits(headers, sent)
                if self._obey_retry_after(status, headers, counted + 1, reset):
                    trouble = error
                    if status != 429:
                        counted += 1
                    if counted < settings.max_attempts and sends < _MAX_SENDS:
                        continue  # the pacer holds every worker until the API is ready
            if status is None:
                breaker.record(down, probe=probe)
            trouble = error
            if status != 429 and not (down and breaker.is_open):
                counted += 1  # a 429 or an outage is the API's trouble, not this ID's
            if counted >= settings.max_attempts or sends >= _MAX_SENDS:
                return Result(
                    identity_id, Outcome.FAILED, status, sends, trouble, request_id, utc_now()
                )
            log.debug("retrying %r after attempt %d: %s", identity_id, sends, error)
            if not breaker.is_open:
                await pacer.sleep(self._backoff(counted))

    def _backoff(self, attempt: int) -> float:
        """Exponential backoff with full jitter."""
        settings = self._settings
        ceiling = min(settings.backoff_cap, settings.backoff_base * 2 ** (attempt - 1))
        return self._rng.uniform(0, ceiling)

    def _obey_retry_after(
        self, status: int, headers: CIMultiDictProxy[str], attempt: int, reset: float | None
    ) -> bool:
        """Pause every worker after a 429 (or a 503 that says when to come back).

        Returns True when the pause stands in for this worker's own backoff. When the API also
        sent its rate-limit headers, the pace already follows them (see ``_watch_limits``):
        the pause lasts until the window frees (``Retry-After`` is whole seconds, the reset
        more exact) and the pace is not halved.
        """
        delay = parse_retry_after(headers.get("Retry-After"))
        if status != 429 and delay is None:
            return False
        if status == 429 and reset is not None:
            delay = reset if delay is None else min(delay, reset)
        if delay is None:
            delay = self._backoff(attempt) + 1.0
        if delay > self._settings.max_retry_after:
            raise RunStopped(
                f"the API asked to wait {delay:.0f} s (HTTP {status}, Retry-After), more than "
                f"--max-retry-after {self._settings.max_retry_after:g} s; stopped. "
                "Resume later with --resume"
            )
        pacer = self._pacer
        was_paused = pacer.paused_for() > 0
        pacer.pause_until(time.monotonic() + delay)
        if not was_paused:
            # With rate-limit headers the learned window sets the pace; until it is learned
            # (or without the headers), a 429 halves it.
            slowed = status == 429 and (reset is None or not pacer.learned) and pacer.slow_down()
            # A pause until the window frees a slot is routine; only a long one is news.
            log.log(
                logging.WARNING if delay >= 1 else logging.DEBUG,
                "HTTP %d: pausing every worker for %.2f s%s",
                status,
                delay,
                f", then going on at {pacer.per_second:.3g}/s" if slowed else "",
                extra={"event": {"event": "pause", "status": status, "seconds": delay}},
            )
        return True

    def _watch_limits(self, headers: CIMultiDictProxy[str], sent: int) -> float | None:
        """Learn from the rate-limit headers; hold the pace when the window is full.

        Returns the seconds until the window frees a slot, when the headers tell it.
        """
        limit = headers.get("X-RateLimit-Limit")
        if limit is None:
            return None
        reset = parse_reset(headers.get("X-RateLimit-Reset"))
        try:
            remaining = int(headers.get("X-RateLimit-Remaining", ""))
            if reset is not None:
                self._pacer.learn(sent, int(limit), remaining, reset)
        except ValueError:
            return reset
        if remaining <= 0 and reset:
            wait = min(reset, self._settings.max_retry_after)
            self._pacer.hold_until(time.monotonic() + wait)
        return reset

"""The settings of one purge, checked as a whole before any I/O."""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field, replace

from yarl import URL

from bulkdelete.errors import UsageError
from bulkdelete.pacing import Rate

DEFAULT_BASE_URL = "https://api.orq.ai"
DEFAULT_RATE = Rate(20, 60.0)


def is_loopback(host: str | None) -> bool:
    """True for ``localhost`` and addresses in 127.0.0.0/8 or ``::1``."""
    if not host:
        return False
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_base_url(text: str) -> str:
    """Return the API root without a trailing slash, or raise UsageError saying what is wrong."""
    try:
        url = URL(text)
    except (ValueError, TypeError) as exc:
        raise UsageError(f"--base-url {text!r} is not a URL: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise UsageError(f"--base-url {text!r} must be an http(s) URL such as https://api.orq.ai")
    if url.scheme == "http" and not is_loopback(url.host):
        raise UsageError(
            f"--base-url {text!r} uses plain http: the API key would travel unencrypted. "
            "Use https (plain http is allowed only for loopback addresses)"
        )
    if url.query_string or url.fragment or url.user or url.password:
        raise UsageError(f"--base-url {text!r} must not carry credentials, a query or a fragment")
    return str(url).rstrip("/")


@dataclass(frozen=True, slots=True)
class Settings:
    """How to purge: where, with which key, how fast, how patiently.

    ``api_key`` never appears in ``repr`` or in any message.
    """

    api_key: str = field(repr=False)
    base_url: str = DEFAULT_BASE_URL
    rate: Rate = DEFAULT_RATE
    concurrency: int = 4
    timeout: float = 30.0
    max_attempts: int = 5
    max_retry_after: float = 300.0
    max_outage: float = 300.0
    backoff_base: float = 0.5
    backoff_cap: float = 30.0
    dry_run: bool = False
    check: bool = False  # with dry_run: look each ID up (GET) to tell what would be deleted

    def checked(self) -> Settings:
        """Check every field; return the settings with the base URL normalised."""
        if (not self.dry_run and not self.api_key) or (self.check and not self.api_key):
            raise UsageError("no API key: set ORQ_API_KEY or pass --api-key-file PATH")
        if any(ch.isspace() for ch in self.api_key):
            raise UsageError("the API key contains whitespace; check ORQ_API_KEY or the key file")
        if self.concurrency < 1:
            raise UsageError("--concurrency must be at least 1")
        if self.timeout <= 0:
            raise UsageError("--timeout must be a positive number of seconds")
        if self.max_attempts < 1:
            raise UsageError("--max-attempts must be at least 1")
        if self.max_retry_after <= 0:
            raise UsageError("--max-retry-after must be a positive number of seconds")
        if self.max_outage <= 0:
            raise UsageError("--max-outage must be a positive number of seconds")
        if self.backoff_base < 0 or self.backoff_cap < 0:
            raise UsageError("backoff times must not be negative")
        base_url = check_base_url(self.base_url)
        return replace(self, base_url=base_url)

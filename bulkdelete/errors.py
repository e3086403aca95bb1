"""The project's exceptions, in one tree.

    BulkDeleteError                 anything bulkdelete raises on purpose
    ├── UsageError                  bad options or settings, found before any request (exit 2)
    │   └── InputError              the input cannot be read: missing, not UTF-8, unknown column
    └── RunStopped                  the run was stopped on purpose (exit 3)
        ├── AuthError               the API refused the key (401/403)
        ├── SafetyLimitError        a safety limit tripped before or during the run
        └── OutageError             the API stayed down longer than allowed

A single ID that fails is *not* an exception: it is a row with outcome ``failed``.
Foreign errors (aiohttp, OSError, JSON) are translated into these at one boundary each.
"""

from __future__ import annotations


class BulkDeleteError(Exception):
    """Base of every error bulkdelete raises on purpose."""

    exit_code = 1


class UsageError(BulkDeleteError):
    """An option or setting is wrong; nothing was sent."""

    exit_code = 2


class InputError(UsageError):
    """The input cannot be read as IDs; nothing was sent."""


class RunStopped(BulkDeleteError):
    """The run stopped on purpose before every ID was done."""

    exit_code = 3


class AuthError(RunStopped):
    """The API refused the key (401 or 403): every further request would fail too."""


class SafetyLimitError(RunStopped):
    """A safety limit (such as ``--max-deletes``) refused the run."""


class OutageError(RunStopped):
    """The API looked down for longer than the run was allowed to wait."""

"""bulkdelete: delete large numbers of orq.ai identities safely, at the pace the API allows.

The whole job is one coroutine::

    import anyio
    from bulkdelete import FileReport, Rate, Settings, purge

    async def main() -> None:
        settings = Settings(api_key="...", rate=Rate.parse("100/min"))
        report = FileReport("erasure-report.csv")
        try:
            summary = await purge(["user-1", "user-2"], settings, report)
        finally:
            report.close()
        print(summary.deleted, summary.not_found, summary.failed)

    anyio.run(main)
"""

from bulkdelete._version import __version__
from bulkdelete.errors import (
    AuthError,
    BulkDeleteError,
    InputError,
    OutageError,
    RunStopped,
    SafetyLimitError,
    UsageError,
)
from bulkdelete.outcome import Outcome, Result
from bulkdelete.pacing import Rate
from bulkdelete.pipeline import purge
from bulkdelete.report import FileReport, MemoryReport, Summary, read_report
from bulkdelete.settings import Settings

__all__ = [
    "AuthError",
    "BulkDeleteError",
    "FileReport",
    "InputError",
    "MemoryReport",
    "OutageError",
    "Outcome",
    "Rate",
    "Result",
    "RunStopped",
    "SafetyLimitError",
    "Settings",
    "Summary",
    "UsageError",
    "__version__",
    "purge",
    "read_report",
]

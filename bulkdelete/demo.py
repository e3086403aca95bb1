"""``bulkdelete demo``: a whole purge against the bundled emulator, to see how a run looks."""

from __future__ import annotations

import tempfile
from pathlib import Path

import anyio
from rich.console import Console

from bulkdelete.display import LiveDisplay, outcome_counts, setup_logging
from bulkdelete.emulator import EmulatorConfig, FaultConfig, running_emulator
from bulkdelete.errors import UsageError
from bulkdelete.pacing import Rate
from bulkdelete.pipeline import Run, loop_options, plan, run_job
from bulkdelete.reader import IdFilter, open_input
from bulkdelete.report import FileReport, Summary, summary_path
from bulkdelete.settings import Settings

DEMO_KEY = "demo-key"
DEMO_SEEDED = 2400  # samples/purge.csv names user-000001 … user-002400 as existing
DEMO_RATE = Rate(200, 1.0)


def sample_path() -> Path:
    """``samples/purge.csv`` of the working tree, or of the source checkout."""
    for base in (Path.cwd(), Path(__file__).resolve().parent.parent):
        candidate = base / "samples" / "purge.csv"
        if candidate.is_file():
            return candidate
    raise UsageError("cannot find samples/purge.csv: run the demo from the project's folder")


def run_demo(console: Console) -> int:
    """Run the demo; return 0 when no ID failed."""
    setup_logging(console, verbose=False)
    return anyio.run(_demo, console, backend="asyncio", backend_options=loop_options())


async def _demo(console: Console) -> int:
    purge_list = sample_path()
    report_path = Path(tempfile.mkdtemp(prefix="bulkdelete-demo-")) / "report.csv"
    config = EmulatorConfig(
        api_key=DEMO_KEY,
        seed_count=DEMO_SEEDED,
        rate_limit=DEMO_RATE.count,
        rate_period=DEMO_RATE.period,
        faults=FaultConfig(seed=7, error_rate=0.01, latency=0.02, latency_jitter=0.01),
    )
    async with running_emulator(config) as emulator:
        console.print(
            f"[bold]bulkdelete demo[/]: an emulated orq.ai API at {emulator.base_url} holds "
            f"{emulator.identity_count():,} identities, with a rolling limit of "
            f"{DEMO_RATE} and 1% of answers a 5xx.\n"
            f"Purging {purge_list} (existing, missing, duplicate and invalid IDs) at "
            f"--rate {DEMO_RATE} --concurrency 8.\n"
        )
        settings = Settings(
            api_key=DEMO_KEY,
            base_url=emulator.base_url,
            rate=DEMO_RATE,
            concurrency=8,
            timeout=5.0,
            backoff_base=0.05,
            backoff_cap=1.0,
        )
        report = FileReport(report_path)
        source = open_input(str(purge_list))
        run = Run(summary=Summary(report=str(report_path)), id_filter=IdFilter())
        with open_input(str(purge_list)) as counting:
            run.total = plan(counting.records(), skip=()).counts.distinct
        try:
            with source, LiveDisplay(console) as display:
                async with anyio.create_task_group() as group:
                    group.start_soon(display.follow, run)
                    await run_job(source.records(), settings, report, run)
                    group.cancel_scope.cancel()
        finally:
            report.close()
            run.summary.input_sha256 = source.sha256
            run.summary.write(summary_path(report_path))
        stats = emulator.stats
        summary = run.summary
        console.print(
            f"\n{outcome_counts(summary)} · duplicates {summary.duplicates:,}\n"
            f"The emulator saw {stats.requests:,} requests, {stats.rate_limited} of them "
            f"answered 429, at most {stats.max_in_window} in any 1-second window, and "
            f"{emulator.identity_count():,} identities are left.\n"
            f"Report: {report_path}\nSummary: {summary_path(report_path)}"
        )
    # The sample list holds invalid IDs on purpose; the demo went well when none failed.
    return 1 if summary.failed else 0

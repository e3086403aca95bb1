"""The command line: parse options, build objects, call one coroutine, return an exit code.

The library owns the logic; this module only turns options into settings and errors into one
clear line and an exit code.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import sys
from collections.abc import Container, Sequence
from contextlib import ExitStack
from datetime import UTC, datetime
from pathlib import Path

import anyio
from rich.console import Console

from bulkdelete._version import __version__
from bulkdelete.confirm import ask, open_terminal, spool_stdin
from bulkdelete.display import (
    STATUS_EVERY,
    LiveDisplay,
    outcome_counts,
    plan_lines,
    setup_logging,
)
from bulkdelete.errors import BulkDeleteError, UsageError
from bulkdelete.outcome import utc_now
from bulkdelete.pacing import Rate
from bulkdelete.pipeline import Plan, Run, loop_options, plan, run_job
from bulkdelete.reader import FORMATS, IdFilter, InputSource, open_input
from bulkdelete.report import (
    COLUMNS,
    FileReport,
    PriorJob,
    Summary,
    failed_ids,
    load_prior_job,
    overview,
    report_format,
    summary_path,
)
from bulkdelete.settings import DEFAULT_BASE_URL, Settings

log = logging.getLogger("bulkdelete")

EXIT_OK, EXIT_SOME_FAILED, EXIT_USAGE, EXIT_STOPPED, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

RUN_EXAMPLES = """\
examples:
  # rehearse first: read and check everything, send nothing
  bulkdelete run erasure.csv --dry-run

  # the real purge, at the plan's quota, with a report an auditor can keep
  export ORQ_API_KEY=...            # or --api-key-file /run/secrets/orq
  bulkdelete run erasure.csv --rate 100/min --report erasure-report.csv --yes

  # interrupted? the same command with --resume continues where it stopped
  bulkdelete run erasure.csv --rate 100/min --report erasure-report.csv --resume --yes

  # IDs from another program
  cat stale_ids.txt | bulkdelete run - --yes

exit codes: 0 all deleted or already gone, 1 some failed or invalid, 2 usage or input error
(nothing sent), 3 stopped (key refused, safety limit), 130 interrupted (--resume continues)
"""


EMULATOR_EXAMPLES = """\
examples:
  # rehearse a purge: 1,000 identities, the plan's quota, and the IDs written out as a list
  bulkdelete emulator --port 8080 --api-key test --seed-count 1000 --write-ids ids.txt \\
      --rate-limit 100/60s
  ORQ_API_KEY=test bulkdelete run ids.txt --base-url http://127.0.0.1:8080 --rate 100/min --yes

  # a bad day: 5% 5xx, 2% dropped connections, 50 ms latency, reproducible
  bulkdelete emulator --port 0 --seed-count 500 --error-rate 0.05 --drop-rate 0.02 \\
      --latency 0.05 --fault-seed 7
"""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="bulkdelete",
        description="Delete large numbers of orq.ai identities safely, at the pace the API "
        "allows, and leave a report an auditor can trust.",
    )
    parser.add_argument("--version", action="version", version=f"bulkdelete {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    run = commands.add_parser(
        "run",
        help="delete every ID in a file or stdin",
        description="Delete every distinct ID in INPUT through DELETE /v2/identities/{id}, "
        "recording each ID's outcome (deleted, not_found, failed, invalid) in a report.",
        epilog=RUN_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_run_arguments(run)

    emulator = commands.add_parser(
        "emulator",
        help="serve a local orq.ai Identities API for rehearsals and tests",
        description="A local orq.ai Identities API with rolling-window rate limits and faults "
        "on demand. Prints its base URL on the first line of stdout; serves until Ctrl-C or "
        "SIGTERM. GET /_emulator/stats tells what it saw.",
        epilog=EMULATOR_EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    from bulkdelete.emulator.cli import add_emulator_arguments

    add_emulator_arguments(emulator)

    report = commands.add_parser(
        "report",
        help="read a report: its summary, or the IDs that still need work",
        description="Read a report written by 'bulkdelete run' (resumed runs merged: the last "
        "row per ID is its outcome).",
        epilog="examples:\n  bulkdelete report summary erasure-report.csv\n"
        "  bulkdelete report failed erasure-report.csv > retry.txt\n"
        "  bulkdelete run retry.txt --report retry-report.csv --yes",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    tools = report.add_subparsers(dest="tool", metavar="TOOL", required=True)
    summary = tools.add_parser("summary", help="print the counts of the whole job")
    summary.add_argument("report", metavar="REPORT", help="a .csv or .jsonl report")
    summary.add_argument("--json", action="store_true", help="print JSON instead of text")
    failed = tools.add_parser(
        "failed", help="print the IDs whose last outcome is failed, one a line (for a retry)"
    )
    failed.add_argument("report", metavar="REPORT", help="a .csv or .jsonl report")

    commands.add_parser(
        "demo",
        help="purge samples/purge.csv against a bundled emulator, to see how it works",
        description="Start the emulator in-process, seeded, and purge the bundled sample list "
        "against it: progress, the summary, and where the report went.",
    )
    return parser


def _add_run_arguments(run: argparse.ArgumentParser) -> None:
    run.add_argument("input", metavar="INPUT", help="a .csv, .txt or .jsonl file, or - for stdin")

    reading = run.add_argument_group("input")
    reading.add_argument(
        "--format",
        choices=FORMATS,
        help="input format when the extension does not tell (default: by extension; txt for stdin)",
    )
    reading.add_argument(
        "--column",
        metavar="NAME",
        help="CSV column / JSONL field holding the ID (default: the first of id, identity_id, "
        "_id, external_id; else the only column)",
    )

    api = run.add_argument_group("API")
    api.add_argument(
        "--base-url",
        metavar="URL",
        default=os.environ.get("ORQ_BASE_URL", DEFAULT_BASE_URL),
        help=f"API root (env ORQ_BASE_URL; default {DEFAULT_BASE_URL})",
    )
    api.add_argument(
        "--api-key-file",
        metavar="PATH",
        help="read the API key from this file (default: env ORQ_API_KEY)",
    )

    pace = run.add_argument_group("pace and patience")
    pace.add_argument(
        "--rate",
        default="20/min",
        help="ceiling on requests: N/s, N/min or N/h, never exceeded in any rolling window; "
        "the pace also follows the API's rate-limit headers and 429s under it. 'auto' starts "
        "at 1/s and learns the limit from the API (default 20/min)",
    )
    pace.add_argument(
        "--concurrency",
        type=int,
        default=4,
        metavar="N",
        help="requests in flight at most (default 4)",
    )
    pace.add_argument(
        "--timeout", type=float, default=30.0, metavar="SECONDS", help="per request (default 30)"
    )
    pace.add_argument(
        "--max-attempts",
        type=int,
        default=5,
        metavar="N",
        help="attempts per ID before it is failed (default 5)",
    )
    pace.add_argument(
        "--max-retry-after",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="stop (exit 3) rather than wait longer than this when the API says Retry-After "
        "(default 300)",
    )

    pace.add_argument(
        "--max-outage",
        type=float,
        default=300.0,
        metavar="SECONDS",
        help="when the API looks down (most requests 5xx, timing out or dropped), hold every "
        "worker and probe; stop (exit 3, resumable) if it stays down longer (default 300)",
    )

    record = run.add_argument_group("report")
    record.add_argument(
        "--report",
        metavar="PATH",
        help="where the report goes, .csv or .jsonl (default bulkdelete-report-<UTC time>.csv): "
        f"one row per distinct ID, columns {', '.join(COLUMNS)} (finished_at in UTC); "
        "the summary goes to PATH.summary.json",
    )
    record.add_argument(
        "--resume", action="store_true", help="continue the job recorded in --report"
    )

    safety = run.add_argument_group("safety")
    safety.add_argument(
        "--dry-run", action="store_true", help="read and check everything, send no DELETE"
    )
    safety.add_argument(
        "--max-deletes",
        type=int,
        metavar="N",
        help="refuse to start (exit 3) if there are more than N IDs to delete",
    )
    safety.add_argument(
        "--check",
        action="store_true",
        help="with --dry-run: look each ID up (GET, paced like a real run) and count how many "
        "exist and would be deleted, and how many are already gone",
    )
    safety.add_argument("--yes", action="store_true", help="do not ask for confirmation")

    output = run.add_argument_group("output")
    output.add_argument("--quiet", action="store_true", help="no progress display")
    output.add_argument(
        "-v", "--verbose", action="store_true", help="also log each retry and short pauses"
    )
    output.add_argument(
        "--status-every",
        type=float,
        default=STATUS_EVERY,
        metavar="SECONDS",
        help="without a terminal (cron, CI, logs), one status line this often "
        f"(default {STATUS_EVERY:g})",
    )
    output.add_argument(
        "--log-format",
        choices=("text", "json"),
        default="text",
        help="log lines (failures, pauses, stops) as text or as one JSON object a line "
        "(default text)",
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``bulkdelete`` command; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    console = Console(stderr=True)
    try:
        if args.command == "run":
            return _run_command(args, console)
        if args.command == "report":
            return _report_command(args)
        if args.command == "emulator":
            from bulkdelete.emulator.cli import run_emulator_command

            return run_emulator_command(args)
        if args.command == "demo":
            from bulkdelete.demo import run_demo

            return run_demo(console)
    except BulkDeleteError as exc:
        console.print(f"bulkdelete: error: {exc}", highlight=False, markup=False)
        return exc.exit_code
    except KeyboardInterrupt:
        console.print("bulkdelete: interrupted", highlight=False)
        return EXIT_INTERRUPTED
    parser.error(f"unknown command {args.command!r}")
    return EXIT_USAGE


def read_api_key(path: str | None) -> str:
    """The API key from ``--api-key-file`` or env ``ORQ_API_KEY`` ('' when neither is set)."""
    if path is None:
        return os.environ.get("ORQ_API_KEY", "").strip()
    try:
        return Path(path).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
        raise UsageError(f"cannot read --api-key-file {path}: {reason}") from None


def settings_from(args: argparse.Namespace) -> Settings:
    """Build and check the settings from the parsed options, before any I/O."""
    rate = Rate.parse(args.rate)
    return Settings(
        api_key="" if args.dry_run and not args.check else read_api_key(args.api_key_file),
        base_url=args.base_url,
        rate=rate,
        concurrency=args.concurrency,
        timeout=args.timeout,
        max_attempts=args.max_attempts,
        max_retry_after=args.max_retry_after,
        max_outage=args.max_outage,
        dry_run=args.dry_run,
        check=args.check,
    ).checked()


def default_report_path() -> str:
    return f"bulkdelete-report-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}.csv"


def check_report_path(path: str, *, resume: bool) -> None:
    """Refuse a report path that is unusable, or that would overwrite an earlier run's work."""
    report_format(path)
    target = Path(path)
    if target.is_dir():
        raise UsageError(f"report {path} is a directory; give a file path ending in .csv or .jsonl")
    if not resume and target.exists() and target.stat().st_size > 0:
        raise UsageError(
            f"report {path} already exists and is not empty: pass --resume to continue that "
            "job, or choose another --report path"
        )
    parent = target.parent if str(target.parent) else Path(".")
    if not parent.is_dir() or not os.access(parent, os.W_OK):
        raise UsageError(f"cannot write the report in {parent}: not a writable directory")


def _prior_job(console: Console, report_path: str, settings: Settings) -> PriorJob | None:
    """The earlier runs' work for --resume; None when the report is new."""
    target = Path(report_path)
    if not target.exists() or target.stat().st_size == 0:
        console.print(
            f"bulkdelete: --resume: {report_path} does not exist yet; starting the job",
            highlight=False,
            markup=False,
        )
        return None
    prior = load_prior_job(report_path)
    earlier_url = prior.summary.get("base_url")
    if isinstance(earlier_url, str) and earlier_url and earlier_url != settings.base_url:
        raise UsageError(
            f"{report_path} records a job against {earlier_url}, not {settings.base_url}: "
            "resume with the same --base-url, or start a new report"
        )
    if prior.repaired_bytes:
        console.print(
            f"bulkdelete: repaired {report_path}: dropped a half-written last row "
            f"({prior.repaired_bytes} bytes); that ID will be tried again",
            highlight=False,
            markup=False,
        )
    console.print(
        f"bulkdelete: resuming: {len(prior.last) - prior.counts['failed']:,} IDs done, "
        f"{prior.counts['failed']:,} failed "
        "to try again",
        highlight=False,
        markup=False,
    )
    return prior


def _run_command(args: argparse.Namespace, console: Console) -> int:
    setup_logging(console, verbose=args.verbose, json_lines=args.log_format == "json")
    settings = settings_from(args)
    report_path = args.report or default_report_path()
    if args.check and not args.dry_run:
        raise UsageError("--check goes with --dry-run: it looks IDs up instead of deleting")
    if args.max_deletes is not None and args.max_deletes < 0:
        raise UsageError("--max-deletes must be 0 or more")
    if not settings.dry_run:
        check_report_path(report_path, resume=args.resume)
    confirm = not settings.dry_run and not args.yes
    terminal = open_terminal() if confirm else None
    if confirm and terminal is None:
        raise UsageError(
            "no terminal to confirm the deletion on: pass --yes to delete without asking"
        )
    prior = _prior_job(console, report_path, settings) if args.resume else None
    skip = prior.final if prior else frozenset[str]()
    # A file is read through once before any request: a bad line (not UTF-8, bad JSON) is a
    # usage error then, not a surprise halfway through the purge, and the total is known.
    # stdin streams unless the count is needed first (then it is spooled to a temporary file).
    planning = settings.dry_run or confirm or args.max_deletes is not None or args.input != "-"
    with ExitStack() as cleanup:
        if terminal is not None:
            cleanup.callback(terminal.close)
        # Counting the IDs reads stdin to its end, so a planned run keeps a copy to run from.
        spooled = cleanup.enter_context(spool_stdin()) if planning and args.input == "-" else None

        def open_source() -> InputSource:
            if spooled is not None:
                spooled.seek(0)
            return cleanup.enter_context(
                open_input(args.input, args.format, args.column, stdin=spooled)
            )

        source = open_source()
        total: int | None = None
        if planning:
            the_plan = plan(source.records(), skip)
            total = the_plan.counts.distinct
            to_delete = the_plan.to_delete
            if settings.dry_run:
                _print_plan(console, args.input, settings, the_plan, source.sha256)
                if settings.check:
                    return _check(console, args, settings, open_source(), skip, total)
                return EXIT_OK
            if args.max_deletes is not None and to_delete > args.max_deletes:
                console.print(
                    f"bulkdelete: stopped: {to_delete:,} IDs to delete, more than "
                    f"--max-deletes {args.max_deletes:,}; nothing was sent",
                    highlight=False,
                )
                return EXIT_STOPPED
            if terminal is not None and not ask(terminal, settings, the_plan):
                console.print("bulkdelete: not confirmed; nothing was sent", highlight=False)
                return EXIT_STOPPED
            source = open_source()
        report = FileReport(report_path)
        run = Run(
            summary=Summary(report=report_path),
            id_filter=IdFilter(skip=skip),
            total=total,
            previous=prior.last if prior else None,
        )
        return _execute(console, args, settings, source, report, run, prior)
    return EXIT_OK  # pragma: no cover - the with block always returns


def _check(
    console: Console,
    args: argparse.Namespace,
    settings: Settings,
    source: InputSource,
    skip: Container[str],
    total: int,
) -> int:
    """--dry-run --check: look every ID up, paced like the real run; delete nothing."""
    run = Run(summary=Summary(), id_filter=IdFilter(skip=skip), total=total)
    display = LiveDisplay(console, args.status_every) if not args.quiet else None
    anyio.run(
        _purge,
        source,
        settings,
        None,
        run,
        display,
        backend="asyncio",
        backend_options=loop_options(),
    )
    summary = run.summary
    lines = [
        f"check: {summary.deleted:,} exist and would be deleted, {summary.not_found:,} are "
        f"already gone, {summary.failed:,} could not be looked up (nothing was deleted)"
    ]
    if summary.interrupted:
        lines.append("check: interrupted; the counts cover the IDs looked up so far")
    console.print("\n".join(lines), highlight=False, markup=False)
    if summary.interrupted:
        return EXIT_INTERRUPTED
    return EXIT_SOME_FAILED if summary.failed else EXIT_OK


def _execute(
    console: Console,
    args: argparse.Namespace,
    settings: Settings,
    source: InputSource,
    report: FileReport,
    run: Run,
    prior: PriorJob | None,
) -> int:
    report_path = str(report.path)
    summary = run.summary
    summary.started_at = utc_now()
    summary.begin_job(prior)
    summary.base_url = settings.base_url
    summary.extra["state"] = "running"
    summary.write(summary_path(report_path))
    display = LiveDisplay(console, args.status_every) if not args.quiet else None
    code: int | None = None
    try:
        anyio.run(
            _purge,
            source,
            settings,
            report,
            run,
            display,
            backend="asyncio",
            backend_options=loop_options(),
        )
    except BulkDeleteError as exc:
        log.error("stopped: %s", exc, extra={"event": {"event": "stopped", "reason": str(exc)}})
        # Bad input found on the way (a line of stdin that is not UTF-8, say) comes after
        # requests were sent: that is a stopped run (3), not a usage error (2).
        sent = run.pacer.sent if run.pacer is not None else 0
        code = EXIT_STOPPED if isinstance(exc, UsageError) and sent else exc.exit_code
        summary.stopped = str(exc)
    finally:
        report.close()
        summary.input_sha256 = source.sha256
        state = "interrupted" if summary.interrupted else "stopped" if summary.stopped else "done"
        summary.extra["state"] = state
        if prior is not None:
            summary.end_job(prior, run.retried)
        summary.write(summary_path(report_path))
    _print_summary(console, run, report_path)
    if code is not None:
        return code
    return EXIT_INTERRUPTED if summary.interrupted else summary.exit_code


async def _purge(
    source: InputSource,
    settings: Settings,
    report: FileReport | None,
    run: Run,
    display: LiveDisplay | None,
) -> None:
    records = source.records()
    if display is None:
        await run_job(records, settings, report, run, handle_signals=True)
        return
    with display:
        async with anyio.create_task_group() as group:
            group.start_soon(display.follow, run)
            await run_job(records, settings, report, run, handle_signals=True)
            group.cancel_scope.cancel()


def _report_command(args: argparse.Namespace) -> int:
    path = Path(args.report)
    report_format(path)
    if not path.is_file():
        raise UsageError(f"no report at {path}")
    if args.tool == "failed":
        sys.stdout.writelines(f"{identity_id}\n" for identity_id in failed_ids(path))
        return EXIT_OK
    data = overview(path)
    if args.json:
        sys.stdout.write(json.dumps(data, indent=2) + "\n")
    else:
        width = max(len(key) for key in data)
        sys.stdout.writelines(f"{key:<{width}}  {value}\n" for key, value in data.items())
    return EXIT_OK


def _print_plan(
    console: Console,
    input_path: str,
    settings: Settings,
    the_plan: Plan,
    sha256: str | None,
) -> None:
    lines = [
        f"dry run: nothing was sent to {settings.base_url}",
        f"  input          {input_path} ({the_plan.counts.input_lines:,} IDs read"
        + (f", sha256 {sha256[:12]}…)" if sha256 else ")"),
        *plan_lines(settings, the_plan),
    ]
    console.print("\n".join(lines), highlight=False, markup=False)


def _print_summary(console: Console, run: Run, report_path: str) -> None:
    summary = run.summary
    lines = [
        f"bulkdelete: {outcome_counts(summary)} · duplicates {summary.duplicates:,}",
        f"bulkdelete: report {report_path} (summary in {summary_path(report_path)})",
    ]
    if summary.interrupted or summary.stopped:
        lines.append(
            f"bulkdelete: {summary.not_attempted:,} ID(s) read but not finished; continue with "
            f"the same command plus --resume --report {report_path}"
        )
    console.print("\n".join(lines), highlight=False, markup=False)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())

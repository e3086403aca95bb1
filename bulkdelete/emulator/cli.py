"""``bulkdelete emulator``: serve the emulated Identities API until Ctrl-C or SIGTERM."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import sys
from pathlib import Path

from bulkdelete.emulator.config import (
    EmulatorConfig,
    FaultConfig,
    parse_latency,
    parse_rate_limit,
)
from bulkdelete.emulator.seeding import read_seed_file, seeded_external_ids, write_id_list
from bulkdelete.emulator.server import running_emulator
from bulkdelete.errors import UsageError

_PROG = "bulkdelete emulator"


def add_emulator_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``bulkdelete emulator`` options to ``parser``."""
    parser.add_argument(
        "--host", default="127.0.0.1", help="address to listen on (default: %(default)s)"
    )
    parser.add_argument(
        "--port",
        type=int,
        default=8080,
        help="port to listen on; 0 picks a free one (default: %(default)s)",
    )
    parser.add_argument(
        "--api-key",
        metavar="KEY",
        help="require 'Authorization: Bearer KEY'; others get 401 (default: accept any request)",
    )
    seeds = parser.add_mutually_exclusive_group()
    seeds.add_argument(
        "--seed",
        metavar="FILE",
        type=Path,
        help="identities to start with: external IDs one a line, or a .csv with an "
        "external_id (or id) column, or a .csv of _id,external_id pairs under that header",
    )
    seeds.add_argument(
        "--seed-count",
        metavar="N",
        type=int,
        default=0,
        help="start with N generated identities, user-000001 onwards (default: %(default)s)",
    )
    parser.add_argument(
        "--write-ids",
        metavar="FILE",
        type=Path,
        help="write the seeded external IDs to FILE as a purge list (.csv, .jsonl or text)",
    )
    parser.add_argument(
        "--delete-status",
        type=int,
        choices=(204, 200),
        default=204,
        help="status of a successful DELETE: 204 (no body) or 200 with {} (default: %(default)s)",
    )
    parser.add_argument(
        "--rate-limit",
        metavar="N/PERIOD",
        help="admit at most N requests in any rolling PERIOD, e.g. 100/60s, 100/min, 20/1s, 5/s; "
        "others get 429 with Retry-After (default: no limit)",
    )
    parser.add_argument(
        "--stats-window",
        metavar="SECONDS",
        type=float,
        default=1.0,
        help="window of the busiest-window statistic while no rate limit is set "
        "(default: %(default)s)",
    )
    faults = parser.add_argument_group("faults (shares are fractions of the /v2 requests)")
    faults.add_argument(
        "--fault-seed",
        metavar="N",
        type=int,
        default=0,
        help="seed of the fault draws: the same seed and requests give the same faults "
        "(default: %(default)s)",
    )
    faults.add_argument(
        "--error-rate",
        metavar="SHARE",
        type=float,
        default=0.0,
        help="share answered 500 or 503 (default: %(default)s)",
    )
    faults.add_argument(
        "--drop-rate",
        metavar="SHARE",
        type=float,
        default=0.0,
        help="share whose connection is closed without an answer (default: %(default)s)",
    )
    faults.add_argument(
        "--drop-after-delete-share",
        metavar="SHARE",
        type=float,
        default=0.5,
        help="part of the dropped requests that were carried out before the drop "
        "(default: %(default)s)",
    )
    faults.add_argument(
        "--slow-rate",
        metavar="SHARE",
        type=float,
        default=0.0,
        help="share answered only after --slow-delay, though carried out at once "
        "(default: %(default)s)",
    )
    faults.add_argument(
        "--slow-delay",
        metavar="SECONDS",
        type=float,
        default=40.0,
        help="how long slow answers take (default: %(default)s)",
    )
    faults.add_argument(
        "--latency",
        metavar="MEAN[,JITTER]",
        default="0",
        help="seconds added to every /v2 answer, plus or minus up to JITTER (default: %(default)s)",
    )


def config_from_args(args: argparse.Namespace) -> EmulatorConfig:
    """The emulator's settings from parsed options; reads the ``--seed`` file.

    Raises :class:`~bulkdelete.errors.UsageError` for a bad option or seed file.
    """
    rate_limit: int | None = None
    rate_period = 60.0
    if args.rate_limit is not None:
        rate_limit, rate_period = parse_rate_limit(args.rate_limit)
    latency, jitter = parse_latency(args.latency)
    faults = FaultConfig(
        seed=args.fault_seed,
        error_rate=args.error_rate,
        drop_rate=args.drop_rate,
        drop_after_delete_share=args.drop_after_delete_share,
        slow_rate=args.slow_rate,
        slow_delay=args.slow_delay,
        latency=latency,
        latency_jitter=jitter,
    )
    external_ids: list[str] = []
    pairs: list[tuple[str, str]] = []
    if args.seed is not None:
        external_ids, pairs = read_seed_file(args.seed)
    return EmulatorConfig(
        host=args.host,
        port=args.port,
        api_key=args.api_key,
        delete_status=args.delete_status,
        rate_limit=rate_limit,
        rate_period=rate_period,
        faults=faults,
        seed_external_ids=external_ids,
        seed_identities=pairs,
        seed_count=args.seed_count,
        stats_window=args.stats_window,
    )


def run_emulator_command(args: argparse.Namespace) -> int:
    """Serve until SIGINT or SIGTERM; print the base URL first on stdout. Returns the exit code:
    0 when stopped, 2 for a bad option or seed file, 1 when the address cannot be listened on.
    """
    try:
        config = config_from_args(args)
    except UsageError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    try:
        return asyncio.run(_serve(config, args.write_ids))
    except KeyboardInterrupt:  # Ctrl-C before the signal handlers were in place
        return 0


async def _serve(config: EmulatorConfig, write_ids: Path | None) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        # Windows has no add_signal_handler; Ctrl-C then arrives as KeyboardInterrupt.
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(signum, stop.set)
    try:
        async with running_emulator(config) as emulator:
            if write_ids is not None:
                try:
                    write_id_list(write_ids, seeded_external_ids(config))
                except OSError as exc:
                    print(
                        f"{_PROG}: error: cannot write --write-ids file {str(write_ids)!r}: "
                        f"{exc.strerror or exc}",
                        file=sys.stderr,
                    )
                    return 2
            print(emulator.base_url, flush=True)
            limit = (
                f"at most {config.rate_limit} requests per {config.rate_period:g} s"
                if config.rate_limit is not None
                else "no rate limit"
            )
            print(
                f"{_PROG}: {emulator.identity_count()} identities, {limit}, "
                f"DELETE answers {config.delete_status}; Ctrl-C to stop",
                file=sys.stderr,
                flush=True,
            )
            await stop.wait()
            stats = emulator.stats
            print(
                f"{_PROG}: stopped after {stats.requests} requests; "
                f"identities deleted: {len(stats.deleted_ids)}",
                file=sys.stderr,
            )
    except UsageError as exc:
        print(f"{_PROG}: error: {exc}", file=sys.stderr)
        return exc.exit_code
    except OSError as exc:
        print(
            f"{_PROG}: error: cannot listen on {config.host} port {config.port}: "
            f"{exc.strerror or exc}",
            file=sys.stderr,
        )
        return 1
    return 0

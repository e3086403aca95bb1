"""``python -m bulkdelete.emulator``: the ``bulkdelete emulator`` command on its own."""

from __future__ import annotations

import argparse
import sys

from bulkdelete.emulator.cli import add_emulator_arguments, run_emulator_command


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` and serve the emulator; return the exit code."""
    parser = argparse.ArgumentParser(
        prog="bulkdelete emulator",
        description="Serve a local orq.ai Identities API, with rate limits and faults. "
        "Prints its base URL on the first line of stdout; stops on Ctrl-C or SIGTERM.",
    )
    add_emulator_arguments(parser)
    return run_emulator_command(parser.parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())

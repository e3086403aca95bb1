"""A local stand-in for the orq.ai Identities API, with rate limits and bad days.

Start it in-process with :func:`running_emulator` (async) or :func:`emulator_in_thread`, or
from the command line with ``bulkdelete emulator`` (``python -m bulkdelete.emulator``).
"""

from bulkdelete.emulator.config import EmulatorConfig, FaultConfig, parse_rate_limit
from bulkdelete.emulator.server import Emulator, emulator_in_thread, running_emulator
from bulkdelete.emulator.stats import EmulatorStats

__all__ = [
    "Emulator",
    "EmulatorConfig",
    "EmulatorStats",
    "FaultConfig",
    "emulator_in_thread",
    "parse_rate_limit",
    "running_emulator",
]

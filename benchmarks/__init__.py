"""Benchmarks of bulkdelete (not tests): ``make bench`` or ``python -m benchmarks --help``."""

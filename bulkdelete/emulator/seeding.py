"""Identities to start with: seed files in, purge lists out."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable
from pathlib import Path

from bulkdelete.emulator.config import EmulatorConfig
from bulkdelete.errors import InputError, UsageError


def generated_external_ids(count: int) -> list[str]:
    """The ``external_id``s ``--seed-count`` makes: ``user-000001``, ``user-000002``, ..."""
    return [f"user-{number:06d}" for number in range(1, count + 1)]


def seeded_external_ids(config: EmulatorConfig) -> list[str]:
    """Every ``external_id`` the emulator starts with, in the order it creates them."""
    return [
        *(external_id for _, external_id in config.seed_identities),
        *config.seed_external_ids,
        *generated_external_ids(config.seed_count),
    ]


_ID_COLUMNS = ("external_id", "id", "identity_id", "_id")


def read_seed_file(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Read a seed file: ``(external_ids, [])`` or ``([], [(_id, external_id), ...])``.

    A text file holds one ``external_id`` a line. A ``.csv`` file holds, under a header naming
    both ``_id`` and ``external_id``, the pairs identities are to keep; else the IDs of the first
    column headed ``external_id``, ``id``, ``identity_id`` or ``_id`` (so a purge list seeds
    what it purges); else, with no such header, one column of IDs. Blank lines and empty IDs
    are skipped; an ID is kept exactly as written otherwise, spaces included.
    """
    try:
        text = path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise InputError(f"seed file {str(path)!r} does not exist") from None
    except UnicodeDecodeError:
        raise InputError(f"seed file {str(path)!r} is not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"cannot read seed file {str(path)!r}: {exc.strerror}") from None
    if path.suffix.lower() != ".csv":
        lines = (line.removesuffix("\r") for line in text.split("\n"))
        return [line for line in lines if line.strip()], []
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if any(row)]
    if not rows:
        return [], []
    header = [cell.strip() for cell in rows[0]]
    if "_id" in header and "external_id" in header:
        id_at, external_id_at = header.index("_id"), header.index("external_id")
        pairs = []
        for number, row in enumerate(rows[1:], start=2):
            if len(row) != len(header) or not row[id_at] or not row[external_id_at]:
                raise InputError(
                    f"seed file {str(path)!r}, row {number}: expected {len(header)} columns "
                    "with a non-empty _id and external_id"
                )
            pairs.append((row[id_at], row[external_id_at]))
        return [], pairs
    column = next((header.index(name) for name in _ID_COLUMNS if name in header), None)
    if column is None and len(header) == 1:
        return [row[0] for row in rows], []
    if column is None:
        raise InputError(
            f"seed file {str(path)!r} has {len(header)} columns but none is headed "
            f"{', '.join(_ID_COLUMNS)}: say which holds the IDs, or use one column"
        )
    return [row[column] for row in rows[1:] if len(row) > column and row[column]], []


def write_id_list(path: Path, external_ids: Iterable[str]) -> None:
    """Write a purge list: a ``.csv`` with an ``external_id`` header, ``.jsonl`` objects, or
    else plain text with one ID a line."""
    suffix = path.suffix.lower()
    with path.open("w", encoding="utf-8", newline="") as out:
        if suffix == ".csv":
            writer = csv.writer(out, lineterminator="\n")
            writer.writerow(["external_id"])
            writer.writerows([external_id] for external_id in external_ids)
        elif suffix == ".jsonl":
            out.writelines(
                json.dumps({"external_id": external_id}, ensure_ascii=False) + "\n"
                for external_id in external_ids
            )
        else:
            for external_id in external_ids:
                if "\n" in external_id or "\r" in external_id:
                    raise UsageError(
                        f"cannot write {external_id!r} to the text list {str(path)!r}: "
                        "it holds a line break; write a .csv or .jsonl list instead"
                    )
                out.write(external_id + "\n")

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


def read_seed_file(path: Path) -> tuple[list[str], list[tuple[str, str]]]:
    """Read a seed file: ``(external_ids, [])`` or ``([], [(_id, external_id), ...])``.

    A text file holds one ``external_id`` a line. A ``.csv`` file holds either one column of
    them (headed ``external_id`` or not headed at all) or, under a header naming ``_id`` and
    ``external_id``, the pairs an identity is to keep. Blank lines are skipped; an ID is kept
    exactly as written otherwise, spaces included.
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
    rows = [row for row in csv.reader(io.StringIO(text, newline="")) if any(cell for cell in row)]
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
    if len(header) != 1:
        raise InputError(
            f"seed file {str(path)!r} has {len(header)} columns: a CSV seed file holds one "
            "column of external IDs, or _id and external_id columns under a header"
        )
    body = rows[1:] if header == ["external_id"] else rows
    return [row[0] for row in body], []


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

"""Writes the sample purge lists (run once; the files are committed).

``purge.csv`` mixes what a real erasure list holds: identities that exist (the demo's emulator
is seeded with ``user-000001`` to ``user-002400``), IDs already gone, duplicates, and IDs that
can never be sent.
"""

from __future__ import annotations

import csv
import json
import random
from pathlib import Path

HERE = Path(__file__).parent


def main() -> None:
    rng = random.Random(2026)
    existing = [f"user-{n:06d}" for n in range(1, 2401)]
    missing = [f"user-{n:06d}" for n in range(9001, 9301)]
    duplicates = rng.sample(existing, 150) + rng.sample(missing, 50)
    invalid = ["", ".", "..", "bad\tid", "line\nbreak", "x" * 1100]
    rows = existing + missing + duplicates
    rng.shuffle(rows)
    for position, bad in zip((5, 400, 900, 1500, 2000, 2600), invalid, strict=True):
        rows.insert(position, bad)
    with (HERE / "purge.csv").open("w", encoding="utf-8", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(["external_id", "email", "requested_at"])
        for n, identity in enumerate(rows):
            writer.writerow([identity, f"person{n}@example.com", "2026-11-30"])
    small = existing[:20] + missing[:5] + existing[:3]
    (HERE / "stale_ids.txt").write_text("".join(f"{i}\n" for i in small), encoding="utf-8")
    with (HERE / "erasure.jsonl").open("w", encoding="utf-8") as file:
        for identity in small:
            file.write(json.dumps({"external_id": identity, "reason": "gdpr-art-17"}) + "\n")


if __name__ == "__main__":
    main()

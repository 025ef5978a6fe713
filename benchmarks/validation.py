"""Benchmark: validating a 1,000,000-row snapshot against the time to read its file.

Run: `.venv/bin/python benchmarks/validation.py` (or `make bench-validation`). Target (issue 4):
validation (the audit query plus the GX suite) within 2x of reading the file.
"""
from __future__ import annotations

import csv
import sys
import tempfile
import time
from datetime import datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipelines.audit import audit_snapshot  # noqa: E402
from pipelines.catalog import load_catalog, store_catalog  # noqa: E402
from pipelines.ingest_lens import read_inventory_export  # noqa: E402
from pipelines.quality import QualityGate  # noqa: E402
from pipelines.warehouse import SnapshotLoad, open_warehouse, transaction  # noqa: E402
from pipelines.workspace import Workspace  # noqa: E402

ROWS = 1_000_000
MODELS = ("Poly Studio X30", "Polycom VVX 450", "Poly Voyager Focus 2 Series", "Poly Sync 20-M",
          "Poly CCX 600", "Mystery Device 9")


def write_export(path: Path, rows: int) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["Serial Number", "MAC Address", "Hardware Model", "Site", "Room",
                         "Device ID"])
        for i in range(rows):
            writer.writerow([f"SN{i:010d}", f"00:04:F2:{i >> 16 & 255:02X}:{i >> 8 & 255:02X}:"
                             f"{i & 255:02X}", MODELS[i % len(MODELS)], f"Site {i % 40}",
                             f"Room {i % 900}", f"dev-{i}"])


def main() -> None:
    with tempfile.TemporaryDirectory() as root:
        workspace = Workspace.resolve(root)
        export = Path(root) / "big-2026-10.csv"
        write_export(export, ROWS)
        gate = QualityGate.shared()
        gate._suites  # build GX once, outside the timings (a run pays it once too)

        started = time.perf_counter()
        parsed = read_inventory_export(export)
        read_seconds = time.perf_counter() - started

        with open_warehouse(workspace) as con, transaction(con):
            store_catalog(con, load_catalog(None))
            load = SnapshotLoad("bench/2026-10/x", "bench", "2026-10", 1,
                                datetime(2026, 11, 1), "lens_csv", export.name)
            started = time.perf_counter()
            load.start(con)
            load.add_rows(con, parsed.rows)
            load.finish(con, len(parsed.rows))
            load_seconds = time.perf_counter() - started
            started = time.perf_counter()
            findings = audit_snapshot(con, gate, load, Path(root) / "rejected.csv")
            validate_seconds = time.perf_counter() - started

    print(f"rows                 {ROWS:>12,}")
    print(f"read the file        {read_seconds:>10.2f} s")
    print(f"load (raw layer)     {load_seconds:>10.2f} s")
    print(f"validate (audit+GX)  {validate_seconds:>10.2f} s   "
          f"{validate_seconds / read_seconds:.2f}x the read (target: at most 2x)")
    for finding in findings:
        print(f"  {finding.check:<20} {'ok' if finding.passed else 'FAILED':<7} {finding.message}")


if __name__ == "__main__":
    main()

"""Reading planned Lens exports into the staging table, many files at a time.

Exports of one layout (separator, header, header row) are read by one call of DuckDB's CSV
reader: a partner's exports mostly come from the same Lens screen, so a batch of hundreds of
files takes a handful of reads instead of hundreds. The reader is strict; where it declines —
a file it cannot read as the reference reader does, or whose record count differs from its
line count — that file is read alone, and failing that record by record by the reference
reader in export_reader.py, which also words the errors. Either way the rows are the same
(tests/test_staging.py checks this on generated files).

An export's last-seen cells are staged with its rows (rules.md "Devices not seen"); read in the
same pass, each export's latest last-seen day is kept aside (`staged_last_seen`) as evidence of
the month it shows (evidence.py).
"""
from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime

import duckdb
import pandas as pd

from pipelines.intake.export_reader import (
    EXPORT_COLUMNS,
    MAX_FIELD_CHARS,
    WHITESPACE,
    ExportPlan,
    TablePlan,
    read_planned_table,
)
from pipelines.intake.uploads import UnreadableExport
from pipelines.warehouse.connection import load_frame, run_sql

_Member = tuple[str, TablePlan]  # snapshot_id, table


def stage_exports(con: duckdb.DuckDBPyConnection, exports: list[tuple[str, ExportPlan]]
                  ) -> tuple[dict[str, int], dict[str, UnreadableExport]]:
    """Stage each export's rows under its snapshot_id: rows staged per snapshot, and the
    exports that turned out unreadable (nothing of theirs is left staged)."""
    run_sql(con, "intake/clear_staged_seen.sql")
    today = datetime.now(UTC).date()
    groups: dict[tuple, list[_Member]] = defaultdict(list)
    by_python: list[_Member] = []
    for snapshot_id, plan in exports:
        for table in plan.tables:
            if table.duckdb_readable:
                groups[table.layout].append((snapshot_id, table))
            else:
                by_python.append((snapshot_id, table))
    for members in groups.values():
        by_python += _stage_with_duckdb(con, members, today)
    failed: dict[str, UnreadableExport] = {}
    for snapshot_id, table in by_python:
        if snapshot_id in failed:
            continue
        try:
            frame = read_planned_table(table)
        except UnreadableExport as error:
            failed[snapshot_id] = error
            continue
        load_frame(con, "intake/stage_inventory_frame.sql", frame, snapshot_id=snapshot_id)
        if "last_seen" in dict(table.columns):
            load_frame(con, "intake/stage_seen_frame.sql", frame, snapshot_id=snapshot_id,
                       today=today)
    for snapshot_id in failed:
        run_sql(con, "intake/unstage_snapshot.sql", snapshot_id=snapshot_id)
    counts = dict(run_sql(con, "intake/staged_row_counts.sql").fetchall())
    return {snapshot_id: counts.get(snapshot_id, 0) for snapshot_id, _ in exports
            if snapshot_id not in failed}, failed


def staged_last_seen(con: duckdb.DuckDBPyConnection) -> dict[str, date]:
    """The latest last-seen day of each export the last `stage_exports` staged, of those with
    such dates (days after today are left out: no export can know them)."""
    return dict(run_sql(con, "intake/staged_seen.sql").fetchall())


def _stage_with_duckdb(con: duckdb.DuckDBPyConnection, members: list[_Member], today: date
                       ) -> list[_Member]:
    """Stage tables of one layout in one read; the members it declined."""
    separator, headers, header_row = members[0][1].layout
    try:
        run_sql(con, "intake/read_export_cells.sql", paths=[str(t.path) for _, t in members],
                skip=header_row, delim=separator, max_line_size=MAX_FIELD_CHARS,
                columns={f"c{i}": "VARCHAR" for i in range(len(headers))},
                no_null="\x00")  # never in a readable file: empty cells stay '' as in Python
    except duckdb.Error:
        if len(members) == 1:
            return members
        return [declined for member in members
                for declined in _stage_with_duckdb(con, [member], today)]
    records = dict(run_sql(con, "intake/export_cell_rows.sql").fetchall())
    read = [(s, t) for s, t in members if records.get(str(t.path), 0) == t.data_lines]
    read_paths = {t.path for _, t in read}
    if read:
        columns = dict(read[0][1].columns)
        files = pd.DataFrame({
            "path": [str(t.path) for _, t in read], "snapshot_id": [s for s, _ in read],
            "first_row": [t.header_row + 1 for _, t in read],
            "trim": [t.trim for _, t in read]})
        load_frame(con, "intake/stage_export_cells.sql", files, whitespace=WHITESPACE,
                   **{f"{field}_at": columns.get(field, -1) + 1 for field in EXPORT_COLUMNS})
        if "last_seen" in columns:
            load_frame(con, "intake/stage_seen_cells.sql", files,
                       seen_at=columns["last_seen"] + 1, today=today)
    return [(s, t) for s, t in members if t.path not in read_paths]

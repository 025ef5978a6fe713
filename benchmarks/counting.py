"""The yardsticks of benchmarks/run.py: count distinct serial numbers per export file and model,
(a) with DuckDB alone — the floor: reading the CSV files and counting, nothing else — and
(b) with a plain pandas script. Both print the number of devices they counted.

Run: `python benchmarks/counting.py duckdb|pandas <inbox folder>`.
"""
from __future__ import annotations

import codecs
import sys
from pathlib import Path

SERIAL = ("serialnumber", "serial", "seriennummer")
MODEL = ("devicemodel", "model", "hardwaremodel", "devicetype", "modell")


def _key(header: str) -> str:
    return "".join(c for c in header.lower() if c.isalnum())


def _layout(path: Path) -> tuple[str, str, bytes]:
    """Separator, encoding and header line, read off the file's start (as a script author
    would): files sharing all three are read together."""
    head = path.read_bytes()[:65536]
    line = head.split(b"\n", 1)[0]
    separator = max((",", ";", "\t"), key=lambda s: line.count(s.encode()))
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
        return separator, "utf-8", line
    except UnicodeDecodeError:
        return separator, "cp1252", line


def count_with_duckdb(files: list[Path]) -> int:
    import duckdb

    groups: dict[tuple[str, str, bytes], list[str]] = {}
    for path in files:
        groups.setdefault(_layout(path), []).append(str(path))
    con = duckdb.connect()
    devices = 0
    for (separator, encoding, _), paths in groups.items():
        options = {"paths": paths, "delim": separator,
                       "encoding": "latin-1" if encoding == "cp1252" else "utf-8"}
        scan = ("read_csv($paths, delim = $delim, encoding = $encoding, header = true, "
                "all_varchar = true, filename = true)")
        headers = [d[0] for d in con.execute(f"SELECT * FROM {scan} LIMIT 0", options).description]
        serial = next(h for h in headers if _key(h) in SERIAL)
        model = next(h for h in headers if _key(h) in MODEL)
        devices += con.execute(
            f'SELECT sum(n) FROM (SELECT count(DISTINCT upper(trim("{serial}"))) AS n '
            f'FROM {scan} WHERE "{model}" IS NOT NULL GROUP BY filename, "{model}")',
            options).fetchone()[0] or 0
    return devices


def count_with_pandas(files: list[Path]) -> int:
    import pandas as pd

    devices = 0
    for path in files:
        separator, encoding, _ = _layout(path)
        frame = pd.read_csv(path, sep=separator, encoding=f"{encoding}-sig"
                            if encoding == "utf-8" else encoding, dtype=str)
        serial = next(h for h in frame.columns if _key(h) in SERIAL)
        model = next(h for h in frame.columns if _key(h) in MODEL)
        frame[serial] = frame[serial].str.strip().str.upper()
        devices += int(frame.dropna(subset=[model]).groupby(model)[serial].nunique().sum())
    return devices


if __name__ == "__main__":
    how, inbox = sys.argv[1], Path(sys.argv[2])
    exports = sorted(p for p in inbox.glob("*/*") if p.is_file())
    print((count_with_duckdb if how == "duckdb" else count_with_pandas)(exports))

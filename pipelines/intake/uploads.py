"""An upload opened safely: the file itself or the CSV entries of a `.zip` (bounded in entries,
size and ratio, under names of our own), decoded from whatever encoding it was saved in.
Anything unusable raises `UnreadableExport` with a sentence the partner can act on."""
from __future__ import annotations

import codecs
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

MAX_LINE_CHARS = 1_000_000
MAX_ZIP_ENTRIES = 100
MAX_ZIP_RATIO = 100  # CSV compresses 5-20 fold; far more is a zip bomb
ZIP_RATIO_FREE_BYTES = 1 << 20  # tiny entries may compress better, harmlessly
MAX_UNZIPPED_BYTES = 2 << 30


class UnreadableExport(Exception):
    """The file as a whole cannot be used; the message says why in plain words."""


def decode_export(raw: bytes) -> tuple[str, str]:
    """The text of an export and the encoding it was in."""
    if raw.startswith(codecs.BOM_UTF8):
        return _decode(raw[len(codecs.BOM_UTF8):], "utf-8"), "utf-8-sig"
    if raw.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return _decode(raw, "utf-16"), "utf-16"
    head = raw[:4096]
    if b"\x00" in head:
        # UTF-16 without BOM: every other byte of ASCII text is zero.
        if head[1::2].count(0) > len(head) // 4:
            return _decode(raw, "utf-16-le"), "utf-16-le"
        if head[0::2].count(0) > len(head) // 4:
            return _decode(raw, "utf-16-be"), "utf-16-be"
        raise UnreadableExport("this is not a text file (it contains binary data); "
                               "export the device list from Poly Lens as CSV")
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return _decode(raw, "cp1252"), "cp1252"


def _decode(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise UnreadableExport(f"the text is not valid {encoding} (byte {error.start}); "
                               f"save the export as UTF-8 CSV") from None


@dataclass(frozen=True)
class Source:
    """One CSV of an upload, decoded: the file itself, or an entry of a `.zip`."""
    label: str  # how messages name it: "" for a plain file, "in zip entry 'x.csv': " in a zip
    entry: str | None
    path: Path
    text: str
    encoding: str


def read_source(path: Path, entry: str | None = None) -> Source:
    label = f"in zip entry {entry!r}: " if entry else ""
    try:
        text, encoding = decode_export(path.read_bytes())
    except UnreadableExport as error:
        raise UnreadableExport(f"{label}{error}") from None
    if len(text) > MAX_LINE_CHARS:  # only then can a line be too long
        lengths = list(map(len, text.split("\n")))
        if max(lengths) > MAX_LINE_CHARS:
            line = next(n for n, length in enumerate(lengths, 1) if length > MAX_LINE_CHARS)
            raise UnreadableExport(f"{label}line {line} is longer than {MAX_LINE_CHARS:,} "
                                   f"characters: this is not a device export")
    return Source(label, entry, path, text, encoding)


@contextmanager
def csv_sources(path: Path, scratch: Path | None = None) -> Iterator[list[Source]]:
    """The CSV sources of an upload: the file itself, or each CSV inside a `.zip`, extracted
    to a private folder in `scratch` (kept), or one that lives as long as the context."""
    if path.suffix.lower() in (".xlsx", ".xls", ".xlsm", ".numbers", ".ods"):
        raise UnreadableExport("this is a spreadsheet workbook, not CSV: export the device "
                               "list from Poly Lens as CSV (or save the sheet as CSV)")
    if not zipfile.is_zipfile(path):
        if path.suffix.lower() == ".zip":
            raise UnreadableExport("the zip file is damaged (perhaps cut off during the "
                                   "upload): zip the export again or upload the CSV")
        yield [read_source(path)]
        return
    if scratch is not None:
        private = tempfile.mkdtemp(prefix="zip-", dir=scratch)
        yield [read_source(extracted, entry) for entry, extracted in _unzip(path, Path(private))]
        return
    with tempfile.TemporaryDirectory(prefix="polyrecon-zip-") as private:
        yield [read_source(extracted, entry) for entry, extracted in _unzip(path, Path(private))]


def _unzip(path: Path, folder: Path) -> list[tuple[str, Path]]:
    """Copy a zip's CSV entries into `folder` under names of our own (so no entry name can
    reach outside it), bounded in entry count, size and compression ratio."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ZIP_ENTRIES:
                raise UnreadableExport(f"the zip holds {len(entries):,} entries (at most "
                                       f"{MAX_ZIP_ENTRIES}): upload the CSV exports themselves")
            wanted = [e for e in entries if not e.is_dir() and not e.filename.startswith(
                "__MACOSX/") and e.filename.lower().endswith((".csv", ".txt", ".tsv"))]
            if not wanted:
                names = ", ".join(repr(e.filename) for e in entries[:5]) or "nothing"
                raise UnreadableExport(f"the zip holds no CSV file (found {names}); zip the "
                                       f"Lens CSV export itself")
            extracted, total = [], 0
            for number, entry in enumerate(wanted, start=1):
                if entry.flag_bits & 0x1:
                    raise UnreadableExport(f"zip entry {entry.filename!r} is encrypted: upload "
                                           f"it without a password")
                target = folder / f"entry-{number:03d}.csv"
                total = _copy_bounded(archive, entry, target, total)
                extracted.append((entry.filename, target))
            return extracted
    except UnreadableExport:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError,
            OSError, NotImplementedError, ValueError, RuntimeError, IndexError, KeyError,
            OverflowError) as error:  # a damaged zip breaks zipfile in many ways
        raise UnreadableExport(f"the zip file is damaged or uses a feature we cannot read "
                               f"({type(error).__name__}); zip it again or upload the CSV"
                               ) from None


def _copy_bounded(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, target: Path,
                  total: int) -> int:
    written = 0
    with archive.open(entry) as source, target.open("wb") as sink:
        while chunk := source.read(1 << 20):
            written += len(chunk)
            total += len(chunk)
            if written > ZIP_RATIO_FREE_BYTES and written > entry.compress_size * MAX_ZIP_RATIO:
                raise UnreadableExport(f"zip entry {entry.filename!r} expands more than "
                                       f"{MAX_ZIP_RATIO}-fold: refused as a possible zip bomb")
            if total > MAX_UNZIPPED_BYTES:
                raise UnreadableExport(f"the zip expands to more than "
                                       f"{MAX_UNZIPPED_BYTES // 2**30} GiB: upload the CSV "
                                       f"exports themselves")
            sink.write(chunk)
    return total


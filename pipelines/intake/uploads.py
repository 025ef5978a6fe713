"""An upload opened safely: the file itself or the CSV entries of a `.zip` (bounded in entries,
size and ratio, under names of our own), decoded from whatever encoding it was saved in.
Anything unusable raises `UnreadableExport` with a sentence the partner can act on."""
from __future__ import annotations

import codecs
import os
import re
import struct
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, TypeVar

from pipelines.core.i18n import N_, Message

MAX_LINE_CHARS = 1_000_000
SCAN_BYTES = 8 << 20  # an upload is planned from chunks this large, never held whole
HEAD_CHARS = 2 * MAX_LINE_CHARS  # the text the header is looked for in: it fits any line
MAX_ZIP_ENTRIES = 100
MAX_ZIP_RATIO = 100  # CSV compresses 5-20 fold; far more is a zip bomb
ZIP_RATIO_FREE_BYTES = 1 << 20  # tiny entries may compress better, harmlessly
MAX_UNZIPPED_BYTES = 2 << 30


class UnreadableExport(Exception):
    """The file as a whole cannot be used; the message says why in plain words, in any
    language (the reason file and the notice are the partner's)."""

    def __init__(self, message: Message):
        super().__init__(str(message))
        self.message = message

    @classmethod
    def of(cls, text: str, **values) -> UnreadableExport:
        return cls(Message.of(text, **values))


def in_entry(entry: str | None, message: Message) -> Message:
    """A problem of one entry of a zip, said as such."""
    return Message.of(N_("in zip entry %(entry)s: %(problem)s"), entry=repr(entry),
                      problem=message) if entry else message


def _encoding(head: bytes) -> str:
    """The encoding an export's first bytes show; "utf-8" may still turn out cp1252 (Excel's
    "CSV" on Windows), which only the whole file can tell."""
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    head = head[:4096]
    if b"\x00" in head:
        # UTF-16 without BOM: every other byte of ASCII text is zero.
        if head[1::2].count(0) > len(head) // 4:
            return "utf-16-le"
        if head[0::2].count(0) > len(head) // 4:
            return "utf-16-be"
        raise UnreadableExport.of(N_("this is not a text file (it contains binary data); "
                                     "export the device list from Poly Lens as CSV"))
    return "utf-8"


def decode_export(raw: bytes) -> tuple[str, str]:
    """The text of an export and the encoding it was in."""
    encoding = _encoding(raw)
    if encoding == "utf-8-sig":
        return _decode(raw[len(codecs.BOM_UTF8):], "utf-8"), encoding
    if encoding != "utf-8":
        return _decode(raw, encoding), encoding
    try:
        return raw.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return _decode(raw, "cp1252"), "cp1252"


def _decode(raw: bytes, encoding: str) -> str:
    try:
        return raw.decode(encoding)
    except UnicodeDecodeError as error:
        raise _not_valid(encoding, error.start) from None


def _not_valid(encoding: str, byte: int) -> UnreadableExport:
    return UnreadableExport.of(N_("the text is not valid %(encoding)s (byte %(byte)s); save "
                                  "the export as UTF-8 CSV"), encoding=encoding, byte=str(byte))


@dataclass(frozen=True)
class Source:
    """One CSV of an upload, decoded: the file itself, or an entry of a `.zip`."""
    entry: str | None
    path: Path
    text: str
    encoding: str


def read_source(path: Path, entry: str | None = None) -> Source:
    try:
        text, encoding = decode_export(path.read_bytes())
    except UnreadableExport as error:
        raise UnreadableExport(in_entry(entry, error.message)) from None
    if len(text) > MAX_LINE_CHARS:  # only then can a line be too long
        _check_lines(text, 1, 0, entry)
    return Source(entry, path, text, encoding)


def _too_long(entry: str | None, line: int) -> UnreadableExport:
    return UnreadableExport(in_entry(entry, Message.of(
        N_("line %(line)s is longer than %(most)s characters: this is not a device export"),
        line=str(line), most=MAX_LINE_CHARS)))


_OVERLONG = re.compile(f"(?m)^[^\\n]{{{MAX_LINE_CHARS + 1}}}")
_WINDOW = MAX_LINE_CHARS // 2  # a longer line covers one such aligned stretch whole


def _check_lines(text: str, line: int, length: int, entry: str | None) -> tuple[int, int]:
    """No line longer than MAX_LINE_CHARS, across chunks: `line` is the number of the line
    the chunk begins in, `length` what the chunks before gave it. Returns both for the
    next chunk (searched in C: no list of lines is made)."""
    first = text.find("\n")
    if first == -1:
        if length + len(text) > MAX_LINE_CHARS:
            raise _too_long(entry, line)
        return line, length + len(text)
    if length + first > MAX_LINE_CHARS:
        raise _too_long(entry, line)
    # Only a stretch of _WINDOW characters without a line break can be part of a line that
    # is too long: looked for first (a find per stretch), the exact search only then.
    if any(text.find("\n", start, start + _WINDOW) == -1
           for start in range(first + 1, len(text) - _WINDOW + 1, _WINDOW)) \
            and (found := _OVERLONG.search(text, first + 1)):
        raise _too_long(entry, line + text.count("\n", 0, found.start()))
    return line + text.count("\n"), len(text) - text.rfind("\n") - 1


class TextScan(Protocol):
    """What a caller of `scan_source` learns from the whole text, chunk by chunk (with the
    chunk's line breaks, counted once for the line-length check)."""

    def feed(self, text: str, newlines: int) -> None: ...


S = TypeVar("S", bound=TextScan)
T = TypeVar("T")


class _NotUtf8(Exception):
    pass


def scan_source(path: Path, entry: str | None, scratch: Path, new_scan: Callable[[], S]
                ) -> tuple[Source, Path, S]:
    """An upload read once in chunks of SCAN_BYTES, never whole: checked as `read_source`
    checks it (encoding, line length), fed to a scan, written as UTF-8 to `scratch` when it is
    in another encoding. The Source holds only the head, the whole lines of the first chunk:
    enough for the header. Returns it, the path of the UTF-8 text and the scan."""
    try:
        with path.open("rb") as handle:
            encoding = _encoding(handle.read(4096))
        try:
            return _scan(path, entry, scratch, new_scan, encoding)
        except _NotUtf8:
            return _scan(path, entry, scratch, new_scan, "cp1252")
    except UnreadableExport as error:
        raise UnreadableExport(in_entry(entry, error.message)) from None


def _scan(path: Path, entry: str | None, scratch: Path, new_scan: Callable[[], S],
          encoding: str) -> tuple[Source, Path, S]:
    scan, decoder = new_scan(), codecs.getincrementaldecoder(encoding)()
    utf8 = path
    if encoding not in ("utf-8", "utf-8-sig"):  # DuckDB reads UTF-8 (a BOM sits in the header)
        descriptor, name = tempfile.mkstemp(suffix=".csv", dir=scratch)
        os.close(descriptor)
        utf8 = Path(name)
    head, offset, line, length = None, 0, 1, 0
    try:
        with path.open("rb") as handle, (nullcontext() if utf8 == path else utf8.open(
                "w", encoding="utf-8", newline="")) as copy:
            while True:
                raw = handle.read(SCAN_BYTES)
                try:
                    text = decoder.decode(raw, final=not raw)
                except UnicodeDecodeError as error:
                    if encoding == "utf-8":
                        raise _NotUtf8 from None
                    bom = len(codecs.BOM_UTF8) if encoding == "utf-8-sig" else 0
                    raise _not_valid(encoding.removesuffix("-sig"),
                                     offset + error.start - bom) from None
                offset += len(raw)
                chunk_starts_at = line
                line, length = _check_lines(text, line, length, entry)
                if head is None:  # the whole file, or the whole lines of its first part
                    head = text if len(raw) < SCAN_BYTES and len(text) <= HEAD_CHARS \
                        else text[:text.rfind("\n", 0, HEAD_CHARS) + 1]
                scan.feed(text, line - chunk_starts_at)
                if copy is not None:
                    copy.write(text)
                if not raw:
                    break
    except BaseException:
        if utf8 != path:
            utf8.unlink()
        raise
    return Source(entry, path, head, encoding), utf8, scan


@contextmanager
def csv_sources(path: Path, scratch: Path | None = None,
                open_source: Callable[[Path, str | None], T] = read_source) -> Iterator[list[T]]:
    """The CSV sources of an upload: the file itself, or each CSV inside a `.zip`, extracted
    to a private folder in `scratch` (kept), or one that lives as long as the context; each
    opened by `open_source` (path, zip entry)."""
    if path.suffix.lower() in (".xlsx", ".xls", ".xlsm", ".numbers", ".ods"):
        raise UnreadableExport.of(N_("this is a spreadsheet workbook, not CSV: export the "
                                     "device list from Poly Lens as CSV (or save the sheet as "
                                     "CSV)"))
    if not zipfile.is_zipfile(path):
        if path.suffix.lower() == ".zip":
            raise UnreadableExport.of(N_("the zip file is damaged (perhaps cut off during "
                                         "the upload): zip the export again or upload the "
                                         "CSV"))
        yield [open_source(path, None)]
        return
    if scratch is not None:
        private = tempfile.mkdtemp(prefix="zip-", dir=scratch)
        yield [open_source(extracted, entry) for entry, extracted in _unzip(path, Path(private))]
        return
    with tempfile.TemporaryDirectory(prefix="polyrecon-zip-") as private:
        yield [open_source(extracted, entry) for entry, extracted in _unzip(path, Path(private))]


def _unzip(path: Path, folder: Path) -> list[tuple[str, Path]]:
    """Copy a zip's CSV entries into `folder` under names of our own (so no entry name can
    reach outside it), bounded in entry count, size and compression ratio."""
    try:
        with zipfile.ZipFile(path) as archive:
            entries = archive.infolist()
            if len(entries) > MAX_ZIP_ENTRIES:
                raise UnreadableExport.of(N_("the zip holds %(entries)s entries (at most "
                                             "%(most)s): upload the CSV exports themselves"),
                                          entries=len(entries), most=MAX_ZIP_ENTRIES)
            wanted = [e for e in entries if not e.is_dir() and not e.filename.startswith(
                "__MACOSX/") and e.filename.lower().endswith((".csv", ".txt", ".tsv"))]
            if not wanted:
                names = (", ".join(repr(e.filename) for e in entries[:5])
                         or Message.of(N_("nothing")))
                raise UnreadableExport.of(N_("the zip holds no CSV file (found %(names)s); "
                                             "zip the Lens CSV export itself"), names=names)
            extracted, total = [], 0
            for number, entry in enumerate(wanted, start=1):
                if entry.flag_bits & 0x1:
                    raise UnreadableExport.of(N_("zip entry %(entry)s is encrypted: upload "
                                                 "it without a password"),
                                              entry=repr(entry.filename))
                target = folder / f"entry-{number:03d}.csv"
                total = _copy_bounded(archive, entry, target, total)
                extracted.append((entry.filename, target))
            return extracted
    except UnreadableExport:
        raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, zlib.error, struct.error, EOFError,
            OSError, NotImplementedError, ValueError, RuntimeError, IndexError, KeyError,
            OverflowError) as error:  # a damaged zip breaks zipfile in many ways
        raise UnreadableExport.of(N_("the zip file is damaged or uses a feature we cannot "
                                     "read (%(error)s); zip it again or upload the CSV"),
                                  error=type(error).__name__) from None


def _copy_bounded(archive: zipfile.ZipFile, entry: zipfile.ZipInfo, target: Path,
                  total: int) -> int:
    written = 0
    with archive.open(entry) as source, target.open("wb") as sink:
        while chunk := source.read(1 << 20):
            written += len(chunk)
            total += len(chunk)
            if written > ZIP_RATIO_FREE_BYTES and written > entry.compress_size * MAX_ZIP_RATIO:
                raise UnreadableExport.of(N_("zip entry %(entry)s expands more than "
                                             "%(ratio)s-fold: refused as a possible zip bomb"),
                                          entry=repr(entry.filename), ratio=MAX_ZIP_RATIO)
            if total > MAX_UNZIPPED_BYTES:
                raise UnreadableExport.of(N_("the zip expands to more than %(gib)s GiB: "
                                             "upload the CSV exports themselves"),
                                          gib=MAX_UNZIPPED_BYTES // 2**30)
            sink.write(chunk)
    return total


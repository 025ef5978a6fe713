"""Writing files so that no reader ever sees half of one."""
from __future__ import annotations

import os
from pathlib import Path


def write_atomically(path: Path, text: str) -> None:
    write_bytes_atomically(path, text.encode("utf-8"))


def write_bytes_atomically(path: Path, data: bytes) -> None:
    """Write a temporary name, flush it to disk, rename: a crash leaves the old file or the
    new one, never half of one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    with temporary.open("wb") as handle:
        handle.write(data)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)


def free_path(wanted: Path, reserved: set[Path] = frozenset()) -> Path:
    """`wanted`, or `name (2).ext`, `name (3).ext` … if taken (or `reserved` for a file not
    moved yet): nothing is overwritten."""
    candidate, number = wanted, 1
    while candidate in reserved or candidate.exists() or candidate.is_symlink() \
            or candidate.with_name(candidate.name + ".reason.txt").exists():
        number += 1
        candidate = wanted.with_name(f"{wanted.stem} ({number}){wanted.suffix}")
    return candidate

"""Writing files so that a crash never leaves half of one: temp file, fsync, rename, fsync the folder."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_temp(path: Path, data: bytes, *, mode: int = 0o644) -> Path:
    """`data` in a new file beside `path`, flushed to disk; the caller renames or links it."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    try:
        os.write(fd, data)
        os.fsync(fd)
    finally:
        os.close(fd)
    return tmp


def write_atomic(path: str | Path, data: bytes, *, mode: int = 0o644) -> None:
    """Replace `path` with `data`: readers see the old file or the new one, never half."""
    path = Path(path)
    tmp = write_temp(path, data, mode=mode)
    os.replace(tmp, path)
    fsync_dir(path.parent)

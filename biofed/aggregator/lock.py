"""One harvest at a time per catalogue database: an advisory lock on `<db>.lock`.

The lock is held by the process (fcntl.flock), so it disappears when the
process dies, even on SIGKILL: a crashed run never blocks the next one.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path

from biofed.errors import BiofedError


class HarvestLocked(BiofedError):
    pass


class HarvestLock:
    def __init__(self, db_path: str | Path):
        self.path = Path(str(db_path) + ".lock")
        self.fd: int | None = None

    def __enter__(self) -> "HarvestLock":
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise HarvestLocked(f"another harvest of {self.path.with_suffix('')} is running (lock {self.path} is held)") from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self.fd = fd
        return self

    def __exit__(self, *exc) -> None:
        if self.fd is not None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)
            self.fd = None

"""One writer per (store, source): an advisory file lock next to the store.

`flock` is released by the kernel when the holder dies, so a lock left by a killed sync is
never stale: the next run simply gets it.
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from .errors import LockedError


class SourceLock:
    """Held while a source syncs into a store; a second holder fails at once."""

    def __init__(self, db_path: Path, source: str) -> None:
        self.path = db_path.with_name(f"{db_path.name}.{source}.lock")
        self.source = source
        self.db_name = db_path.name
        self._fd: int | None = None

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
            os.close(fd)
            raise LockedError(
                f"another sync of '{self.source}' into {self.db_name} is running "
                f"(pid {holder}); try again when it has finished"
            ) from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    def __enter__(self) -> SourceLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.release()

"""Advisory file locks next to the store: one writer per (store, source), one facts refresh per store.

`flock` is released by the kernel when the holder dies, so a lock left by a killed sync is
never stale: the next run simply gets it. A second sync either fails at once (the default: a
scheduled run that overlaps the previous one skips the source) or, with `wait`, polls until the
holder finishes — polling rather than a blocking flock so that SIGTERM can end the wait.
"""

from __future__ import annotations

import fcntl
import math
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType

from .errors import Interrupted, LockedError, StoreError


class SourceLock:
    """Held while a source syncs into a store; a second holder fails at once or waits."""

    def __init__(self, db_path: Path, source: str) -> None:
        self.path = db_path.with_name(f"{db_path.name}.{source}.lock")
        self.source = source
        self.db_name = db_path.name
        self._fd: int | None = None

    def acquire(self, wait: float | None = None, stop: threading.Event | None = None) -> None:
        """Take the lock; `wait` seconds (math.inf: no limit) for a running holder to finish.

        A set `stop` event ends the wait with `Interrupted`.
        """
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        deadline = time.monotonic() + (wait or 0.0)
        while not _try_flock(fd):
            if stop is not None and stop.is_set():
                os.close(fd)
                raise Interrupted("interrupted while waiting for another sync; rerun to continue")
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                holder = os.pread(fd, 32, 0).decode(errors="replace").strip() or "?"
                os.close(fd)
                waited = "" if not wait else (" after waiting" if math.isinf(wait) else f" after waiting {wait:g} s")
                raise LockedError(
                    f"another sync of '{self.source}' into {self.db_name} is running "
                    f"(pid {holder}){waited}; try again when it has finished"
                )
            pause = min(0.05, remaining)
            if stop is not None:
                stop.wait(pause)
            else:
                time.sleep(pause)
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        self._fd = fd

    def is_held(self) -> bool:
        """Whether some process holds the lock now (a probe: takes and drops it, writes nothing)."""
        try:
            fd = os.open(self.path, os.O_RDONLY)
        except FileNotFoundError:
            return False
        try:
            if _try_flock(fd):
                fcntl.flock(fd, fcntl.LOCK_UN)
                return False
            return True
        finally:
            os.close(fd)

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


def _try_flock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return True
    except BlockingIOError:
        return False


@contextmanager
def facts_refresh_lock(db_path: Path) -> Iterator[None]:
    """Held while the KPI facts of a store are refreshed: one refresh at a time, across processes.

    A large refresh commits its tickets part by part (core/facts_parallel.py); another refresh
    meanwhile would take the same claimed tickets or number new tickets alike. Waits for a running
    refresh (seconds); the kernel releases the lock of a killed one.
    """
    path = db_path.with_name(f"{db_path.name}-facts.lock")
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise StoreError(f"cannot lock the KPI facts of {db_path.name}: {exc.strerror} ({path})") from None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)

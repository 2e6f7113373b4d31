"""The second core of a facts refresh: a forked process with its own SQLite connection.

Two shapes, both fed by core/facts.py's builder (`changes_of`, read-only on any connection):

- `StreamingWorker` (full rebuild): the parent keeps its one write transaction — a rebuild is
  all or nothing — and the worker computes a share of the tickets, sending the writes back in
  parts that the parent applies as they arrive.
- `PartsRefresh` (large incremental refresh): both processes take parts from a shared counter,
  compute them and commit each in its own transaction, together with the removal of the part's
  claims (`facts_claimed`, schema 009). Writing then overlaps the other process's computing
  instead of queueing behind it at the end, and a thread copies committed parts from the WAL into
  the database meanwhile (a commit's own checkpoint would wait for the disk with a core idle).

The forked child never touches the parent's connection and leaves with `os._exit`. Whatever a
failed worker did not finish, the parent computes itself.
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import queue
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Protocol

from .store import Store

#: Page cache while refreshing (KiB), restored afterwards. It filled up to its size on any store
#: larger than it (256 MB made a 100k-ticket sync peak at ~560 MB RSS); the OS file cache serves
#: the pages anyway: a 60k-ticket rebuild and 1 % refresh took the same time with 16 MB as 256 MB.
CACHE_KIB = 16 * 1024
#: The parent's share of a rebuild chunk: besides computing it, the parent writes every change (its
#: own while the worker still computes, then the worker's parts as they arrive), so it takes less.
PARENT_SHARE = 0.4
#: The rebuild worker sends its results in this many parts, so the parent writes the early ones
#: while the worker computes the rest and only the last part's writes come after it is done.
WORKER_PARTS = 4
#: An incremental refresh is cut into parts that shrink as they go (each a quarter of what is
#: left, at most CHUNK tickets, at least this many): few commits early on, and parts small
#: enough at the end that the two processes finish together.
SMALLEST_PART = 200
#: How often the checkpoint thread of an incremental refresh copies committed parts (seconds):
#: often, so that little is left for the final checkpoint (every 0.2 s left 0.2 s of it, 0.01 s 0.015 s).
CHECKPOINT_EVERY = 0.01

log = logging.getLogger("kpisync.facts")

#: One write step: an SQL statement and the parameter rows it is executed with.
Write = tuple[str, list[tuple[Any, ...]]]
#: (tid, source, ticket_id) of a ticket to compute.
Todo = Sequence[tuple[int, str, str]]


class Builder(Protocol):
    """What the workers need of core/facts.py's builder."""

    store: Store
    conn: sqlite3.Connection

    def changes_of(self, conn: sqlite3.Connection, todo: Todo, fresh: bool) -> list[Write]: ...


def apply(conn: sqlite3.Connection, changes: list[Write]) -> None:
    """Runs the writes of `changes_of` on `conn`, inside the caller's transaction."""
    for sql, rows in changes:
        conn.executemany(sql, rows)


def can_fork() -> bool:
    """Fork only where it is cheap and safe: POSIX, two cores, and no other thread (a lock held by
    another thread at fork time would stay held in the child)."""
    return (
        os.name == "posix"
        and "fork" in multiprocessing.get_all_start_methods()
        and (os.cpu_count() or 1) > 1
        and threading.active_count() == 1
    )


def _connect(path: Path) -> sqlite3.Connection:
    """The worker's own connection, set up like the store's for reading and writing."""
    conn = sqlite3.connect(str(path), timeout=30, isolation_level=None)
    conn.execute("PRAGMA synchronous = NORMAL")
    conn.execute(f"PRAGMA cache_size = {-CACHE_KIB}")
    return conn


class StreamingWorker:
    """Computes the changes of some tickets in a forked process, for the parent to write.

    The parent keeps its write transaction; the worker reads the last committed state through
    WAL, which is what the parent read too. The worker sends its results in parts, in order,
    through a queue whose feeder thread buffers them: over a bare pipe the worker would stall on
    its first part until the parent, busy with its own share, read it.
    """

    def __init__(self, builder: Builder, todo: Todo, fresh: bool) -> None:
        self.builder, self.fresh = builder, fresh
        size = -(-len(todo) // WORKER_PARTS)
        self.parts = [list(todo[i : i + size]) for i in range(0, len(todo), size)]
        context = multiprocessing.get_context("fork")
        self.queue: Any = context.Queue()
        self.process = context.Process(target=self._run, daemon=True)

    def __enter__(self) -> StreamingWorker:
        self.process.start()
        return self

    def __exit__(self, *exc: object) -> None:
        if self.process.is_alive():
            self.process.kill()
        self.process.join()

    def _run(self) -> None:
        try:
            conn = _connect(self.builder.store.path)
            for part in self.parts:
                self.queue.put(("ok", self.builder.changes_of(conn, part, self.fresh)))
        except BaseException as exc:  # noqa: BLE001 — reported to the parent, which redoes the work
            self.queue.put(("error", repr(exc)))
        finally:
            self.queue.close()
            self.queue.join_thread()  # everything handed to the pipe before leaving
            os._exit(0)

    def _receive(self) -> tuple[str, Any]:
        """The next message; ("error", ...) once the worker is gone without sending it."""
        while True:
            try:
                return self.queue.get(timeout=0.2)  # type: ignore[no-any-return]
            except queue.Empty:
                if not self.process.is_alive():
                    try:
                        return self.queue.get(timeout=0.2)  # type: ignore[no-any-return]
                    except queue.Empty:
                        return "error", "worker died"

    def results(self) -> Iterator[list[Write]]:
        """The changes of each part, in order: from the worker, else computed here."""
        for index, part in enumerate(self.parts):
            status, payload = self._receive()
            if status != "ok":
                log.warning("facts worker failed (%s); computing its tickets here", payload)
                for rest in self.parts[index:]:
                    yield self.builder.changes_of(self.builder.conn, rest, self.fresh)
                return
            yield payload


class PartsRefresh:
    """Refreshes claimed tickets on two cores, part by part, each part committed on its own.

    Every ticket of `todo` is in `facts_claimed` (committed before this runs); a part's commit
    writes its facts and deletes its claims, so a kill between parts loses nothing: the next
    refresh computes whatever is still claimed. The caller holds the store's refresh lock, so no
    other refresh numbers new tickets or takes these claims meanwhile.
    """

    def __init__(self, builder: Builder, todo: Todo, part_size: int) -> None:
        self.builder = builder
        self.parts: list[list[tuple[int, str, str]]] = []
        start = 0
        while start < len(todo):
            size = max(SMALLEST_PART, min(part_size, -(-(len(todo) - start) // 4)))
            self.parts.append(list(todo[start : start + size]))
            start += size

    def run(self) -> None:
        """Both processes take parts until none is left; then the parent computes any part the
        worker took but did not commit, and checkpoints what the thread has not."""
        conn = self.builder.conn
        autocheckpoint = int(conn.execute("PRAGMA wal_autocheckpoint").fetchone()[0])
        conn.execute("PRAGMA wal_autocheckpoint = 0")  # the thread checkpoints, beside the computing
        try:
            error = self._share_with_worker(conn)
        except OSError as exc:  # no second process (fork or pipe refused): all parts are left here
            error = f"not started: {exc}"
        finally:
            conn.execute(f"PRAGMA wal_autocheckpoint = {autocheckpoint}")
        unfinished = self._unfinished()
        if unfinished:
            log.warning("facts worker failed (%s); computing its tickets here", error)
            for part in unfinished:
                self._commit(conn, part)
        conn.execute("PRAGMA wal_checkpoint(PASSIVE)")

    def _share_with_worker(self, conn: sqlite3.Connection) -> str | None:
        """Takes parts here while the forked worker takes the others; the worker's error, if any."""
        context = multiprocessing.get_context("fork")
        counter = context.Value("i", 0)
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=self._work, args=(counter, sender), daemon=True)
        checkpoints = _Checkpointer(self.builder.store.path)
        try:
            process.start()
            sender.close()
            checkpoints.start()  # a thread: only after the fork
            self._take_parts(conn, counter)
            process.join()
            return receiver.recv() if receiver.poll() else "worker died"  # type: ignore[no-any-return]
        finally:
            if process.pid is not None:
                if process.is_alive():
                    process.kill()
                process.join()
            sender.close()
            receiver.close()
            checkpoints.stop()

    def _take_parts(self, conn: sqlite3.Connection, counter: Any) -> None:
        while True:
            with counter.get_lock():
                index = counter.value
                counter.value += 1
            if index >= len(self.parts):
                return
            self._commit(conn, self.parts[index])

    def _commit(self, conn: sqlite3.Connection, part: Todo) -> None:
        """Computes a part on `conn` (reading the last committed state), then writes it and drops
        its claims in one transaction."""
        changes = self.builder.changes_of(conn, part, False)
        with self.builder.store.transaction(conn):
            apply(conn, changes)
            conn.executemany("DELETE FROM facts_claimed WHERE source = ? AND ticket_id = ?", [(s, t) for _, s, t in part])

    def _work(self, counter: Any, sender: Any) -> None:
        try:
            conn = _connect(self.builder.store.path)
            conn.execute("PRAGMA wal_autocheckpoint = 0")  # the parent's thread checkpoints
            self._take_parts(conn, counter)
            sender.send(None)
        except BaseException as exc:  # noqa: BLE001 — reported to the parent, which redoes the work
            sender.send(repr(exc))
        finally:
            sender.close()
            os._exit(0)

    def _unfinished(self) -> list[list[tuple[int, str, str]]]:
        """The parts, or what is left of them, whose tickets are still claimed."""
        claimed = {tuple(row) for row in self.builder.conn.execute("SELECT source, ticket_id FROM facts_claimed")}
        left = ([item for item in part if (item[1], item[2]) in claimed] for part in self.parts)
        return [part for part in left if part]


class _Checkpointer(threading.Thread):
    """Copies committed pages from the WAL into the database every CHECKPOINT_EVERY seconds, on
    its own connection, until stopped. A failure just ends it: the refresh's final checkpoint (on
    the parent's connection) reports what matters."""

    def __init__(self, path: Path) -> None:
        super().__init__(name="kpisync-facts-checkpoints", daemon=True)
        self.path = path
        self.stopped = threading.Event()

    def run(self) -> None:
        try:
            conn = sqlite3.connect(str(self.path), timeout=30, isolation_level=None)
        except sqlite3.Error:
            return
        try:
            while not self.stopped.wait(CHECKPOINT_EVERY):
                conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            return
        finally:
            conn.close()

    def stop(self) -> None:
        self.stopped.set()
        if self.is_alive():
            self.join()

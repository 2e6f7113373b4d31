"""`kpisync backup PATH`: a consistent, standalone copy of a store that is being written."""

from __future__ import annotations

import json
import sqlite3
import threading
from pathlib import Path

from kpisync.core.models import Group
from kpisync.core.store import Store

from .conftest import cli


def fill(path: Path, batches: int, start: int = 0, size: int = 50) -> None:
    """Batches of groups, each committed with a state that counts the groups written so far."""
    with Store(path) as store:
        for b in range(start, start + batches):
            groups = [Group(external_id=str(b * size + i), name=f"group {b * size + i}") for i in range(size)]
            store.write_batch("zendesk", "groups", groups, {"written": (b + 1) * size})


def snapshot(path: Path) -> tuple[int, int, str]:
    conn = sqlite3.connect(path)
    try:
        groups = conn.execute("SELECT count(*) FROM groups").fetchone()[0]
        state = conn.execute("SELECT state FROM sync_state WHERE stream = 'groups'").fetchone()[0]
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
        return int(groups), int(json.loads(state)["written"]), str(mode)
    finally:
        conn.close()


def test_backup_copies_a_standalone_file(tmp_path: Path, env: dict[str, str]) -> None:
    db = tmp_path / "s.db"
    fill(db, 4)
    done = cli("backup", str(tmp_path / "copy.db"), "--db", str(db), env=env, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"backed up {db} to {tmp_path / 'copy.db'}: ") and "integrity ok" in done.stdout
    assert snapshot(tmp_path / "copy.db") == (200, 200, "delete")
    assert not (tmp_path / "copy.db-wal").exists()
    assert sorted(p.name for p in tmp_path.iterdir() if "partial" in p.name) == []

    again = cli("backup", str(tmp_path / "copy.db"), "--db", str(db), env=env, cwd=tmp_path)
    assert again.returncode == 5 and "copy.db already exists (use --force to replace it)" in again.stderr
    fill(db, 1, start=4)
    assert cli("backup", str(tmp_path / "copy.db"), "--db", str(db), "--force", env=env, cwd=tmp_path).returncode == 0
    assert snapshot(tmp_path / "copy.db")[:2] == (250, 250)

    folder = tmp_path / "backups"
    folder.mkdir()
    assert cli("backup", str(folder), "--db", str(db), env=env, cwd=tmp_path).returncode == 0
    [copy] = list(folder.iterdir())
    assert copy.name.startswith("kpisync-") and copy.suffix == ".db"

    missing = cli("backup", str(tmp_path / "x.db"), "--db", str(tmp_path / "nope.db"), env=env, cwd=tmp_path)
    assert missing.returncode == 5 and "does not exist" in missing.stderr


def test_backup_during_writes_is_one_consistent_snapshot(tmp_path: Path, env: dict[str, str]) -> None:
    """Rows and the state committed with them always agree in the copy, while a writer commits."""
    db = tmp_path / "s.db"
    fill(db, 20)
    stop = threading.Event()

    def writer() -> None:
        batch = 20
        while not stop.is_set() and batch < 2000:
            fill(db, 1, start=batch)
            batch += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        copies = []
        for n in range(3):
            target = tmp_path / f"copy{n}.db"
            done = cli("backup", str(target), "--db", str(db), env=env, cwd=tmp_path)
            assert done.returncode == 0, done.stderr
            copies.append(snapshot(target))
    finally:
        stop.set()
        thread.join()
    final_groups = snapshot(db)[0]
    for groups, written, mode in copies:
        assert groups == written and mode == "delete"
        assert 1000 <= groups <= final_groups
    assert copies[0][0] < final_groups  # the writer kept committing after the first copy

"""Per-source locks: a busy source is skipped with a clear message or waited for (`--wait`);
a holder killed with SIGKILL never leaves a stale lock.

The source points at a closed port and runs with --no-check, so the sync takes the lock, fails
fast with "connection refused", and which of "locked" and "failed" a run ends with tells whether
it got the lock.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from kpisync.core.errors import Interrupted, LockedError
from kpisync.core.lock import SourceLock

from .conftest import closed_port, kpisync, start_kpisync, write_config

HOLD = """
import sys
from pathlib import Path
from kpisync.core.lock import SourceLock
lock = SourceLock(Path(sys.argv[1]), "zendesk")
lock.acquire()
print("held", flush=True)
sys.stdin.readline()  # hold until the test says so (or dies)
lock.release()
print("released", flush=True)
sys.stdin.readline()
"""


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    write_config(
        tmp_path / "kpisync.toml",
        {"zendesk": {"base_url": f"http://127.0.0.1:{closed_port()}", "email": "ops@acme.test", "api_token": "tok-lock-test"}},
    )
    return tmp_path


def hold_lock(db: Path) -> subprocess.Popen[str]:
    """Another process holding the lock of source `zendesk` until a line arrives on its stdin."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(db)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
    return holder


def started(process: subprocess.Popen[str]) -> None:
    """Wait for the sync's first log line: it is about to take the locks."""
    assert process.stderr is not None and "sync started: zendesk" in process.stderr.readline()
    time.sleep(0.2)
    assert process.poll() is None


def test_busy_source_is_skipped_and_a_killed_holder_leaves_no_stale_lock(project: Path, env: dict[str, str]) -> None:
    db = project / "s.db"
    holder = hold_lock(db)
    try:
        busy = kpisync("sync", "--db", str(db), "--no-check", env=env, cwd=project)
        assert busy.returncode == LockedError.exit_code == 6
        assert f"another sync of 'zendesk' into s.db is running (pid {holder.pid}); try again when it has finished (or use --wait)" in busy.stderr
        assert "locked" in busy.stdout
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    with SourceLock(db, "zendesk"):  # the kernel dropped the dead holder's flock: no stale lock
        pass  # acquire() never waits: it would have raised LockedError
    after = kpisync("sync", "--db", str(db), "--no-check", env=env, cwd=project)
    assert after.returncode == 1  # it got the lock; the source itself is unreachable
    assert "cannot reach http://127.0.0.1:" in after.stderr and "another sync" not in after.stderr


def test_wait_takes_the_lock_when_the_holder_finishes(project: Path, env: dict[str, str]) -> None:
    db = project / "s.db"
    holder = hold_lock(db)
    try:
        waiting = start_kpisync("sync", "--db", str(db), "--no-check", "--wait", env=env, cwd=project)
        started(waiting)  # still running: it waits instead of skipping
        assert holder.stdin is not None and holder.stdout is not None
        holder.stdin.write("release\n")
        holder.stdin.flush()
        assert holder.stdout.readline().strip() == "released"
        _, stderr = waiting.communicate(timeout=30)
    finally:
        holder.kill()
        holder.wait()
    assert waiting.returncode == 1 and "another sync" not in stderr, stderr  # got the lock; the API is down
    assert "cannot reach http://127.0.0.1:" in stderr


def test_wait_timeout_gives_up_and_sigterm_ends_a_wait(project: Path, env: dict[str, str]) -> None:
    db = project / "s.db"
    holder = hold_lock(db)
    try:
        timed_out = kpisync("sync", "--db", str(db), "--no-check", "--wait", "--wait-timeout", "0.3s", env=env, cwd=project)
        assert timed_out.returncode == 6
        assert f"(pid {holder.pid}) after waiting 0.3 s; try again when it has finished" in timed_out.stderr

        waiting = start_kpisync("sync", "--db", str(db), "--no-check", "--wait", env=env, cwd=project)
        started(waiting)
        waiting.send_signal(signal.SIGTERM)
        _, stderr = waiting.communicate(timeout=5)
        assert waiting.returncode == Interrupted.exit_code
        assert "interrupted while waiting for another sync; rerun to continue" in stderr
    finally:
        holder.kill()
        holder.wait()

"""Shared set-up of the unattended-operation tests: a sandboxed environment for `kpisync`,
small help-desk worlds behind Zendesk simulators, and config files.

`kpisync(...)` runs a real process — for what is about processes: signals, exit codes, locks,
concurrent runs, what a run leaves behind. `cli(...)` runs the same entry point in-process with
the same sandbox (environment, working folder, stdin, keyring) for the rest, to keep the suite
fast. HOME, XDG dirs and the keyring always point into the test's folder.
"""

from __future__ import annotations

import io
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import redirect_stderr, redirect_stdout
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).parent
START = datetime(2024, 1, 1)
TIME_SCALE = "2000"  # client clock: a 6 s export pacing wait costs 3 ms


def kpisync_executable() -> str:
    beside = Path(sys.executable).parent / "kpisync"
    return str(beside) if beside.exists() else str(shutil.which("kpisync"))


@pytest.fixture()
def env(tmp_path: Path) -> dict[str, str]:
    """Environment of a kpisync subprocess: no inherited KPISYNC_*, no real home or keyring."""
    base = {k: v for k, v in os.environ.items() if not k.startswith(("KPISYNC_", "PYTHON_KEYRING"))}
    home = tmp_path / "home"
    home.mkdir()
    base.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        XDG_DATA_HOME=str(home / ".local" / "share"),
        KPISYNC_TIME_SCALE=TIME_SCALE,
        PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        COLUMNS="200",
    )
    return base


def with_file_keyring(env: dict[str, str], file: Path) -> dict[str, str]:
    """`env` whose keyring is a JSON file (tests/ops/file_keyring.py)."""
    return dict(
        env,
        PYTHON_KEYRING_BACKEND="file_keyring.FileKeyring",
        KPISYNC_TEST_KEYRING_FILE=str(file),
        PYTHONPATH=os.pathsep.join(filter(None, [str(HERE), env.get("PYTHONPATH", "")])),
    )


def kpisync(
    *args: str, env: Mapping[str, str], cwd: Path, input: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """Run `kpisync ARGS` to its end."""
    return subprocess.run(
        [kpisync_executable(), *args], env=dict(env), cwd=cwd, input=input, capture_output=True, text=True, timeout=timeout
    )


@dataclass
class CliResult:
    returncode: int
    stdout: str
    stderr: str


def cli(*args: str, env: Mapping[str, str], cwd: Path, input: str | None = None) -> CliResult:
    """`kpisync ARGS` in this process (kpisync.cli.main.run), sandboxed like `kpisync(...)`."""
    import keyring

    from kpisync.cli.main import run

    saved = (dict(os.environ), os.getcwd(), sys.argv, sys.stdin, keyring.get_keyring())
    out, err = io.StringIO(), io.StringIO()
    code = 0
    try:
        os.environ.clear()
        os.environ.update(env)
        os.chdir(cwd)
        sys.argv, sys.stdin = ["kpisync", *args], io.StringIO(input or "")
        keyring.set_keyring(_keyring_of(env))
        with redirect_stdout(out), redirect_stderr(err):
            try:
                run()
            except SystemExit as exc:
                code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    finally:
        os.environ.clear()
        os.environ.update(saved[0])
        os.chdir(saved[1])
        sys.argv, sys.stdin = saved[2], saved[3]
        keyring.set_keyring(saved[4])
    return CliResult(code, out.getvalue(), err.getvalue())


def _keyring_of(env: Mapping[str, str]) -> Any:
    import keyring.core

    name = env.get("PYTHON_KEYRING_BACKEND", "keyring.backends.null.Keyring")
    if name == "file_keyring.FileKeyring":
        from .file_keyring import FileKeyring

        return FileKeyring()
    return keyring.core.load_keyring(name)


def start_kpisync(*args: str, env: Mapping[str, str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [kpisync_executable(), *args], env=dict(env), cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )


def closed_port() -> int:
    """A local port nothing listens on (connection refused)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return str(value)
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def write_config(path: Path, sources: Mapping[str, Mapping[str, Any]]) -> Path:
    lines = []
    for name, table in sources.items():
        lines.append(f"[sources.{name}]")
        lines += [f"{key} = {toml_value(value)}" for key, value in table.items()]
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


def rows(db: Path, table: str, source: str | None = None) -> list[tuple[Any, ...]]:
    """Every row of `table` (without synced_at), sorted: what "the same store" compares."""
    conn = sqlite3.connect(db)
    try:
        columns = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "synced_at"]
        where, params = ("WHERE source = ?", (source,)) if source else ("", ())
        return sorted(conn.execute(f"SELECT {', '.join(columns)} FROM {table} {where}", params).fetchall(), key=repr)
    finally:
        conn.close()


def count(db: Path, table: str, source: str | None = None) -> int:
    conn = sqlite3.connect(db)
    try:
        if source is None:
            return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])
        return int(conn.execute(f"SELECT count(*) FROM {table} WHERE source = ?", (source,)).fetchone()[0])
    finally:
        conn.close()


@pytest.fixture(scope="session")
def small_worlds() -> Iterator[Any]:
    """Factory of small deterministic worlds (weeks of a ~10 tickets/day help desk)."""
    from kpisync.fixtures.world import UTC, generate_world

    def make(seed: int, days: int = 20, per_day: float = 8) -> Any:
        start = START.replace(tzinfo=UTC)
        return generate_world(seed, start, start + timedelta(days=days), tickets_per_day=per_day)

    yield make

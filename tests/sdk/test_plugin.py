"""A third-party connector: `kpisync new-connector` scaffolds it, its own tests pass before it is
installed, `pip install` registers it, and `kpisync connectors list` and `kpisync pull` use it."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

NAME = "acmeplugin"


def run(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)


def kpisync(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return run(sys.executable, "-m", "kpisync.cli", *args, cwd=cwd, env=env)


@pytest.mark.plugin_install
def test_a_scaffolded_plugin_installs_lists_and_pulls(tmp_path: Path) -> None:
    created = kpisync("new-connector", NAME, "--dir", str(tmp_path), cwd=tmp_path)
    assert created.returncode == 0, created.stderr
    package = tmp_path / f"kpisync-{NAME}"
    assert sorted(p.name for p in package.iterdir()) == ["README.md", f"kpisync_{NAME}", "pyproject.toml", "tests"]

    # Its tests (the conformance suite) pass the moment it is created, before any install.
    tests = run(sys.executable, "-m", "pytest", "-p", "no:cacheprovider", cwd=package)
    assert tests.returncode == 0, tests.stdout[-2000:] + tests.stderr[-2000:]
    assert "7 passed" in tests.stdout

    install = run(sys.executable, "-m", "pip", "install", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
                  "-q", str(package), cwd=tmp_path)  # fmt: skip
    assert install.returncode == 0, install.stderr[-2000:]
    try:
        listed = kpisync("connectors", "list", "--json", cwd=tmp_path)
        assert listed.returncode == 0, listed.stderr
        row = next(r for r in json.loads(listed.stdout) if r["name"] == NAME)
        assert row["module"] == f"kpisync_{NAME}.connector:AcmepluginConnector" and row["kind"] == "helpdesk"
        assert "api_key" in row["settings"]

        importlib.invalidate_caches()
        simulator = importlib.import_module(f"kpisync_{NAME}.simulator")
        world = simulator.sample_world()
        with simulator.Simulator(world, api_key="plugin-key-123") as sim:
            env = {k: v for k, v in os.environ.items() if not k.startswith("KPISYNC_")}
            env.update(KPISYNC_ACMEPLUGIN_BASE_URL=sim.url, KPISYNC_ACMEPLUGIN_API_KEY="plugin-key-123",
                       HOME=str(tmp_path), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring")  # fmt: skip
            pulled = kpisync("pull", NAME, "--db", str(tmp_path / "kpi.db"), "--json", cwd=tmp_path, env=env)
        assert pulled.returncode == 0, pulled.stderr
        summary = json.loads(pulled.stdout)
        assert summary["status"] == "success"
        assert {s["name"]: s["records"] > 0 for s in summary["streams"]} == {"users": True, "tickets": True}
        assert summary["records"] == len(world.users()) + len(world.tickets) + sum(1 for _ in world.all_comments())
    finally:
        run(sys.executable, "-m", "pip", "uninstall", "-y", "-q", f"kpisync-{NAME}", cwd=tmp_path)
        sys.modules.pop(f"kpisync_{NAME}.simulator", None)
        sys.modules.pop(f"kpisync_{NAME}", None)

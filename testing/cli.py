"""Running `kpisync` as a real process against a simulator: environment, entry-point shim."""

from __future__ import annotations

import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any

from .harness import Harness, env_value


def cli_env(harness: Harness, settings: dict[str, Any], db: Path, home: Path) -> dict[str, str]:
    """A clean environment: the settings as KPISYNC_<SOURCE>_<FIELD>, the scaled clock, a
    private HOME (no user config or keyring), and the connector importable even when its
    package is not installed (see `_entry_point_shim`)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("KPISYNC_", "PYTHON_KEYRING"))}
    home.mkdir(parents=True, exist_ok=True)
    env.update(
        HOME=str(home), XDG_CONFIG_HOME=str(home / ".config"), KPISYNC_DB=str(db),
        KPISYNC_TIME_SCALE=str(harness.time_scale), PYTHON_KEYRING_BACKEND="keyring.backends.null.Keyring",
        COLUMNS="200",
    )  # fmt: skip
    prefix = f"KPISYNC_{harness.source.upper()}_"
    for field, value in settings.items():
        if value is not None:
            env[prefix + field.upper()] = env_value(value)
    shim = _entry_point_shim(harness, home / "entry-points")
    if shim:
        env["PYTHONPATH"] = os.pathsep.join([*shim, *filter(None, [env.get("PYTHONPATH")])])
    return env


def kpisync(*args: str, env: dict[str, str], cwd: Path, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "kpisync.cli", *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout
    )


def start_pull(harness: Harness, env: dict[str, str], cwd: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "kpisync.cli", "pull", harness.source], env=env, cwd=cwd,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip


def _entry_point_shim(harness: Harness, folder: Path) -> list[str]:
    """Path entries that register the connector under `kpisync.connectors` for a child process.

    A connector package fresh from `kpisync new-connector` is not pip-installed yet, so the CLI
    would not find it. importlib.metadata finds distributions through `*.dist-info` folders on
    sys.path, so a minimal one naming the entry point (plus the folder the connector's module
    is imported from) makes `kpisync pull NAME` work exactly as after `pip install`.
    """
    cls = harness.connector_class
    value = f"{cls.__module__}:{cls.__qualname__}"
    registered = {ep.name: ep.value for ep in entry_points(group="kpisync.connectors")}
    if registered.get(harness.source) == value:
        return []
    dist = folder / f"kpisync_conformance_{harness.source}-0.dist-info"
    dist.mkdir(parents=True, exist_ok=True)
    (dist / "METADATA").write_text(f"Metadata-Version: 2.1\nName: kpisync-conformance-{harness.source}\nVersion: 0\n")
    (dist / "entry_points.txt").write_text(f"[kpisync.connectors]\n{harness.source} = {value}\n")
    module = sys.modules[cls.__module__]
    root = Path(module.__file__ or ".").resolve().parent
    for _ in range(cls.__module__.count(".")):
        root = root.parent
    return [str(folder), str(root)]

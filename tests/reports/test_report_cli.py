"""`kpisync report team|agents|trends` as a user runs them."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from kpisync.cli.main import app
from kpisync.core.errors import ConfigError


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("cli") / "kpisync.toml"
    path.write_text('[metrics]\ntimezone = "UTC"\nmin_resolved = 1\n', encoding="utf-8")
    return path


def run(store_path: Path, config: Path, *args: str) -> Any:
    return CliRunner().invoke(app, ["report", *args, "--db", str(store_path), "--config", str(config)])


def test_team_report_as_markdown_html_and_json(store_path: Path, config: Path, tmp_path: Path) -> None:
    md = run(store_path, config, "team", "--month", "2026-10", "--format", "md")
    assert md.exit_code == 0, md.output
    assert md.output.startswith("# Support team report — October 2026")
    out = tmp_path / "team.html"
    html = run(store_path, config, "team", "--month", "2026-10", "--format", "html", "-o", str(out))
    assert html.exit_code == 0 and f"wrote {out}" in html.output
    assert out.read_text(encoding="utf-8").count("<svg") == 4
    data = json.loads(run(store_path, config, "team", "--month", "2026-10", "--format", "json").output)
    assert data["span"]["label"] == "October 2026" and data["kind"] == "team"


def test_agents_out_dir_writes_one_private_file_each(store_path: Path, config: Path, tmp_path: Path) -> None:
    result = run(store_path, config, "agents", "--month", "2026-10", "--out-dir", str(tmp_path / "private"),
                 "--format", "html")
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in (tmp_path / "private").iterdir())
    assert names == ["agent-ann-archer-zd-a1-2026-10.html", "agent-bob-baker-zd-a2-2026-10.html",
                     "agent-cem-cruz-zd-a3-2026-10.html", "agent-dora-diaz-zd-a4-2026-10.html"]
    assert "Bob Baker" not in (tmp_path / "private" / names[0]).read_text(encoding="utf-8")


def test_one_agent_to_stdout_and_a_destination_is_required(store_path: Path, config: Path) -> None:
    one = run(store_path, config, "agents", "--month", "2026-10", "--agent", "cem@acme.test")
    assert one.exit_code == 0 and "**Cem Cruz**" in one.output and "Ann Archer" not in one.output
    nowhere = run(store_path, config, "agents", "--month", "2026-10")
    assert isinstance(nowhere.exception, ConfigError) and "--out-dir" in str(nowhere.exception)


def test_trends_report(store_path: Path, config: Path) -> None:
    result = run(store_path, config, "trends", "--month", "2026-10", "--months", "13", "--forecast", "2")
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# Support trends — Oct 2025 – Oct 2026")
    assert "Nov 2026: ≈" in result.output and "Jan 2027" not in result.output


def test_user_errors_are_one_line(store_path: Path, config: Path) -> None:
    done = subprocess.run([sys.executable, "-m", "kpisync.cli", "report", "team", "--month", "2026/10", "--db",
                           str(store_path), "--config", str(config)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip() == "error: --month: expected YEAR-MONTH such as 2026-10, got '2026/10'"
    bad = run(store_path, config, "team", "--format", "pdf")
    assert isinstance(bad.exception, ConfigError) and "md, html, json" in str(bad.exception)

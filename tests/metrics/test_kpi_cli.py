"""`kpisync kpi` and `kpisync dashboard` as a user runs them."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

sys.path.insert(0, str(Path(__file__).parent))  # kpi_world.py beside this file (any pytest import mode)
from kpi_world import World

from kpisync.cli.main import app
from kpisync.core.metrics.roles import ROLES
from kpisync.core.store import Store

RANGE = ["--since", "2026-01-05", "--until", "2026-01-08"]


@pytest.fixture(scope="module")
def paths(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    folder = tmp_path_factory.mktemp("cli")
    with Store(folder / "k.db") as s:
        w = World(s)
        w.agent("a1", "Ann")
        w.ticket("1", "2026-01-05 09:00", "solved", assignee="a1")
        w.msg("1", "2026-01-05 09:00", "customer")
        w.msg("1", "2026-01-05 10:00", "agent", "a1")
        w.lifecycle("1", ("2026-01-05 09:00", "new"), ("2026-01-05 12:00", "solved"))
        w.rating("1", "bad", responded="2026-01-05 13:00", comment="too slow")
        w.ticket("2", "2026-01-06 09:00", "open", assignee="a1")
        w.msg("2", "2026-01-06 09:00", "customer")
        w.msg("2", "2026-01-06 09:10", "agent", "a1")
        w.commit()
    config = folder / "kpisync.toml"
    config.write_text(
        '[metrics]\ntimezone = "UTC"\n\n[targets]\nfirst_response_time = { median_max = "30m" }\nbacklog = { max = 5 }\n',
        encoding="utf-8",
    )
    return str(folder / "k.db"), str(config)


def run(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def test_kpi_list_names_every_kpi_with_unit_and_data(paths: tuple[str, str]) -> None:
    result = run("kpi", "list", "--json")
    listed = {k["kpi"]: k for k in json.loads(result.stdout)}
    assert result.exit_code == 0
    assert {"first_response_time", "backlog", "csat", "top_agents", "cost_per_contact"} <= set(listed)
    assert listed["handle_time"]["unit"] == "seconds" and "time entries" in listed["handle_time"]["data"]


def test_kpi_json_is_the_documented_object(paths: tuple[str, str]) -> None:
    db, config = paths
    result = run("kpi", "first_response_time", "--db", db, "--config", config, "--period", "day", *RANGE, "--json")
    data = json.loads(result.stdout)
    assert result.exit_code == 0 and list(data) == ["kpi", "unit", "definition", "params", "rows", "notes"]
    assert [(r["period"], r["value"]) for r in data["rows"]] == [("2026-01-05", 3600.0), ("2026-01-06", 600.0), ("2026-01-07", None)]
    assert data["rows"][0]["target"]["met"] is False


def test_check_targets_exits_non_zero_when_missed(paths: tuple[str, str]) -> None:
    db, config = paths
    missed = run("kpi", "first_response_time", "--db", db, "--config", config, *RANGE, "--check-targets")
    assert missed.exit_code == 1 and "missed" in missed.stdout
    met = run("kpi", "backlog", "--db", db, "--config", config, *RANGE, "--period", "day", "--check-targets")
    assert met.exit_code == 0, met.stdout


def test_table_output_and_drill_down(paths: tuple[str, str]) -> None:
    db, config = paths
    table = run("kpi", "first_response_time", "--db", db, "--config", config, *RANGE, "--by", "agent", "--compare", "previous")
    assert table.exit_code == 0 and "Ann" in table.stdout and "35m" in table.stdout
    drill = run("kpi", "first_response_time", "--db", db, "--config", config, *RANGE, "--tickets")
    assert drill.exit_code == 0 and "https://acme.example/agent/tickets/1" in drill.stdout


def test_dashboard_roles(paths: tuple[str, str]) -> None:
    db, config = paths
    board = run("dashboard", "--db", db, "--config", config, *RANGE)
    assert board.exit_code == 0 and "first_response_time" in board.stdout and "backlog" in board.stdout
    voc = run("dashboard", "--db", db, "--config", config, *RANGE, "--role", "voice_of_customer", "--json")
    data = json.loads(voc.stdout)
    assert [k["kpi"] for k in data["kpis"]] == ROLES["voice_of_customer"]
    assert data["kpis"][0]["rows"][0]["comments"][0]["comment"] == "too slow"
    unknown = run("dashboard", "--db", db, "--role", "astronaut")
    assert unknown.exit_code != 0


def test_a_period_cut_short_reads_partial_in_the_table(paths: tuple[str, str]) -> None:
    db, config = paths
    result = run("kpi", "ticket_volume", "--db", db, "--config", config, "--period", "week",
                 "--since", "2026-01-05", "--until", "2026-01-07")
    assert result.exit_code == 0, result.output
    assert "2026-01-05 (partial)" in result.output

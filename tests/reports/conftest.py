"""Shared fixtures: the hand-built store (report_store.py) and its three reports, built once."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))  # report_store.py beside this file (any pytest import mode)
from report_store import MONTH, NOW, SETTINGS, build

from kpisync.core.reports import AgentReport, TeamReport, TrendsReport, agent_reports, team_report, trends_report
from kpisync.core.store import Store


@pytest.fixture(scope="session")
def store_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("reports") / "hand.db"
    build(path).close()
    return path


@pytest.fixture(scope="session")
def store(store_path: Path) -> Iterator[Store]:
    with Store(store_path) as s:
        yield s


@pytest.fixture(scope="session")
def team(store: Store) -> TeamReport:
    return team_report(store, SETTINGS, month=MONTH, now=NOW)


@pytest.fixture(scope="session")
def agents(store: Store) -> list[AgentReport]:
    return agent_reports(store, SETTINGS, month=MONTH, now=NOW)


@pytest.fixture(scope="session")
def trends(store: Store) -> TrendsReport:
    return trends_report(store, SETTINGS, month=MONTH, months=13, now=NOW)

"""Each HTML report opened in headless Chromium (Debian package `chromium`): no console message
at all (the reports run no script; a blocked fetch or a script error would log one), the DOM
holds the report, a phone-width screenshot is saved, and it prints to PDF."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from kpisync.core.reports import AgentReport, TeamReport, TrendsReport, render

CHROMIUM = Path("/usr/bin/chromium")
pytestmark = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason="headless Chromium is not installed (/usr/bin/chromium, Debian package `chromium`; .ci/run installs it)",
)
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
         "--disable-sync", "--no-first-run", "--hide-scrollbars", "--enable-logging=stderr", "--v=0"]


def chromium(page: Path, tmp: Path, *extra: str) -> tuple[str, list[str]]:
    """(DOM or stdout, console lines) of one headless Chromium run on `page`."""
    profile = tmp / f"profile-{page.stem}"
    done = subprocess.run([str(CHROMIUM), *FLAGS, f"--user-data-dir={profile}", *extra, page.as_uri()],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    console = [line for line in done.stderr.splitlines() if ":CONSOLE" in line or "Uncaught" in line]
    return done.stdout, console


def open_report(html: str, name: str, tmp: Path) -> tuple[str, list[str], Path]:
    page = tmp / f"{name}.html"
    page.write_text(html, encoding="utf-8")
    shot = tmp / f"{name}-phone.png"
    dom, console = chromium(page, tmp, "--dump-dom", f"--screenshot={shot}", "--window-size=390,2400")
    return dom, console, shot


def test_the_console_check_catches_errors(tmp_path: Path) -> None:
    page = tmp_path / "broken.html"
    page.write_text("<!DOCTYPE html><p>x</p><script>console.error('boom'); missing();</script>", encoding="utf-8")
    _, console = chromium(page, tmp_path, "--dump-dom")
    assert any("boom" in line for line in console) and any("Uncaught" in line for line in console)


@pytest.mark.parametrize("kind", ["team", "trends", "agent"])
def test_report_opens_cleanly_on_a_phone(kind: str, team: TeamReport, trends: TrendsReport, agents: list[AgentReport],
                                         tmp_path: Path) -> None:
    report = {"team": team, "trends": trends, "agent": agents[0]}[kind]
    dom, console, shot = open_report(render(report, "html"), kind, tmp_path)
    assert console == [], console
    title = {"team": "Support team report — October 2026", "trends": "Support trends — Oct 2025 – Oct 2026",
             "agent": "Your support figures — October 2026"}[kind]
    assert f"<h1>{title}</h1>" in dom
    assert dom.count("<svg") == render(report, "html").count("<svg")  # every chart made it into the page
    assert shot.exists() and shot.stat().st_size > 20_000  # a real rendering, kept in the test's tmp dir


def test_team_report_prints(team: TeamReport, tmp_path: Path) -> None:
    page = tmp_path / "team.html"
    page.write_text(render(team, "html"), encoding="utf-8")
    pdf = tmp_path / "team.pdf"
    _, console = chromium(page, tmp_path, f"--print-to-pdf={pdf}", "--no-pdf-header-footer")
    assert console == []
    data = pdf.read_bytes()
    assert data.startswith(b"%PDF") and data.count(b"/Type /Page") >= 3  # A4 pages with tables and charts

"""Reports for the three audiences of support KPIs (seed 001):

* **agents** — each agent privately, by e-mail: their own month against their previous month and
  the team median (`agent.agent_reports`, `mail`);
* **the team** — monthly, on a wiki: every KPI against the previous month and the same month last
  year, channels, CSAT, top agents, SLA breaches, spikes, forecast, conversion (`team.team_report`);
* **management** — 12+ months of trends with trend lines, forecast bands, groups and segments
  (`trends.trends_report`).

Report data is built from the metrics API only (`data.Reader`), then rendered as Markdown
(`render_md`), one self-contained HTML file with inline SVG charts (`render_html`, `charts`), or
JSON (`render`).

    from kpisync.core.reports import team_report, render
    with Store("kpisync.db") as store:
        print(render(team_report(store, settings, month="2026-10"), "md"))
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import KpisyncError
from ..metrics.settings import MetricsSettings
from ..store import Store
from .agent import AgentReport, agent_reports
from .team import TeamReport, team_report
from .trends import TrendsReport, trends_report

FORMATS = ("md", "html", "json")
SUFFIX = {"md": ".md", "html": ".html", "json": ".json"}


def render(report: Any, fmt: str) -> str:
    """The report as "md", "html" or "json" text."""
    if fmt == "md":
        from .render_md import markdown

        return markdown(report)
    if fmt == "html":
        from .render_html import html

        return html(report)
    if fmt == "json":
        return json.dumps(report.to_dict(), indent=2, ensure_ascii=False, default=str) + "\n"
    raise KpisyncError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")


def write_team_report(store: Store, path: str | Path, settings: MetricsSettings | None = None, *,
                      month: str | None = None, fmt: str | None = None) -> Path:
    """Write the team report to `path` (format from its suffix unless given); `kpisync demo` uses this."""
    path = Path(path)
    fmt = fmt or {".md": "md", ".json": "json"}.get(path.suffix.lower(), "html")
    path.write_text(render(team_report(store, settings, month=month), fmt), encoding="utf-8")
    return path


__all__ = ["AgentReport", "TeamReport", "TrendsReport", "agent_reports", "team_report", "trends_report", "render",
           "write_team_report", "FORMATS", "SUFFIX"]

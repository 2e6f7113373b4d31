"""Private agent reports: each holds only its own agent's numbers, equal to the metrics API's."""

from __future__ import annotations

import json
from typing import Any

import pytest
from report_store import AGENTS, COMMENTS, MONTH, NOW, SETTINGS

from kpisync.core import metrics
from kpisync.core.errors import KpisyncError
from kpisync.core.reports import AgentReport, agent_reports, render
from kpisync.core.reports.render_md import text
from kpisync.core.store import Store

OCT = {"since": "2026-10-01", "until": "2026-11-01", "now": NOW, "settings": SETTINGS}
#: Per agent: what only that agent's report may contain (name, e-mail, rating comment, ticket ids "#ann-1").
PRIVATE = {
    key: [name, email, *([COMMENTS[key]] if key in COMMENTS else []), f"{name.split()[0].lower()}-1"]
    for key, (name, email, _) in AGENTS.items()
}


def _renderings(report: AgentReport) -> dict[str, str]:
    return {"md": render(report, "md"), "html": render(report, "html"), "text": text(report),
            "json": render(report, "json")}


def _numbers(value: Any) -> set[float]:
    if isinstance(value, bool):
        return set()
    if isinstance(value, (int, float)):
        return {float(value)}
    if isinstance(value, dict):
        return set().union(*(_numbers(v) for v in value.values())) if value else set()
    if isinstance(value, list):
        return set().union(*(_numbers(v) for v in value)) if value else set()
    return set()


def test_one_report_per_active_agent_and_never_the_bot(agents: list[AgentReport]) -> None:
    assert [r.agent.name for r in agents] == ["Ann Archer", "Bob Baker", "Cem Cruz", "Dora Diaz"]
    assert all(r.span.label == "October 2026" and r.previous.label == "September 2026" for r in agents)


def test_figures_are_the_agents_own_metrics_rows(store: Store, agents: list[AgentReport]) -> None:
    for report in agents:
        for fig in report.figures:
            rows = metrics.kpi(store, fig.kpi, by="agent", compare="previous", **OCT).rows
            own = next((r for r in rows if r.get("group_id") == report.agent.key), {})
            assert (fig.value, fig.previous, fig.change, fig.change_pct) == (
                own.get("value"), own.get("previous"), own.get("change"), own.get("change_pct")), (report.agent.name, fig.kpi)


def test_hand_checked_figures_and_team_medians(agents: list[AgentReport]) -> None:
    ann = {f.kpi: f for f in agents[0].figures}
    assert (ann["first_response_time"].value, ann["first_response_time"].previous) == (1800, 3600)
    assert ann["tickets_handled"].value == 3 and ann["csat"].value == 1.0
    # median of 30 min, 2 h, 5 h, 9 h: (2 h + 5 h) / 2 — nobody's own figure
    assert ann["first_response_time"].team_median == 12600 and ann["first_response_time"].peers == 4
    assert ann["first_response_time"].vs_median == 1800 - 12600
    # only Cem and Dora own open tickets: a median of two would give away the other's backlog
    assert ann["backlog"].team_median is None and ann["backlog"].peers == 2
    assert [(c["comment"], c["ticket_id"]) for c in agents[0].comments] == [(COMMENTS["a1"], "ann-1")]
    assert "ticket #ann-1" in render(agents[0], "md")


def test_no_report_shows_another_agents_name_email_tickets_comments_or_figures(agents: list[AgentReport]) -> None:
    own_numbers = {r.agent.external_id: _numbers([f.value for f in r.figures] + [f.previous for f in r.figures])
                   for r in agents}
    for report in agents:
        me = report.agent.external_id
        rendered = _renderings(report)
        for needle in PRIVATE[me][:-1] if me != "a4" else PRIVATE[me][:2]:  # Dora has no rated ticket
            assert all(needle in body for body in rendered.values()), (me, needle)
        for other, needles in PRIVATE.items():
            if other == me:
                continue
            for fmt, body in rendered.items():
                for needle in needles:
                    assert needle not in body, f"{report.agent.name}'s {fmt} report shows {needle!r}"
        # the other agents' durations (each distinct by construction) appear nowhere in the data — except
        # as a team median: with an odd number of agents the median *is* somebody's figure, unattributed
        figures = json.loads(rendered["json"])
        mine = _numbers(figures) - {f.team_median for f in report.figures}
        for other, numbers in own_numbers.items():
            if other != me:
                leaked = {n for n in numbers - own_numbers[me] if n > 1000} & mine  # durations are > 1000 s
                assert not leaked, (report.agent.name, other, leaked)


def test_only_selects_one_agent_and_unknown_names_fail(store: Store) -> None:
    [bob] = agent_reports(store, SETTINGS, month=MONTH, now=NOW, only="BOB@acme.test")
    assert bob.agent.name == "Bob Baker"
    with pytest.raises(KpisyncError, match="no agent"):
        agent_reports(store, SETTINGS, month=MONTH, now=NOW, only="nobody@acme.test")


def test_agent_html_is_mail_safe(agents: list[AgentReport]) -> None:
    html = render(agents[0], "html")
    assert "<svg" not in html and "<script" not in html
    assert "Private: this report holds only your own numbers" in html
    assert "October 2026 (2026-10-01 – 2026-10-31, UTC)" in html

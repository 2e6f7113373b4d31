"""Private agent reports: one agent's own numbers for a month, against their previous month and
the team median — never another agent's figures, names or tickets.

Each KPI is evaluated once `by="agent"` with `compare="previous"`; a report takes only its own
agent's row. The team median is the median of the per-agent values (agents with a value for
that KPI in the month, the agent included) and is shown only when at least `MIN_PEERS` agents
have one: with two, the median would reveal the other agent's figure.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

from ..errors import KpisyncError
from ..metrics.registry import all_kpis
from ..metrics.settings import MetricsSettings
from ..metrics.stats import median
from ..store import Store
from .data import Person, Reader, Span, month_span, name_of

#: What an agent is measured by (issue 10): throughput, speed, effort, quality, what they own.
AGENT_KPIS = ("tickets_handled", "tickets_closed", "first_response_time", "resolution_time", "replies_per_ticket",
              "one_touch_resolution", "csat", "backlog")
MIN_PEERS = 3
MEDIAN_DEFINITION = (f"the median of the per-agent values of the month among agents with a value (shown when at "
                     f"least {MIN_PEERS} agents have one, so that it never reveals one colleague's figure).")


@dataclass
class AgentFigure:
    kpi: str
    name: str
    unit: str
    definition: str
    better: str | None
    value: Any
    row: dict[str, Any]  # the agent's own metrics row (median, p90, count, ...), without comments
    previous: Any
    change: float | None
    change_pct: float | None
    team_median: float | None
    peers: int  # agents with a value this month (the agent included)

    @property
    def vs_median(self) -> float | None:
        if self.value is None or self.team_median is None:
            return None
        return round(self.value - self.team_median, 6)


@dataclass
class AgentReport:
    agent: Person
    span: Span
    previous: Span
    generated_at: str
    hours: str
    figures: list[AgentFigure]
    comments: list[dict[str, Any]]
    comments_total: int
    notes: list[str] = field(default_factory=list)
    kind: str = "agent"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["agent"] = self.agent.to_dict()
        out["span"], out["previous"] = self.span.to_dict(), self.previous.to_dict()
        for fig, data in zip(self.figures, out["figures"]):
            data["vs_median"] = fig.vs_median
        return out


def _is_agent_key(key: str | None) -> bool:
    return bool(key) and bool(key.partition("|")[2])  # type: ignore[union-attr]


def _active(rows: list[dict[str, Any]]) -> set[str]:
    return {r["group_id"] for r in rows if _is_agent_key(r.get("group_id")) and r.get("value") not in (None, 0)}


def agent_reports(store: Store, settings: MetricsSettings | None = None, *, month: str | None = None,
                  hours: str = "calendar", now: int | None = None, only: str | None = None) -> list[AgentReport]:
    """One report per agent active in the month (a reply, resolution, rating or owned backlog).

    `only` keeps the agent whose e-mail, name or "source:id" matches (case-insensitive).
    """
    settings = settings or MetricsSettings()
    span, notes = month_span(store, settings, month, now=now)
    reader = Reader(store, settings, now)
    results = {}
    for kpi_id in AGENT_KPIS:
        kpi = all_kpis()[kpi_id]
        options = {"hours": hours} if hours != "calendar" and "hours" in kpi.params else {}
        results[kpi_id] = reader.kpi(kpi_id, span, by="agent", compare="previous", **options)
    everyone = reader.people(sorted({r["group_id"] for res in results.values() for r in res.rows
                                     if _is_agent_key(r.get("group_id"))}))
    bots = {k for k, p in everyone.items() if p.is_bot}
    active = set().union(*(_active(r.rows) for r in results.values()))
    people = {k: p for k, p in sorted(everyone.items()) if k in active and k not in bots}
    if only is not None:
        wanted = only.strip().lower()
        people = {k: p for k, p in people.items()
                  if wanted in ((p.email or "").lower(), p.name.lower(), f"{p.source}:{p.external_id}".lower())}
        if not people:
            raise KpisyncError(f"--agent {only!r}: no agent with that e-mail, name or source:id was active in {span.label}")
    medians = {}
    for kpi_id, result in results.items():
        values = [r["value"] for r in result.rows
                  if _is_agent_key(r.get("group_id")) and r["group_id"] not in bots and r.get("value") is not None]
        medians[kpi_id] = (median(values) if len(values) >= MIN_PEERS else None, len(values))
    generated = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    shared_notes = list(dict.fromkeys(notes + [n for r in results.values() for n in r.notes]))
    reports = []
    for key, person in people.items():
        figures, comments, total = [], [], 0
        for kpi_id, result in results.items():
            row = next((r for r in result.rows if r.get("group_id") == key), {})
            team_median, peers = medians[kpi_id]
            if kpi_id == "csat":
                comments, total = list(row.get("comments", [])), row.get("comments_total", 0)
            figures.append(AgentFigure(
                kpi_id, name_of(kpi_id), result.unit, result.definition, all_kpis()[kpi_id].better, row.get("value"),
                {k: v for k, v in row.items() if k not in ("comments", "group", "group_id")},
                row.get("previous"), row.get("change"), row.get("change_pct"), team_median, peers,
            ))
        reports.append(AgentReport(person, span, span.shifted(-1), generated, hours, figures, comments, total,
                                   list(shared_notes)))
    return reports

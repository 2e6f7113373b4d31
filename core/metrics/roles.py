"""Dashboard role presets (seed 002): the KPI set each support role is measured by.

Override or add presets in kpisync.toml:

    [metrics.roles]
    call_center = ["handle_time", "first_contact_resolution", "csat"]
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import ConfigError, KpisyncError
from ..store import Store
from .engine import Result, When, ensure_fresh, evaluate_many, report_window
from .registry import all_kpis
from .settings import MetricsSettings

#: Headline KPIs when no role is given.
DEFAULT = ["ticket_volume", "backlog", "first_response_time", "resolution_time", "csat", "sla_compliance",
           "one_touch_resolution", "handle_time"]

ROLES: dict[str, list[str]] = {
    # Runs the team: workload, promises kept, cost, quality, who performs.
    "support_manager": ["backlog", "overdue", "sla_compliance", "cost_per_contact", "ticket_volume",
                        "first_response_time", "resolution_time", "csat", "reopen_rate", "top_agents"],
    # Answers tickets: own throughput and speed, getting it right the first time.
    "support_specialist": ["tickets_handled", "tickets_closed", "first_response_time", "response_time",
                           "one_touch_resolution", "replies_per_ticket", "csat"],
    # Solves hard problems: time to resolve, waiting, reopens, SLAs.
    "technical_support": ["first_resolution_time", "resolution_time", "requester_wait_time", "agent_wait_time",
                          "reopen_rate", "backlog", "sla_compliance"],
    # Keeps customers: satisfaction, loyalty, outcomes.
    "customer_success": ["csat", "nps", "resolution_rate", "first_contact_resolution", "response_time",
                         "converted_tickets"],
    # Phones: handle time and first-contact resolution.
    "call_center": ["handle_time", "first_contact_resolution", "tickets_handled", "response_time", "csat"],
    # Voice of the customer: what customers say, in surveys and in public.
    "voice_of_customer": ["csat", "nps", "mentions", "social_tickets", "ticket_volume"],
}


def role_kpis(role: str | None, settings: MetricsSettings) -> list[str]:
    """The KPI ids of a role (config presets first), without KPIs this install does not have."""
    presets = {**ROLES, **settings.roles}
    if role is None:
        wanted = DEFAULT
    elif role in presets:
        wanted = presets[role]
    else:
        raise KpisyncError(f"unknown role {role!r} (roles: {', '.join(sorted(presets))})")
    known = all_kpis()
    unknown = [k for k in wanted if k not in known and k in settings.roles.get(role or "", [])]
    if unknown:
        raise ConfigError(f"[metrics.roles] {role}: unknown KPI {unknown[0]!r} (see `kpisync kpi list`)")
    return [k for k in wanted if k in known]


@dataclass
class Dashboard:
    role: str | None
    results: list[Result]
    notes: list[str]

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "notes": self.notes, "kpis": [r.to_dict() for r in self.results]}

    @property
    def missed_targets(self) -> list[tuple[str, dict[str, Any]]]:
        return [(r.kpi, row) for r in self.results for row in r.missed_targets]


def dashboard(
    store: Store,
    role: str | None = None,
    *,
    settings: MetricsSettings | None = None,
    since: When = None,
    until: When = None,
    compare: str | None = "previous",
    hours: str = "calendar",
    now: When = None,
) -> Dashboard:
    """One headline value per KPI of the role over the window, against the previous window."""
    settings = settings or MetricsSettings()
    kpis = role_kpis(role, settings)
    notes = ensure_fresh(store, settings)
    window, window_notes = report_window(store, settings, since=since, until=until, now=now)
    requests = []
    for kpi_id in kpis:
        kpi = all_kpis()[kpi_id]
        options: dict[str, Any] = {"since": window.since, "until": window.until, "now": now, "settings": settings,
                                   "refresh": False}
        if "compare" in kpi.params:
            options["compare"] = compare
        if hours == "business" and "hours" in kpi.params:
            options["hours"] = hours
        requests.append((kpi_id, options))
    return Dashboard(role, evaluate_many(store, requests), notes + window_notes)

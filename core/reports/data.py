"""What every report shares: the period it covers and one reader of the metrics API.

Reports never compute a KPI themselves: every figure is a row of `metrics.kpi(...)` (the same
rows `kpisync kpi --json` prints). `Reader` refreshes the derived facts once, then evaluates KPIs
without refreshing again and caches each (KPI, options) result, so sections that need the same
figure share one evaluation.
"""

from __future__ import annotations

import calendar
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from ..errors import KpisyncError
from ..metrics.api import kpi as metrics_kpi
from ..metrics.clock import local_midnight
from ..metrics.engine import Result, ensure_fresh
from ..metrics.registry import all_kpis
from ..metrics.settings import MetricsSettings
from ..store import Store

#: Display names; a KPI without one is shown by its id.
NAMES = {
    "first_response_time": "First response time",
    "response_time": "Response time (every reply)",
    "first_resolution_time": "First resolution time",
    "resolution_time": "Full resolution time",
    "requester_wait_time": "Requester wait time",
    "agent_wait_time": "Agent wait time (pending)",
    "handle_time": "Handle time",
    "ticket_volume": "Tickets created",
    "tickets_handled": "Tickets handled",
    "tickets_closed": "Tickets closed",
    "backlog": "Backlog at period end",
    "overdue": "Overdue at period end",
    "sla_compliance": "SLA compliance (resolution)",
    "csat": "CSAT",
    "nps": "NPS",
    "one_touch_resolution": "One-touch resolution",
    "first_contact_resolution": "First-contact resolution",
    "resolution_rate": "Resolution rate",
    "reopen_rate": "Reopen rate",
    "replies_per_ticket": "Replies per resolved ticket",
    "automated_resolution_rate": "Automated resolution rate",
    "social_tickets": "Social tickets",
    "mentions": "Social mentions",
    "converted_tickets": "Converted tickets",
    "macro_usage": "Macro usage",
    "cost_per_contact": "Cost per contact",
    "top_agents": "Top agents (composite score)",
}


def name_of(kpi_id: str) -> str:
    return NAMES.get(kpi_id, kpi_id.replace("_", " ").capitalize())


def better_of(kpi_id: str) -> str | None:
    """"higher" / "lower" when a direction is good (arrows are coloured), else None."""
    kpi = all_kpis().get(kpi_id)
    return kpi.better if kpi else None


# -- periods -------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Span:
    """Whole calendar months [first, last] in the reporting time zone, as epoch bounds."""

    first: date  # first day of the first month
    months: int
    timezone: str
    since: int
    until: int  # exclusive: local midnight after the last month

    @property
    def last(self) -> date:
        """The last day covered (inclusive)."""
        month = _shift(self.first, self.months - 1)
        return month.replace(day=calendar.monthrange(month.year, month.month)[1])

    @property
    def label(self) -> str:
        if self.months == 1:
            return self.first.strftime("%B %Y")
        return f"{self.first.strftime('%b %Y')} – {self.last.strftime('%b %Y')}"

    @property
    def dates(self) -> str:
        return f"{self.first.isoformat()} – {self.last.isoformat()}"

    def describe(self) -> str:
        """"October 2026 (2026-10-01 – 2026-10-31, Europe/Berlin)": how every figure states its period."""
        return f"{self.label} ({self.dates}, {self.timezone})"

    def month_labels(self) -> list[str]:
        """Bucket labels as the metrics core writes them for period="month" ("2026-10-01")."""
        return [_shift(self.first, i).isoformat() for i in range(self.months)]

    def shifted(self, months: int) -> Span:
        return make_span(_shift(self.first, months), self.months, self.timezone)

    def back_to(self, months: int) -> Span:
        """The `months` whole months ending with this span's last month (for "over time" charts)."""
        return make_span(_shift(self.first, self.months - months), months, self.timezone)

    def to_dict(self) -> dict[str, Any]:
        return {"label": self.label, "first": self.first.isoformat(), "last": self.last.isoformat(),
                "months": self.months, "timezone": self.timezone}


def _shift(first: date, months: int) -> date:
    index = first.year * 12 + first.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def make_span(first: date, months: int, timezone: str) -> Span:
    from zoneinfo import ZoneInfo

    zone = ZoneInfo(timezone)
    first = first.replace(day=1)
    return Span(first, months, timezone, local_midnight(first, zone), local_midnight(_shift(first, months), zone))


def parse_month(text: str) -> date:
    try:
        return datetime.strptime(text.strip(), "%Y-%m").date()
    except ValueError:
        raise KpisyncError(f"--month: expected YEAR-MONTH such as 2026-10, got {text!r}") from None


def month_span(store: Store, settings: MetricsSettings, month: str | None, months: int = 1,
               now: int | None = None) -> tuple[Span, list[str]]:
    """`months` whole months ending with `month` (default: the last complete month with data).

    Without --month the report ends with the month before the current one; when the store's
    latest ticket is older than that month, it ends with the latest ticket's month instead and
    says so.
    """
    if months < 1:
        raise KpisyncError("--months must be at least 1")
    notes: list[str] = []
    if month is not None:
        last = parse_month(month)
    else:
        today = datetime.fromtimestamp(now if now is not None else time.time(), settings.zone).date()
        last = _shift(today.replace(day=1), -1)
        latest = _latest_ticket(store, settings)
        if latest is not None and latest < last:
            last = latest.replace(day=1)
            notes.append(f"the latest ticket is from {latest.isoformat()}: the report ends with "
                         f"{last.strftime('%B %Y')} (pass --month to choose)")
    return make_span(_shift(last, -(months - 1)), months, settings.timezone), notes


def _ticket_date(store: Store, settings: MetricsSettings, agg: str) -> date | None:
    row = store.conn.execute(f"SELECT {agg}(created_at) FROM tickets").fetchone()
    if not row or not row[0]:
        return None
    return datetime.fromisoformat(row[0].replace("Z", "+00:00")).astimezone(settings.zone).date()


def _latest_ticket(store: Store, settings: MetricsSettings) -> date | None:
    return _ticket_date(store, settings, "max")


def coverage_notes(store: Store, settings: MetricsSettings, spans: list[Span]) -> list[str]:
    """Say so when a period starts before the first synced ticket: its figures are partial, not low."""
    first = _ticket_date(store, settings, "min")
    if first is None:
        return []
    notes = []
    for span in spans:
        if first > span.last:
            notes.append(f"no tickets before {first.isoformat()}: {span.label} has no data to compare with")
        elif first > span.first:
            notes.append(f"the synced tickets start on {first.isoformat()}: {span.label} is only partly covered")
    return notes


# -- the metrics API, read once ------------------------------------------------------------------
@dataclass
class Reader:
    """KPI results for one report: facts refreshed once, each (KPI, options) evaluated once."""

    store: Store
    settings: MetricsSettings
    now: int | None = None
    notes: list[str] = field(default_factory=list)
    _cache: dict[tuple[Any, ...], Result] = field(default_factory=dict)
    _fresh: bool = False

    def kpi(self, kpi_id: str, span: Span, **options: Any) -> Result:
        """`metrics.kpi` over `span` (options as `kpisync kpi`: period, by, compare, ...)."""
        if not self._fresh:
            self.notes += ensure_fresh(self.store, self.settings)
            self._fresh = True
        key = (kpi_id, span.since, span.until, tuple(sorted(options.items())))
        if key not in self._cache:
            self._cache[key] = metrics_kpi(self.store, kpi_id, settings=self.settings, since=span.since,
                                           until=span.until, now=self.now, refresh=False, **options)
        return self._cache[key]

    def has_rows(self, table: str) -> bool:
        """Whether a canonical table has any row (e.g. orders: show conversion only when synced)."""
        return bool(self.store.conn.execute(f"SELECT EXISTS (SELECT 1 FROM {table})").fetchone()[0])

    def people(self, keys: list[str]) -> dict[str, Person]:
        """Name and e-mail of agents by the metrics core's group key "source|external_id"."""
        out = {}
        for key in keys:
            source, _, ident = key.partition("|")
            row = self.store.conn.execute(
                "SELECT name, email, is_bot, role FROM users WHERE source = ? AND external_id = ?", (source, ident)
            ).fetchone()
            name, email, bot, role = row if row else (None, None, 0, None)
            out[key] = Person(key, source, ident, name or f"agent {ident}", email, bool(bot) or role == "bot")
        return out


@dataclass(frozen=True)
class Person:
    key: str  # "source|external_id", the metrics core's agent group key
    source: str
    external_id: str
    name: str
    email: str | None
    is_bot: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"key": self.key, "source": self.source, "external_id": self.external_id, "name": self.name,
                "email": self.email}


def headline(result: Result) -> dict[str, Any]:
    """The single row of an ungrouped, unbucketed result (an empty dict when there is none)."""
    rows = [r for r in result.rows if not r.get("forecast")]
    return rows[0] if rows else {}


def unavailable(result: Result) -> bool:
    """No figure at all: the data is missing (the notes say why)."""
    return all(r.get("value") is None for r in result.rows if not r.get("forecast"))

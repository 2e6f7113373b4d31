"""The `[metrics]` and `[targets]` tables of kpisync.toml, validated into one object.

    [metrics]
    timezone = "Europe/Berlin"            # reporting zone for period buckets (IANA)
    frt_outbound = "exclude"              # or "zendesk": agent-created tickets stop at the 2nd reply
    include_wrap_up = true                # calls: handle = talk + hold (+ wrap-up)
    segment = "organization.tier"         # or organization.<attribute>, requester.<field>, "tag:vip,gold"
    min_resolved = 10                     # top_agents eligibility
    conversion_window_days = 5
    default_phone_country = "49"          # converted tickets: country of phone numbers written without one
    overdue_after = "48h"                 # resolution target for tickets without an SLA due date
    first_reply_overdue_after = "4h"      # first-reply target for tickets without one
    overdue_hours = "calendar"            # or "business": how the two targets above are counted
    csat_positive_min = { "5" = 4, "10" = 8 }   # per scale maximum
    csat_neutral_min = { "5" = 3, "10" = 6 }

    [metrics.business_hours]              # overrides synced schedules for every ticket
    timezone = "Europe/Berlin"
    hours = { "mon-fri" = "09:00-17:00", sat = ["10:00-12:00"] }
    holidays = ["2026-12-25", ["2026-12-31", "2027-01-01"]]

    [metrics.costs]                       # cost_per_contact
    per_month = 42000                     # fixed support cost, prorated by days
    currency = "EUR"
    agent_hours_per_week = 40             # or: Σ users.hourly_cost × these hours, prorated by days

    [metrics.roles]                       # dashboard presets (override or add)
    call_center = ["handle_time", "first_contact_resolution", "csat"]

    [targets]
    first_response_time = { median_max = "1h" }
    backlog = { max = 50 }
    csat = { min = "90%", channel = { chat = { min = "95%" } } }

Only the settings that change stored facts (business hours, overdue targets) are part of the
facts fingerprint; everything else applies at query time.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ..errors import ConfigError
from ..phone import valid_country_code
from .business_hours import Schedule

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def parse_duration(value: Any, what: str) -> int:
    """Seconds from "90s", "15m", "1h30m", "2d" or a plain number of seconds."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a duration such as \"1h\" or \"30m\", got {value!r}")
    if isinstance(value, (int, float)):
        return int(value)
    text = str(value).strip().lower().replace(" ", "")
    parts = re.findall(r"(\d+(?:\.\d+)?)([smhdw])", text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ConfigError(f"{what}: expected a duration such as \"1h\" or \"30m\", got {value!r}")
    return int(sum(float(n) * _UNITS[u] for n, u in parts))


def parse_number(value: Any, what: str) -> float:
    """A number; "90%" is 0.9 (rates are fractions), "1h" is 3600 (durations are seconds)."""
    if isinstance(value, bool):
        raise ConfigError(f"{what}: expected a number, got {value!r}")
    if isinstance(value, (int, float)):
        return float(value)
    text = str(value).strip()
    if text.endswith("%"):
        try:
            return float(text[:-1]) / 100
        except ValueError:
            raise ConfigError(f"{what}: expected a percentage such as \"90%\", got {value!r}") from None
    try:
        return float(text)
    except ValueError:
        return float(parse_duration(text, what))


def _zone(name: Any, what: str) -> str:
    try:
        ZoneInfo(str(name))
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"{what}: unknown IANA time zone {name!r}") from None
    return str(name)


def _clock_minutes(text: str, what: str) -> int:
    match = re.fullmatch(r"(\d{1,2}):(\d{2})", text.strip())
    if not match or int(match[1]) > 24 or int(match[2]) > 59:
        raise ConfigError(f"{what}: expected HH:MM, got {text!r}")
    minutes = int(match[1]) * 60 + int(match[2])
    if minutes > 1440:
        raise ConfigError(f"{what}: {text!r} is after 24:00")
    return minutes


def _day_range(key: str, what: str) -> list[int]:
    key = key.strip().lower()
    if key in ("weekdays", "mon-fri"):
        return [0, 1, 2, 3, 4]
    if "-" in key:
        first, last = (part.strip()[:3] for part in key.split("-", 1))
        if first in _DAYS and last in _DAYS:
            a, b = _DAYS.index(first), _DAYS.index(last)
            return list(range(a, b + 1)) if a <= b else list(range(a, 7)) + list(range(0, b + 1))
    if key[:3] in _DAYS:
        return [_DAYS.index(key[:3])]
    raise ConfigError(f"{what}: unknown day {key!r} (use mon..sun, mon-fri or weekdays)")


def parse_schedule(table: Any) -> Schedule:
    """`[metrics.business_hours]` → a Schedule (hours per day name, holidays as dates/ranges)."""
    what = "[metrics.business_hours]"
    if not isinstance(table, dict):
        raise ConfigError(f"{what} must be a table")
    tz = _zone(table.get("timezone", table.get("tz", "UTC")), f"{what} timezone")
    intervals: list[tuple[int, int, int]] = []
    hours = table.get("hours", {})
    if not isinstance(hours, dict) or not hours:
        raise ConfigError(f"{what} needs hours, e.g. hours = {{ \"mon-fri\" = \"09:00-17:00\" }}")
    for key, spans in hours.items():
        days = _day_range(str(key), what)
        for span in [spans] if isinstance(spans, str) else list(spans):
            if "-" not in str(span):
                raise ConfigError(f"{what}: expected \"HH:MM-HH:MM\" for {key}, got {span!r}")
            start_text, end_text = str(span).split("-", 1)
            start, end = _clock_minutes(start_text, what), _clock_minutes(end_text, what)
            if end <= start:
                raise ConfigError(f"{what}: {span!r} ends before it starts (split spans at midnight)")
            intervals.extend((day, start, end) for day in days)
    holidays: list[tuple[date, date]] = []
    for item in table.get("holidays", []):
        pair = [item, item] if isinstance(item, (str, date)) else list(item)
        try:
            first, last = (d if isinstance(d, date) else date.fromisoformat(str(d)) for d in pair[:2])
        except ValueError:
            raise ConfigError(f"{what}: holidays must be ISO dates or [first, last] pairs, got {item!r}") from None
        holidays.append((first, last))
    return Schedule(tz, tuple(intervals), tuple(holidays))


@dataclass(frozen=True)
class Bound:
    """One target rule: `stat` (value, mean, median, p90, ...) must be ≤ or ≥ `limit`."""

    stat: str
    op: str  # "max" or "min"
    limit: float

    def describe(self, unit: str) -> str:
        from .format import human  # local import: formatting is only needed for display

        sign = "≤" if self.op == "max" else "≥"
        name = "" if self.stat == "value" else f"{self.stat} "
        return f"{name}{sign} {human(self.limit, unit)}"


@dataclass(frozen=True)
class Target:
    """The bounds of one KPI, with overrides per dimension value (e.g. channel → chat)."""

    bounds: tuple[Bound, ...]
    overrides: dict[str, dict[str, tuple[Bound, ...]]] = field(default_factory=dict)

    def for_group(self, by: str | None, label: str | None) -> tuple[Bound, ...]:
        if by and label is not None:
            specific = self.overrides.get(by, {}).get(str(label))
            if specific is not None:
                return specific
        return self.bounds


_OVERRIDE_DIMS = ("group", "channel", "agent", "source", "priority", "organization", "segment", "tag")


def _bounds(table: dict[str, Any], what: str) -> tuple[Bound, ...]:
    out = []
    for key, value in table.items():
        if key in _OVERRIDE_DIMS:
            continue
        match = re.fullmatch(r"(?:(\w+?)_)?(max|min)", key)
        if not match:
            raise ConfigError(f"{what}: unknown key {key!r} (use max/min or <stat>_max/<stat>_min, e.g. median_max)")
        out.append(Bound(match[1] or "value", match[2], parse_number(value, f"{what}.{key}")))
    return tuple(out)


def parse_targets(table: Any) -> dict[str, Target]:
    if not isinstance(table, dict):
        raise ConfigError("[targets] must be a table of KPI tables")
    targets = {}
    for kpi, spec in table.items():
        what = f"[targets] {kpi}"
        if not isinstance(spec, dict):
            raise ConfigError(f"{what}: expected a table such as {{ median_max = \"1h\" }}")
        overrides: dict[str, dict[str, tuple[Bound, ...]]] = {}
        for dim in _OVERRIDE_DIMS:
            if dim in spec:
                if not isinstance(spec[dim], dict):
                    raise ConfigError(f"{what}.{dim}: expected a table of {dim} names")
                overrides[dim] = {str(name): _bounds(sub, f"{what}.{dim}.{name}") for name, sub in spec[dim].items()}
        targets[str(kpi)] = Target(_bounds(spec, what), overrides)
    return targets


@dataclass(frozen=True)
class Costs:
    per_month: float | None = None
    agent_hours_per_week: float | None = None
    currency: str = ""


@dataclass(frozen=True)
class MetricsSettings:
    """Everything the metrics core can be told; defaults follow kpi-definitions §A."""

    timezone: str = "UTC"
    business_hours: Schedule | None = None
    frt_outbound: str = "exclude"
    include_wrap_up: bool = True
    segment: str = "organization.tier"
    min_resolved: int = 10
    conversion_window_days: int = 5
    default_phone_country: str | None = None  # digits, e.g. "49"; None: national numbers only meet national ones
    overdue_after: int | None = None
    first_reply_overdue_after: int | None = None
    overdue_hours: str = "calendar"
    csat_positive_min: dict[int, float] = field(default_factory=lambda: {5: 4, 10: 8})
    csat_neutral_min: dict[int, float] = field(default_factory=lambda: {5: 3, 10: 6})
    costs: Costs | None = None
    roles: dict[str, list[str]] = field(default_factory=dict)
    targets: dict[str, Target] = field(default_factory=dict)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def facts_fingerprint(self) -> str:
        """The settings stored facts depend on; a change triggers a full facts rebuild."""
        return json.dumps(self.facts_settings(), sort_keys=True)

    def facts_settings(self) -> dict[str, Any]:
        bh = self.business_hours
        return {
            "business_hours": None if bh is None else {
                "tz": bh.tz,
                "intervals": [list(i) for i in bh.intervals],
                "holidays": [[a.isoformat(), b.isoformat()] for a, b in bh.holidays],
            },
            "overdue_after": self.overdue_after,
            "first_reply_overdue_after": self.first_reply_overdue_after,
            "overdue_hours": self.overdue_hours,
        }

    @classmethod
    def from_facts_settings(cls, data: dict[str, Any]) -> MetricsSettings:
        """Rebuild the facts-relevant part saved in the store (sync refreshes use it)."""
        bh = data.get("business_hours")
        schedule = None
        if bh:
            schedule = Schedule(bh["tz"], tuple(tuple(i) for i in bh["intervals"]), tuple(tuple(h) for h in bh["holidays"]))  # type: ignore[arg-type]
        return cls(
            business_hours=schedule,
            overdue_after=data.get("overdue_after"),
            first_reply_overdue_after=data.get("first_reply_overdue_after"),
            overdue_hours=data.get("overdue_hours", "calendar"),
        )


def _scale_map(value: Any, what: str) -> dict[int, float]:
    if not isinstance(value, dict):
        raise ConfigError(f"{what}: expected a table of scale maximum = threshold, e.g. {{ \"5\" = 4 }}")
    try:
        return {int(k): float(v) for k, v in value.items()}
    except (TypeError, ValueError):
        raise ConfigError(f"{what}: keys are scale maxima (5, 10), values numbers") from None


def load_settings(config: dict[str, Any]) -> MetricsSettings:
    """Settings from a parsed kpisync.toml (see `core.config.load_config_file`)."""
    table = config.get("metrics", {}) or {}
    if not isinstance(table, dict):
        raise ConfigError("[metrics] must be a table")
    known = {
        "timezone", "business_hours", "frt_outbound", "include_wrap_up", "segment", "min_resolved",
        "conversion_window_days", "overdue_after", "first_reply_overdue_after", "overdue_hours",
        "csat_positive_min", "csat_neutral_min", "costs", "roles", "default_phone_country",
    }
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"[metrics]: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    kwargs: dict[str, Any] = {}
    if "timezone" in table:
        kwargs["timezone"] = _zone(table["timezone"], "[metrics] timezone")
    if "business_hours" in table:
        kwargs["business_hours"] = parse_schedule(table["business_hours"])
    if "frt_outbound" in table:
        if table["frt_outbound"] not in ("exclude", "zendesk"):
            raise ConfigError("[metrics] frt_outbound must be \"exclude\" or \"zendesk\"")
        kwargs["frt_outbound"] = table["frt_outbound"]
    if "overdue_hours" in table:
        if table["overdue_hours"] not in ("calendar", "business"):
            raise ConfigError("[metrics] overdue_hours must be \"calendar\" or \"business\"")
        kwargs["overdue_hours"] = table["overdue_hours"]
    if "include_wrap_up" in table:
        kwargs["include_wrap_up"] = bool(table["include_wrap_up"])
    if "segment" in table:
        kwargs["segment"] = str(table["segment"])
    for key in ("min_resolved", "conversion_window_days"):
        if key in table:
            kwargs[key] = int(parse_number(table[key], f"[metrics] {key}"))
    if "default_phone_country" in table:
        try:
            kwargs["default_phone_country"] = valid_country_code(table["default_phone_country"])
        except ValueError as exc:
            raise ConfigError(f"[metrics] default_phone_country: {exc}") from None
    for key in ("overdue_after", "first_reply_overdue_after"):
        if key in table:
            kwargs[key] = parse_duration(table[key], f"[metrics] {key}")
    for key in ("csat_positive_min", "csat_neutral_min"):
        if key in table:
            kwargs[key] = _scale_map(table[key], f"[metrics] {key}")
    if "costs" in table:
        costs = table["costs"]
        if not isinstance(costs, dict):
            raise ConfigError("[metrics.costs] must be a table")
        kwargs["costs"] = Costs(
            per_month=parse_number(costs["per_month"], "[metrics.costs] per_month") if "per_month" in costs else None,
            agent_hours_per_week=parse_number(costs["agent_hours_per_week"], "[metrics.costs] agent_hours_per_week")
            if "agent_hours_per_week" in costs else None,
            currency=str(costs.get("currency", "")),
        )
    if "roles" in table:
        roles = table["roles"]
        if not isinstance(roles, dict) or not all(isinstance(v, list) for v in roles.values()):
            raise ConfigError("[metrics.roles]: expected name = [\"kpi\", ...]")
        kwargs["roles"] = {str(k): [str(x) for x in v] for k, v in roles.items()}
    kwargs["targets"] = parse_targets(config.get("targets", {}) or {})
    return MetricsSettings(**kwargs)

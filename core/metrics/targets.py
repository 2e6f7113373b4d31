"""Targets from `[targets]` in kpisync.toml, checked row by row (met / missed, by how much)."""

from __future__ import annotations

from typing import Any

from ..errors import ConfigError
from .format import human
from .settings import Bound, Target

_ALIASES = {"mean": "value", "rate": "value", "average": "value"}


def check_row(row: dict[str, Any], bounds: tuple[Bound, ...], unit: str, kpi: str) -> dict[str, Any]:
    """The row's verdict: every bound met → met; any missed → missed; no data → met None."""
    checks = []
    for bound in bounds:
        stat = _ALIASES.get(bound.stat, bound.stat)
        if stat not in row:
            figures = ", ".join(k for k, v in row.items() if isinstance(v, (int, float)) and not isinstance(v, bool))
            raise ConfigError(f"[targets] {kpi}: no {bound.stat!r} figure (this KPI has {figures})")
        actual = row[stat]
        if actual is None:
            met, gap = None, None
        else:
            met = actual <= bound.limit if bound.op == "max" else actual >= bound.limit
            gap = round(actual - bound.limit, 6)
        checks.append({"rule": bound.describe(unit), "stat": stat, "limit": bound.limit, "actual": actual,
                       "met": met, "gap": gap})
    verdicts = [c["met"] for c in checks]
    overall = False if False in verdicts else (None if None in verdicts else True)
    return {"met": overall, "checks": checks}


def apply_targets(rows: list[dict[str, Any]], target: Target | None, by: str | None, unit: str, kpi: str) -> None:
    if target is None:
        return
    for row in rows:
        if row.get("forecast"):
            continue
        bounds = target.for_group(by, row.get("group"))
        if bounds:
            row["target"] = check_row(row, bounds, unit, kpi)


def missed(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [r for r in rows if r.get("target", {}).get("met") is False]


def verdict_text(target: dict[str, Any], unit: str) -> str:
    """"met", or "missed: median 1h 20m > 1h" for the CLI."""
    if target["met"] is None:
        return "no data"
    if target["met"]:
        return "met"
    misses = [c for c in target["checks"] if c["met"] is False]
    return "missed " + "; ".join(f"{c['rule']} by {human(abs(c['gap']), unit)}" for c in misses)

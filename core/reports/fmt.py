"""Numbers as report text: values, changes with arrows, and the detail line under a figure.

Raw figures stay in the report data (seconds, fractions) for `--format json`; these helpers are
the Jinja filters the Markdown, HTML and plain-text templates share, so all three say the same.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation
from typing import Any

from ..metrics.format import duration, human, number

MINUS = "−"  # U+2212: a real minus sign lines up with "+" in tables


def value(v: Any, unit: str) -> str:
    """A figure in its unit: "3h 37m", "83.7%", "1,204", "1.92"."""
    if v is None:
        return "n/a"
    if unit == "replies":
        return f"{v:.2f}"
    if unit == "score":
        return f"{v:.1f}"
    if unit in ("tickets", "mentions", "applications", "count") and isinstance(v, float) and v.is_integer():
        v = int(v)
    return human(v, unit).replace("-", MINUS) if unit != "seconds" else human(v, unit)


def _signed(text: str, negative: bool) -> str:
    return (MINUS if negative else "+") + text


def change(delta: float | None, pct: float | None, unit: str) -> str:
    """"+2.1 pts (+3.0%)", "−1h 20m (−5.3%)", "+14 (+2.0%)"; "n/a" without a comparison."""
    if delta is None:
        return "n/a"
    if unit == "fraction":
        text = _signed(f"{abs(delta) * 100:.1f} pts", delta < 0)
    elif unit == "seconds":
        text = _signed(duration(abs(delta)), delta < 0)
    elif unit in ("replies", "score", "currency"):
        text = _signed(f"{abs(delta):,.2f}", delta < 0)
    else:
        text = _signed(f"{abs(delta):,.0f}" if float(delta).is_integer() else f"{abs(delta):,.1f}", delta < 0)
    if pct is not None:
        text += f" ({_signed(f'{abs(pct) * 100:.1f}%', pct < 0)})"
    return text


def arrow(delta: float | None) -> str:
    if delta is None:
        return ""
    return "▲" if delta > 0 else "▼" if delta < 0 else "→"


def verdict(delta: float | None, better: str | None) -> str:
    """"better" / "worse" when the KPI has a good direction, "" when it does not or nothing changed."""
    if delta is None or not delta or better is None:
        return ""
    return "better" if (delta < 0) == (better == "lower") else "worse"


def approx(v: float | None) -> str:
    """A modelled count (forecast, baseline) rounded to a whole number: "≈ 471" reads as 471."""
    return "n/a" if v is None else f"{round(v):,}"


BLOCKS = "▁▂▃▄▅▆▇█"


def sparkline(values: list[float | None]) -> str:
    """"▁▃▅█" — the shape of a monthly series in one line of Markdown (a gap for a month without data)."""
    known = [v for v in values if v is not None]
    if not known:
        return ""
    low, high = min(known), max(known)
    span = (high - low) or 1
    return "".join(" " if v is None else BLOCKS[round((v - low) / span * (len(BLOCKS) - 1))] for v in values)


def percent(x: float | None, digits: int = 1) -> str:
    return "n/a" if x is None else f"{x * 100:.{digits}f}%"


def detail(kpi: str, row: dict[str, Any]) -> str:
    """The figures behind a value: median/p90/n for durations, numerator/denominator for rates."""
    if not row:
        return ""
    count = row.get("count")
    if "median" in row and "p90" in row:
        unit = "replies" if kpi == "replies_per_ticket" else "seconds"
        text = f"median {value(row.get('median'), unit)} · p90 {value(row.get('p90'), unit)} · n={count or 0:,}"
        if row.get("excluded"):
            text += f" ({row['excluded']:,} without a value)"
        if kpi == "handle_time" and row.get("coverage") is not None:
            text += f" · coverage {percent(row['coverage'])}"
        return text
    if kpi == "csat":
        text = f"{row.get('satisfied', 0):,} satisfied · {row.get('neutral', 0):,} neutral · {row.get('unsatisfied', 0):,} unsatisfied"
        if row.get("mean_score") is not None:
            text += f" · mean {number(row['mean_score'])}"
            text += f" on {row['scale']}" if row.get("scale") else ""
        return text
    if kpi == "sla_compliance":
        text = f"{row.get('numerator', 0):,} of {count or 0:,} resolutions in time"
        if row.get("first_reply_rate") is not None:
            text += (f" · first replies {percent(row['first_reply_rate'])} "
                     f"({row.get('first_reply_met', 0):,} of {row.get('first_reply_count', 0):,})")
        return text
    if kpi == "ticket_volume":
        return f"{row.get('inbound', 0):,} inbound · {row.get('outbound', 0):,} outbound"
    if kpi == "social_tickets" and row.get("share") is not None:
        return f"{percent(row['share'])} of {row.get('total', 0):,} tickets"
    if kpi == "overdue" and row.get("first_reply_overdue") is not None:
        return f"{row['first_reply_overdue']:,} unanswered past their first-reply due date"
    if kpi == "nps" and count:
        return f"{row.get('promoters', 0):,} promoters · {row.get('passives', 0):,} passives · {row.get('detractors', 0):,} detractors"
    if kpi == "resolution_rate" and row.get("throughput") is not None:
        return f"{row.get('numerator', 0):,} of {count or 0:,} resolved · throughput {percent(row['throughput'])}"
    if kpi == "converted_tickets":
        revenue = ", ".join(money(amount, currency) for currency, amount in sorted((row.get("revenue") or {}).items()))
        return (f"{row.get('converted', 0):,} of {count or 0:,} tickets · {row.get('orders', 0):,} orders"
                + (f" · revenue {revenue}" if revenue else ""))
    if kpi == "cost_per_contact" and row.get("cost") is not None:
        return f"{row['cost']:,.0f} {row.get('currency') or ''} ÷ {row.get('contacts', 0):,} contacts"
    if "numerator" in row and count is not None:
        text = f"{row['numerator']:,} of {count:,}"
        if row.get("zero_reply"):
            text += f" · {row['zero_reply']:,} resolved without a reply"
        return text
    return ""


def money(amount: Any, currency: str) -> str:
    """Revenue as the metrics core gives it (decimal text per currency), with thousands separators."""
    try:
        return f"{Decimal(str(amount)):,} {currency}"
    except InvalidOperation:
        return f"{amount} {currency}"


def target(row: dict[str, Any]) -> str:
    """"met" / "missed (median ≤ 1h)" when [targets] has a goal for the KPI, else ""."""
    verdict_ = row.get("target")
    if not verdict_ or verdict_.get("met") is None:
        return ""
    if verdict_["met"]:
        return "target met"
    rules = "; ".join(c["rule"] for c in verdict_["checks"] if c["met"] is False)
    return f"target missed ({rules})"

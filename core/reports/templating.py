"""The Jinja2 environments of the report templates (core/reports/templates) and their filters."""

from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from . import fmt
from .charts import month_label

TEMPLATES = Path(__file__).parent / "templates"
_MD_SPECIAL = re.compile(r"([\\`*_\[\]|<>#])")


def md(text: Any) -> str:
    """Text safe inside a Markdown table cell on common wikis: one line, no markup characters."""
    if text is None:
        return ""
    flat = " ".join(str(text).split())
    return _MD_SPECIAL.sub(lambda m: "&lt;" if m[1] == "<" else "&gt;" if m[1] == ">" else "\\" + m[1], flat)


def tone(delta: float | None, better: str | None) -> str:
    """CSS class of a change: good / bad / flat."""
    return {"better": "good", "worse": "bad"}.get(fmt.verdict(delta, better), "flat")


def one_line(text: Any, width: int = 0) -> str:
    flat = " ".join(str(text or "").split())
    return flat.ljust(width) if width else flat


@lru_cache(maxsize=2)
def environment(html: bool) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)),
        autoescape=html,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
        undefined=jinja2.StrictUndefined,
    )
    env.filters.update(
        value=fmt.value, approx=fmt.approx, change=fmt.change, arrow=fmt.arrow, verdict=fmt.verdict, percent=fmt.percent,
        detail=fmt.detail, target=fmt.target, money=fmt.money, month=month_label, md=md, tone=tone,
        one_line=one_line, spark_values=fmt.sparkline,
        spark=lambda points: fmt.sparkline([p.get("value") for p in points]),
    )
    return env


def context(report: Any) -> dict[str, Any]:
    """Template variables of a report: the report itself as `r`, plus what its kind explains."""
    out: dict[str, Any] = {"r": report}
    if report.kind == "agent":
        from .agent import MEDIAN_DEFINITION, MIN_PEERS

        out.update(median_definition=MEDIAN_DEFINITION, min_peers=MIN_PEERS)
    elif report.kind == "trends":
        from .trends import TREND_DEFINITION

        out.update(trend_definition=TREND_DEFINITION)
    return out

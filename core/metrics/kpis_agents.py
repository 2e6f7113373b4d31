"""The top-agents composite (§A.19): percentile ranks of five components, documented weights.

Weights are a kpisync design choice, not a vendor standard: resolved count 0.30, CSAT 0.25,
median first response 0.20 (lower is better), median full resolution 0.15 (lower is better),
one-touch rate 0.10. An agent is eligible with ≥ `min_resolved` resolutions in the period; a
component an agent has no data for is left out and the other weights re-normalised.
"""

from __future__ import annotations

import bisect
from collections import defaultdict
from typing import Any

from .kpis_quality import RESOLVED_NOW, rating_base, sentiment
from .cells import value_lists
from .query import Query, numbers, ticket_base
from .registry import Cells, kpi
from .stats import summarize_numbers

WEIGHTS = {"resolved": 0.30, "csat": 0.25, "first_response_median": 0.20, "resolution_median": 0.15, "one_touch": 0.10}
HIGHER_IS_BETTER = {"resolved": True, "csat": True, "first_response_median": False, "resolution_median": False, "one_touch": True}


def percentile_ranks(values: dict[str, float], higher_is_better: bool) -> dict[str, float]:
    """Rank of each value among the others in 0..1 (ties averaged), oriented so 1 is best."""
    n = len(values)
    if n == 1:
        return {k: 1.0 for k in values}
    ordered = sorted(values.values()) if higher_is_better else sorted((-v for v in values.values()))
    out = {}
    for key, value in values.items():
        v = value if higher_is_better else -value
        below = _count_below(ordered, v)
        equal = _count_below(ordered, v, inclusive=True) - below
        out[key] = (below + (equal - 1) / 2) / (n - 1)
    return out


def _count_below(ordered: list[float], v: float, inclusive: bool = False) -> int:
    return (bisect.bisect_right if inclusive else bisect.bisect_left)(ordered, v)


def _components(q: Query) -> dict[tuple[int, str], dict[str, Any]]:
    """The five components per (bucket, agent).

    Resolved count, one-touch rate and the resolution-time values come from one pass over the
    resolutions (the grouping by agent text key sorts every row, so it is paid once); ratings
    arrive counted per distinct (sentiment, value, scale) rather than one row each.
    """
    comps: dict[tuple[int, str], dict[str, Any]] = defaultdict(dict)
    resolution = q.value("f.last_resolved_at - f.created", "f.bh_full_res")
    for idx, key, n, one, replied, text in q.select(
        RESOLVED_NOW, "count(*), sum(f.outbound = 0 AND f.agent_replies = 1 AND f.reopens = 0), "
        f"sum(f.outbound = 0 AND f.agent_replies >= 1), group_concat({resolution})", group=True, by="agent",
    ):
        comp = comps[(idx, key)]
        comp["resolved"] = n
        comp["one_touch"] = one / replied if replied else None
        comp["resolution_median"] = summarize_numbers(numbers(text)).median
    moods: dict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])
    ratings = q.select_sql(rating_base("csat"), "count(*), r.sentiment, r.value, r.scale_min, r.scale_max", by="agent")
    for idx, key, n, stored, value, low, high in q.conn.execute(ratings + " GROUP BY 1, 2, 4, 5, 6, 7"):
        mood = moods[(idx, key)]
        mood[0] += n if sentiment(q.settings, stored, value, low, high) == 1 else 0
        mood[1] += n
    for cell, (positive, total) in moods.items():
        comps[cell]["csat"] = positive / total
    frt = ticket_base("f.first_reply_at", "f.first_reply_agent", "f.first_reply_group",
                      "f.excluded = 0 AND f.outbound = 0 AND f.first_reply_at IS NOT NULL")
    for cell, (values, _) in value_lists(q, frt, q.value("f.first_reply_at - f.created", "f.bh_first_reply"), by="agent").items():
        comps[cell]["first_response_median"] = summarize_numbers(values).median
    return comps


@kpi(
    "top_agents",
    unit="score",
    definition="Composite 0-100 of percentile ranks among agents with enough resolutions: resolved 30 %, CSAT 25 %, "
    "median first response 20 %, median resolution 15 %, one-touch 10 %.",
    data="tickets, messages, status history, ratings",
    empty=lambda: {"value": None},
    better="higher",
    params=("since", "until", "period", "hours"),
    dims=("agent",),
    default_by="agent",
    fill=False,
    order="rank",
)
def top_agents(q: Query) -> Cells:
    comps = _components(q)
    cells: Cells = {}
    buckets = {idx for idx, _ in comps}
    for idx in buckets:
        eligible = {
            key: c for (i, key), c in comps.items()
            if i == idx and key.partition("|")[2] and (c.get("resolved") or 0) >= q.settings.min_resolved
        }
        ranks: dict[str, dict[str, float]] = {}
        for name, higher in HIGHER_IS_BETTER.items():
            present = {k: c[name] for k, c in eligible.items() if c.get(name) is not None}
            ranks[name] = percentile_ranks(present, higher) if present else {}
        scored = []
        for key, c in eligible.items():
            parts = {name: ranks[name][key] for name in WEIGHTS if key in ranks[name]}
            weight = sum(WEIGHTS[name] for name in parts)
            score = 100 * sum(WEIGHTS[name] * r for name, r in parts.items()) / weight
            scored.append((key, round(score, 2), c, parts))
        scored.sort(key=lambda item: (-item[1], item[0]))
        for rank, (key, score, c, parts) in enumerate(scored, start=1):
            cells[(idx, key)] = {
                "value": score,
                "rank": rank,
                "resolved": c.get("resolved"),
                "csat": None if c.get("csat") is None else round(c["csat"], 6),
                "first_response_median": c.get("first_response_median"),
                "resolution_median": c.get("resolution_median"),
                "one_touch": None if c.get("one_touch") is None else round(c["one_touch"], 6),
                "components": {name: round(r, 6) for name, r in parts.items()},
            }
    return cells

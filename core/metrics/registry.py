"""The KPI registry: id, unit, one-line definition, data needed, parameters and the code.

A KPI module declares each KPI with `@kpi(...)` on its compute function. `compute(q)` returns
cells — `{(bucket index, group key): {"value": ..., "count": ..., ...}}` — and the engine turns
them into rows (empty buckets filled, labels, comparison, targets). `empty` is the cell of a
bucket with no data: counts are 0, averages are None (a median of nothing is not zero).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .query import DIMENSIONS, Context, Query

Cells = dict[tuple[int, str], dict[str, Any]]

COMMON_PARAMS = ("since", "until", "period", "by", "compare")


@dataclass(frozen=True)
class Need:
    """Data a KPI needs from each source; a source without it gets a plain-words note."""

    table: str
    where: str
    message: str  # "{source}" is replaced
    scope: str = "helpdesk"  # helpdesk: every ticket source; any: satisfied by any source


#: Resolution KPIs rebuild resolutions from the status history.
HISTORY = Need("ticket_status_events", "1", "no status history synced for source {source}: resolution figures unavailable")


@dataclass(frozen=True)
class Kpi:
    id: str
    unit: str
    definition: str
    data: str
    compute: Callable[[Query], Cells]
    empty: Callable[[], dict[str, Any]]
    better: str | None = None  # "lower" / "higher": which way is good (drill-down order, top agents)
    params: tuple[str, ...] = COMMON_PARAMS
    dims: tuple[str, ...] = DIMENSIONS
    needs: tuple[Need, ...] = ()
    drill: Callable[[Query, int], list[dict[str, Any]]] | None = None
    series: bool = False  # --spikes / --forecast apply
    notes: Callable[[Context], list[str]] | None = None
    default_by: str | None = None
    fill: bool = True  # emit every (bucket, group) combination, empty ones as `empty()`
    order: str = "label"  # row order within a bucket: "label" or "rank" (the cell's rank field)
    snapshot: bool = False  # a point-in-time count: buckets that start after now have no value

    def describe(self) -> dict[str, Any]:
        return {
            "kpi": self.id,
            "unit": self.unit,
            "definition": self.definition,
            "data": self.data,
            "params": list(self.params),
            "by": list(self.dims),
        }


REGISTRY: dict[str, Kpi] = {}


def kpi(
    id: str,
    *,
    unit: str,
    definition: str,
    data: str,
    empty: Callable[[], dict[str, Any]],
    **options: Any,
) -> Callable[[Callable[[Query], Cells]], Callable[[Query], Cells]]:
    """Register the decorated compute function as KPI `id`."""

    def register(compute: Callable[[Query], Cells]) -> Callable[[Query], Cells]:
        REGISTRY[id] = Kpi(id=id, unit=unit, definition=definition, data=data, compute=compute, empty=empty, **options)
        return compute

    return register


#: Listing order (the issue's order); KPIs registered elsewhere follow.
ORDER = (
    "first_response_time", "response_time", "first_resolution_time", "resolution_time", "requester_wait_time",
    "agent_wait_time", "handle_time", "ticket_volume", "tickets_handled", "tickets_closed", "backlog", "overdue",
    "sla_compliance", "csat", "nps", "one_touch_resolution", "first_contact_resolution", "resolution_rate",
    "reopen_rate", "replies_per_ticket", "automated_resolution_rate", "social_tickets", "mentions",
    "converted_tickets", "macro_usage", "cost_per_contact", "top_agents",
)


def all_kpis() -> dict[str, Kpi]:
    """Every registered KPI in listing order (importing the KPI modules registers them)."""
    from . import kpis_agents, kpis_conversion, kpis_quality, kpis_time, kpis_volume  # noqa: F401

    rank = {k: i for i, k in enumerate(ORDER)}
    return dict(sorted(REGISTRY.items(), key=lambda item: (rank.get(item[0], len(ORDER)), item[0])))


def empty_duration() -> dict[str, Any]:
    return {"value": None, "median": None, "p90": None, "count": 0, "excluded": 0}


def empty_count() -> dict[str, Any]:
    return {"value": 0}


def empty_rate() -> dict[str, Any]:
    return {"value": None, "numerator": 0, "count": 0}


@dataclass
class Availability:
    notes: list[str] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)
    all_missing: bool = False

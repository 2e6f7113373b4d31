"""Cell builders shared by the KPI modules: durations, counts and rates per (bucket, group)."""

from __future__ import annotations

from typing import Any

from .query import Base, Query, numbers
from .registry import Cells, empty_duration
from .stats import summarize_numbers


def _round(value: float | None, digits: int = 3) -> float | None:
    return None if value is None else round(value, digits)


def summary_cell(values: list[float], nulls: int = 0) -> dict[str, Any]:
    """Mean (the value), median, p90, count and the nulls excluded, §A "Aggregation".

    `values` are numbers without None (as `value_lists` gives them); sorted in place.
    """
    s = summarize_numbers(values, nulls)
    return {"value": _round(s.mean), "median": _round(s.median), "p90": _round(s.p90), "count": s.count,
            "excluded": s.nulls}


def value_lists(
    q: Query, base: Base, value: str, where: str = "1", by: str | None = None, params: tuple[Any, ...] = ()
) -> dict[tuple[int, str], tuple[list[float], int]]:
    """Per cell: the non-null values of a column and how many were NULL.

    The values travel as one `group_concat` text per cell and are parsed in C: fetching a
    million single-value rows into Python costs several times more than the statistics.
    Values are integers (seconds, counts), so their text form is exact.
    """
    sql = q.select_sql(base, f"group_concat({value}), count(*) - count({value})", where, by) + " GROUP BY 1, 2"
    return {(idx, key): (numbers(text), nulls) for idx, key, text, nulls in q.conn.execute(sql, params)}


def durations(
    q: Query,
    base: Base,
    value: str,
    where: str = "1",
    excluded: tuple[Base, str] | None = None,
    params: tuple[Any, ...] = (),
) -> Cells:
    """Per-cell summary of a duration column; a NULL value is excluded and counted.

    `excluded` adds rows that have no value and no event time of their own (unanswered
    tickets: counted in the bucket of another column, e.g. creation).
    """
    cells: Cells = {key: summary_cell(values, nulls) for key, (values, nulls) in value_lists(q, base, value, where, params=params).items()}
    if excluded is not None:
        other, other_where = excluded
        for idx, key, n in q.select(other, "count(*)", other_where, group=True):
            cell = cells.setdefault((idx, key), empty_duration())
            cell["excluded"] += n
    return cells


def rates(q: Query, base: Base, numerator: str, where: str = "1") -> Cells:
    """value = rows meeting `numerator` ÷ rows (None when there are none); count = denominator."""
    cells: Cells = {}
    for idx, key, num, den in q.select(base, f"sum(CASE WHEN {numerator} THEN 1 ELSE 0 END), count(*)", where, group=True):
        cells[(idx, key)] = {"value": _round(num / den, 6) if den else None, "numerator": num, "count": den}
    return cells


def ratio(num: float | None, den: float | None, digits: int = 6) -> float | None:
    if num is None or not den:
        return None
    return round(num / den, digits)


def drill(
    q: Query,
    base: Base,
    value: str,
    where: str = "1",
    *,
    agg: str = "max",
    worst: str = "desc",
    limit: int = 50,
) -> list[dict[str, Any]]:
    """The tickets behind a value, worst first: (source, ticket id, link, per-ticket figure)."""
    from .query import labels  # the label lookup is shared with the engine

    key, _, joins = q.group_key(base)
    sql = (
        f"SELECT f.source, f.ticket_id, f.url, {agg}({value}) AS v, max({base.time}) AS t, {key} AS g "
        f"FROM {q.from_clause(base, True)} {joins} WHERE {base.where} AND {where} "
        f"GROUP BY f.tid ORDER BY v {'DESC' if worst == 'desc' else 'ASC'} NULLS LAST, f.source, f.ticket_id LIMIT ?"
    )
    rows = q.conn.execute(sql, (limit,)).fetchall()
    names = labels(q.ctx, q.by, {r[5] for r in rows})
    return [
        {
            "source": r[0],
            "ticket_id": r[1],
            "url": r[2],
            "value": r[3],
            "at": r[4],
            "group": names[r[5]],
        }
        for r in rows
    ]

"""`kpisync kpi list` and `kpisync kpi <id> [options]`: one KPI as a table or JSON."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from kpisync.core.errors import ConfigError

from .app import ConfigOption, DbOption, JsonOption, app
from .common import open_store

if TYPE_CHECKING:  # the metrics core is imported when a KPI command runs, not at every CLI start
    from kpisync.core.metrics.engine import Result
    from kpisync.core.metrics.settings import MetricsSettings

#: Extra row fields shown as durations / percentages in the terminal table.
DURATION_FIELDS = {"median", "p90", "first_response_median", "resolution_median"}
FRACTION_FIELDS = {"share", "rate", "response_rate", "throughput", "coverage", "first_reply_rate", "csat", "one_touch"}
HIDDEN = {"period", "group", "group_id", "value", "target", "comments", "comments_total", "components", "explain",
          "previous", "previous_period", "change", "change_pct", "forecast", "lo80", "hi80", "lo95", "hi95",
          "spike", "spike_score", "baseline", "currency", "scale", "first_reply_met", "numerator", "at", "partial"}


def settings_from(config: str | None) -> MetricsSettings:
    from kpisync.core.config import load_config_file
    from kpisync.core.metrics.settings import load_settings

    return load_settings(load_config_file(config))


@app.command("kpi")
def kpi_command(
    name: str = typer.Argument(..., help="KPI id (see `kpisync kpi list`), or `list`."),
    period: Optional[str] = typer.Option(None, "--period", help="Buckets: hour, day, week, month, quarter, year."),
    by: Optional[str] = typer.Option(None, "--by", help="Group by agent, group, channel, source, organization, segment, priority, tag."),
    since: Optional[str] = typer.Option(None, "--since", help="Start (date in the reporting time zone, or ISO datetime)."),
    until: Optional[str] = typer.Option(None, "--until", help="End, exclusive (default: now)."),
    hours: str = typer.Option("calendar", "--hours", help="Durations in calendar or business hours."),
    compare: Optional[str] = typer.Option(None, "--compare", help="previous (the same span before) or year."),
    cohort: str = typer.Option("event", "--cohort", help="event (default) or created: attribute to ticket creation."),
    spikes: bool = typer.Option(False, "--spikes", help="Flag and explain spikes (volume, social tickets, mentions)."),
    forecast: Optional[int] = typer.Option(None, "--forecast", help="Forecast the next N periods."),
    tickets: bool = typer.Option(False, "--tickets", help="List the tickets behind the value, worst first."),
    limit: int = typer.Option(50, "--limit", help="Tickets listed by --tickets."),
    check_targets: bool = typer.Option(False, "--check-targets", help="Exit 1 when a \\[targets] goal is missed."),
    rebuild_facts: bool = typer.Option(False, "--rebuild-facts", help="Rebuild all derived facts first."),
    db: Optional[str] = DbOption,
    config: Optional[str] = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Compute one KPI (or `list` them): per period and group, against targets and a previous period."""
    from kpisync.core.facts import refresh_all
    from kpisync.core.metrics.engine import evaluate

    if name == "list":
        _list(as_json)
        return
    settings = settings_from(config)
    if check_targets and name not in settings.targets:
        raise ConfigError(f"--check-targets: no [targets] {name} in the config file")
    with open_store(db) as store:
        if rebuild_facts:
            refresh_all(store, settings)
        result = evaluate(
            store, name, settings=settings, period=period, by=by, since=since, until=until, hours=hours,
            compare=compare, cohort=cohort, spikes=spikes, forecast=forecast, tickets=tickets, limit=limit,
        )
    if as_json:
        print(json.dumps(result.to_dict(), indent=2, default=str))
    else:
        show(result, Console())
    if check_targets and result.missed_targets:
        Console(stderr=True).print(f"[red]{len(result.missed_targets)} target(s) missed[/]", highlight=False)
        raise typer.Exit(1)


def _list(as_json: bool) -> None:
    from kpisync.core.metrics.registry import all_kpis

    kpis = [k.describe() for k in all_kpis().values()]
    if as_json:
        print(json.dumps(kpis, indent=2))
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("kpi", "unit", "definition", "data needed"):
        table.add_column(column, overflow="fold")
    for k in kpis:
        table.add_row(k["kpi"], k["unit"], k["definition"], k["data"])
    Console().print(table)


def show(result: Result, console: Console) -> None:
    """The terminal view of one KPI result."""
    p = result.params
    scope = f"{p['since'][:16]} → {p['until'][:16]} ({p['timezone']})"
    extras = [f"by {p['by']}" if p.get("by") else "", f"{p['hours']} hours" if p.get("hours") == "business" else "",
              f"vs {p['compare']}" if p.get("compare") else ""]
    console.print(f"[bold]{result.kpi}[/] — {result.definition}", highlight=False)
    console.print(f"  {scope} {' · '.join(e for e in extras if e)}", style="dim", highlight=False)
    if p.get("tickets"):
        _tickets(result, console)
    elif result.rows:
        _table(result, console)
    else:
        console.print("  no rows")
    for row in result.rows:
        for item in row.get("explain", []):
            console.print(f"  spike {row['period']}: {item['by']} {item['group']} {item['value']:g} vs baseline "
                          f"{item['baseline']:g}", highlight=False, markup=False)
    _comments(result, console)
    for note in result.notes:
        console.print(f"  [yellow]note:[/] {escape(note)}", highlight=False)


def _table(result: Result, console: Console) -> None:
    rows, unit = result.rows, result.unit
    table = Table(box=None, header_style="bold", pad_edge=False)
    show_period = result.params.get("period") is not None or any(r.get("forecast") for r in rows)
    show_group = result.params.get("by") is not None
    extra = [k for k in rows[0] if k not in HIDDEN and not isinstance(rows[0][k], (list, dict))]
    columns = (["period"] if show_period else []) + (["group"] if show_group else []) + ["value"] + extra
    has = {key: any(key in r for r in rows) for key in ("previous", "target", "spike", "forecast")}
    columns += ["previous", "change"] if has["previous"] else []
    columns += ["spike"] if has["spike"] else []
    columns += ["80% interval"] if has["forecast"] else []
    columns += ["target"] if has["target"] else []
    for column in columns:
        keep = column in ("period", "value")  # never cut a date or the figure itself
        table.add_column(column, justify="left" if column in ("period", "group", "target") else "right", no_wrap=keep,
                         min_width=len(rows[0].get("period") or "") if column == "period" else None)
    for row in rows:
        cells = []
        for column in columns:
            cells.append(_cell(row, column, unit))
        table.add_row(*cells, style="italic" if row.get("forecast") else None)
    console.print(table)


def _cell(row: dict[str, Any], column: str, unit: str) -> str:
    from kpisync.core.metrics.format import change, human
    from kpisync.core.metrics.targets import verdict_text

    if column == "period":
        return escape(str(row.get("period") or "")) + (" (partial)" if row.get("partial") else "")
    if column == "group":
        return escape(str(row.get("group") or ""))
    if column == "value":
        text = human(row.get("value"), unit)
        return text + (" (forecast)" if row.get("forecast") else "")
    if column == "previous":
        return human(row.get("previous"), unit)
    if column == "change":
        return change(row.get("previous"), row.get("value"), unit)
    if column == "spike":
        if row.get("spike_score") is None:
            return ""
        return ("SPIKE " if row.get("spike") else "") + f"z={row['spike_score']:.1f}"
    if column == "80% interval":
        return f"{row['lo80']:g}–{row['hi80']:g}" if row.get("forecast") else ""
    if column == "target":
        return verdict_text(row["target"], unit) if row.get("target") else ""
    value = row.get(column)
    if column in DURATION_FIELDS:
        return human(value, "seconds")
    if column in FRACTION_FIELDS:
        return human(value, "fraction")
    return human(value, "count")


def _tickets(result: Result, console: Console) -> None:
    """One line per ticket, never wrapped, so the link stays clickable and copyable."""
    from kpisync.core.metrics.format import human

    unit = result.unit if result.unit == "seconds" else "count"
    grouped = result.params.get("by") is not None
    for row in result.rows:
        parts = [f"#{row['ticket_id']}", row["source"], human(row["value"], unit), str(row.get("at") or "")[:16]]
        if grouped:
            parts.append(str(row.get("group") or ""))
        parts.append(row.get("url") or "")
        console.print("  " + "  ".join(parts), soft_wrap=True, highlight=False, markup=False)


def _comments(result: Result, console: Console) -> None:
    shown = 0
    for row in result.rows:
        for comment in row.get("comments", [])[: 5 - shown]:
            mood = {1: "[green]+[/]", 0: "[yellow]·[/]", -1: "[red]−[/]"}.get(comment["sentiment"], "?")
            console.print(f"  {mood} #{comment['ticket_id']}: {escape(comment['comment'])}", highlight=False)
            shown += 1

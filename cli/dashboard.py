"""`kpisync dashboard [--role NAME]`: the headline KPIs of a role on one screen."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from .app import ConfigOption, DbOption, JsonOption, app
from .common import open_store
from .kpi import settings_from

if TYPE_CHECKING:  # the metrics core is imported when the command runs, not at every CLI start
    from kpisync.core.metrics.engine import Result

ROLE_NAMES = "support_manager, support_specialist, technical_support, customer_success, call_center, voice_of_customer"


@app.command("dashboard")
def dashboard_command(
    role: Optional[str] = typer.Option(None, "--role", help=f"KPI preset: {ROLE_NAMES} (or [metrics.roles])."),
    since: Optional[str] = typer.Option(None, "--since", help="Start (default: 30 days before --until)."),
    until: Optional[str] = typer.Option(None, "--until", help="End, exclusive (default: now, or the latest data)."),
    hours: str = typer.Option("calendar", "--hours", help="Durations in calendar or business hours."),
    compare: bool = typer.Option(True, "--compare/--no-compare", help="Compare with the previous period."),
    check_targets: bool = typer.Option(False, "--check-targets", help="Exit 1 when a \\[targets] goal is missed."),
    db: Optional[str] = DbOption,
    config: Optional[str] = ConfigOption,
    as_json: bool = JsonOption,
) -> None:
    """Headline KPIs for a role (default: the team overview), with change and targets."""
    from kpisync.core.metrics.roles import dashboard

    settings = settings_from(config)
    with open_store(db) as store:
        board = dashboard(store, role, settings=settings, since=since, until=until, hours=hours,
                          compare="previous" if compare else None)
    if as_json:
        print(json.dumps(board.to_dict(), indent=2, default=str))
    else:
        show(board.results, role, board.notes, Console())
    if check_targets and board.missed_targets:
        Console(stderr=True).print(f"[red]{len(board.missed_targets)} target(s) missed[/]", highlight=False)
        raise typer.Exit(1)


def show(results: list[Result], role: str | None, notes: list[str], console: Console) -> None:
    if not results:
        console.print("no KPIs")
        return
    p = results[0].params
    console.print(f"[bold]kpisync dashboard[/] {('— ' + role) if role else ''}", highlight=False)
    console.print(f"  {p['since'][:16]} → {p['until'][:16]} ({p['timezone']})", style="dim", highlight=False)
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("kpi", "value", "detail", "previous", "change", "target"):
        table.add_column(column, justify="right" if column in ("value", "previous", "change") else "left",
                         no_wrap=column in ("kpi", "value"))
    notes = [n for n in notes if not n.startswith("facts rebuilt")]
    for result in results:
        table.add_row(result.kpi, *_headline(result))
        notes += [f"{result.kpi}: {n}" for n in result.notes]
    console.print(table)
    for result in results:
        if result.kpi == "csat":
            comments = [c for row in result.rows for c in row.get("comments", [])]
            for comment in comments[:5]:
                mood = {1: "+", 0: "·", -1: "−"}.get(comment["sentiment"], "?")
                console.print(f"  {mood} #{comment['ticket_id']}: {comment['comment']}", highlight=False, markup=False)
    for note in dict.fromkeys(notes):
        console.print(f"  [yellow]note:[/] {escape(note)}", highlight=False)


def _headline(result: Result) -> tuple[str, str, str, str, str]:
    """(value, detail, previous, change, target) of a one-row (or ranked) result."""
    from kpisync.core.metrics.format import change, human
    from kpisync.core.metrics.targets import verdict_text

    unit = result.unit
    if result.kpi == "top_agents":
        if not result.rows:
            return ("n/a", "", "", "", "")
        first, *others = result.rows[:3]
        detail = "then " + ", ".join(f"{escape(r['group'])} ({r['value']:.0f})" for r in others) if others else ""
        return (f"{escape(first['group'])} ({first['value']:.0f})", detail, "", "", "")
    if not result.rows:
        return ("n/a", "", "", "", "")
    row: dict[str, Any] = result.rows[0]
    detail = ""
    if unit == "seconds":
        detail = f"median {human(row.get('median'), unit)}, p90 {human(row.get('p90'), unit)}, n={row.get('count', 0)}"
    elif "count" in row and unit in ("fraction", "score", "replies"):
        detail = f"n={row['count']}"
    elif result.kpi == "ticket_volume":
        detail = f"{row.get('inbound', 0)} in / {row.get('outbound', 0)} out"
    elif result.kpi == "cost_per_contact" and row.get("cost") is not None:
        detail = f"{row['cost']:,.0f} {row.get('currency') or ''} / {row['contacts']} contacts"
    target = verdict_text(row["target"], unit) if row.get("target") else ""
    return (human(row.get("value"), unit), detail, human(row.get("previous"), unit) if "previous" in row else "",
            change(row.get("previous"), row.get("value"), unit) if "previous" in row else "", target)

"""`kpisync report team|agents|trends`: the monthly team report, private agent reports (files or
e-mail) and the management trends report, as Markdown, one self-contained HTML file, or JSON."""

from __future__ import annotations

import re
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from kpisync.core.errors import ConfigError

from .app import ConfigOption, DbOption, app
from .common import open_store
from .kpi import settings_from

report_app = typer.Typer(help="Reports: team (monthly, vs previous periods), agents (private), trends (management).",
                         no_args_is_help=True)
app.add_typer(report_app, name="report")

MonthOption = typer.Option(None, "--month", help="YEAR-MONTH, e.g. 2026-10 (default: the last complete month with data).")
FormatOption = typer.Option("md", "--format", "-f", help="md (wiki-ready), html (one self-contained file with charts) or json.")
OutputOption = typer.Option(None, "--output", "-o", help="Write to this file instead of standard output.")
HoursOption = typer.Option("calendar", "--hours", help="Durations in calendar or business hours.")


def _emit(text: str, output: Optional[Path]) -> None:
    if output is None:
        sys.stdout.write(text)
        return
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    Console(stderr=True).print(f"wrote {output}", highlight=False)


def _check_format(fmt: str) -> None:
    from kpisync.core.reports import FORMATS

    if fmt not in FORMATS:
        raise ConfigError(f"--format must be one of {', '.join(FORMATS)}, got {fmt!r}")


@report_app.command("team")
def team_command(
    month: Optional[str] = MonthOption,
    fmt: str = FormatOption,
    output: Optional[Path] = OutputOption,
    hours: str = HoursOption,
    db: Optional[str] = DbOption,
    config: Optional[str] = ConfigOption,
) -> None:
    """The monthly team report: every KPI vs the previous month and the same month last year."""
    from kpisync.core.reports import render, team_report

    _check_format(fmt)
    settings = settings_from(config)
    with open_store(db) as store:
        text = render(team_report(store, settings, month=month, hours=hours), fmt)
    _emit(text, output)


@report_app.command("trends")
def trends_command(
    months: int = typer.Option(12, "--months", help="Months covered, ending with --month (at least 2)."),
    month: Optional[str] = typer.Option(None, "--month", help="Last month covered, YEAR-MONTH (default: the last complete month with data)."),
    forecast: int = typer.Option(3, "--forecast", help="Months to forecast for ticket and social counts (0: none)."),
    fmt: str = FormatOption,
    output: Optional[Path] = OutputOption,
    hours: str = HoursOption,
    db: Optional[str] = DbOption,
    config: Optional[str] = ConfigOption,
) -> None:
    """The management trends report: headline KPIs by month with trend lines and forecast bands."""
    from kpisync.core.reports import render, trends_report

    _check_format(fmt)
    settings = settings_from(config)
    with open_store(db) as store:
        text = render(trends_report(store, settings, months=months, month=month, forecast=forecast, hours=hours), fmt)
    _emit(text, output)


def file_name(report: object, fmt: str) -> str:
    """agent-mia-graf-zendesk-10005-2026-10.html: readable, unique per agent account and month."""
    from kpisync.core.reports import SUFFIX

    agent = report.agent  # type: ignore[attr-defined]
    slug = re.sub(r"[^a-z0-9]+", "-", agent.name.lower()).strip("-") or "agent"
    ident = re.sub(r"[^A-Za-z0-9_.-]+", "-", f"{agent.source}-{agent.external_id}")
    return f"agent-{slug}-{ident}-{report.span.first.strftime('%Y-%m')}{SUFFIX[fmt]}"  # type: ignore[attr-defined]


@report_app.command("agents")
def agents_command(
    month: Optional[str] = MonthOption,
    fmt: str = FormatOption,
    out_dir: Optional[Path] = typer.Option(None, "--out-dir", help="Write one private file per agent into this folder."),
    agent: Optional[str] = typer.Option(None, "--agent", help="Only this agent (e-mail, name or source:id)."),
    send: bool = typer.Option(False, "--send", help="E-mail each agent their own report through \\[report.smtp]."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show what --send would send to whom; send nothing."),
    output: Optional[Path] = OutputOption,
    hours: str = HoursOption,
    db: Optional[str] = DbOption,
    config: Optional[str] = ConfigOption,
) -> None:
    """Private reports: each agent's own month vs their previous month and the team median."""
    from kpisync.core.config import load_config_file
    from kpisync.core.reports import agent_reports, render
    from kpisync.core.reports.mail import build, send as deliver, smtp_settings

    _check_format(fmt)
    if not (out_dir or send or dry_run or agent or fmt == "json"):
        raise ConfigError("choose where the private reports go: --out-dir DIR, --send (or --dry-run), "
                          "or --agent EMAIL to print one agent's report")
    settings = settings_from(config)
    smtp = smtp_settings(load_config_file(config)) if send and not dry_run else None  # fail before the work
    with open_store(db) as store:
        reports = agent_reports(store, settings, month=month, hours=hours, only=agent)
    console = Console(stderr=True)
    if not reports:
        console.print("no agent was active in the period: no reports", highlight=False)
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for report in reports:
            (out_dir / file_name(report, fmt)).write_text(render(report, fmt), encoding="utf-8")
        console.print(f"wrote {len(reports)} agent report(s) to {out_dir}", highlight=False)
    if dry_run or send:
        sender = smtp.sender if smtp else _sender_or_placeholder(config)
        outgoing = build(reports, sender)
        if dry_run:
            _show_dry_run(outgoing, sender)
            return
        assert smtp is not None
        results = deliver(outgoing, smtp)
        failed = [r for r in results if not r.ok]
        for r in results:
            status = "sent" if r.ok else f"NOT sent: {r.detail}"
            console.print(f"{r.agent} <{r.recipient or '-'}>: {status}", highlight=False, markup=False)
        console.print(f"{len(results) - len(failed)} of {len(results)} report(s) sent", highlight=False)
        if failed:
            raise typer.Exit(1)
        return
    if out_dir is None:
        if fmt == "json" and agent is None:
            import json

            _emit(json.dumps([r.to_dict() for r in reports], indent=2, ensure_ascii=False, default=str) + "\n", output)
        else:
            _emit("".join(render(r, fmt) for r in reports), output)


def _sender_or_placeholder(config: Optional[str]) -> str:
    from kpisync.core.config import load_config_file

    table = (load_config_file(config).get("report") or {}).get("smtp") or {}
    return str(table.get("from") or "(no [report.smtp] from address configured)")


def _show_dry_run(outgoing: list, sender: str) -> None:
    from rich.markup import escape

    console = Console()
    count = sum(o.message is not None for o in outgoing)
    console.print(f"dry run: {count} message(s) from {sender}, nothing sent", markup=False, highlight=False,
                  soft_wrap=True)
    table = Table(header_style="bold", box=None, pad_edge=False)
    for column in ("to", "agent", "subject", "size"):
        table.add_column(column, justify="right" if column == "size" else "left", no_wrap=column == "to")
    for item in outgoing:
        if item.message is None:
            table.add_row("-", escape(item.report.agent.name), escape(f"skipped: {item.skipped}"), "")
        else:
            size = len(item.message.as_bytes())
            table.add_row(escape(item.recipient), escape(item.report.agent.name), escape(item.message["Subject"]),
                          f"{size / 1024:.0f} KiB")
    console.print(table)

"""`kpisync status`: per source and stream — cursor, last run, rows, requests, errors."""

from __future__ import annotations

import json
import sys
from typing import Any, Optional

import typer
from rich.console import Console
from rich.table import Table

from kpisync.core.config import configured_sources, load_config_file
from kpisync.core.errors import ConfigError
from kpisync.core.schedule import format_duration, parse_duration
from kpisync.core.status import empty_status, format_lag, source_status, stale_reason

from .app import ConfigOption, DbOption, JsonOption, app
from .common import open_store


@app.command()
def status(
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
    config: Optional[str] = ConfigOption,
    max_lag: Optional[str] = typer.Option(
        None, "--max-lag", help="Exit 1 when a source's last success is older than this (e.g. 1h) or missing.", show_default=False
    ),
) -> None:
    """Show what each source has synced and how its last run went."""
    limit = parse_duration(max_lag) if max_lag else None
    with open_store(db) as store:
        sources = _with_configured(source_status(store), config)
    stale_lines = []
    if limit is not None:
        for info in sources:
            info["stale"] = stale_reason(info, limit)
            if info["stale"]:
                stale_lines.append(f"stale: {info['stale']} (max lag {format_duration(limit)})")
    if as_json:
        print(json.dumps(sources, indent=2))
        _exit_if_stale(stale_lines)
        return
    console = Console()
    if not sources:
        console.print("nothing synced yet — run `kpisync pull SOURCE` (or `kpisync demo`)")
        _exit_if_stale(["stale: no source has ever synced"] if limit is not None else [])
        return
    for info in sources:
        run = info["last_run"] or {}
        console.print(
            f"[bold]{info['source']}[/] ({info.get('connector', '?')}): last run {run.get('status', '—')} "
            f"at {run.get('finished_at') or run.get('started_at') or '—'}, "
            f"{run.get('requests', 0)} requests; last success {info['last_success'] or 'never'}"
            + (f" ({format_lag(info['lag_seconds'])} ago)" if info.get("lag_seconds") is not None else ""),
            highlight=False,
        )
        if info.get("last_error"):
            error = info["last_error"]
            console.print(f"  [red]last error[/] ({error['status']}, {error['at']}): {error['error']}", highlight=False)
        table = Table(box=None, header_style="bold", pad_edge=False)
        for column in ("stream", "last status", "records", "requests", "cursor", "error"):
            table.add_column(column)
        for name, stream in info["streams"].items():
            table.add_row(
                name,
                str(stream.get("last_status", "—")),
                str(stream.get("records", "")),
                str(stream.get("requests", "")),
                _short(stream.get("state")),
                stream.get("error") or "",
            )
        if info["streams"]:  # a configured source that never ran has none
            console.print(table)
        rows = ", ".join(f"{table}={count:,}" for table, count in info["rows"].items())
        console.print(f"  rows: {rows or 'none'}", highlight=False)
        for notice in run.get("notices", []):
            console.print(f"  [yellow]notice:[/] {notice}", highlight=False)
    _exit_if_stale(stale_lines)


def _with_configured(sources: list[dict[str, Any]], config: str | None) -> list[dict[str, Any]]:
    """Add configured sources the store has never seen (they count as stale for --max-lag)."""
    try:
        names = configured_sources(load_config_file(config))
    except ConfigError:
        if config is not None:
            raise
        names = {}  # a broken default kpisync.toml must not break `status`
    known = {info["source"] for info in sources}
    extra = [empty_status(name) for name in names if name not in known]
    return sorted(sources + extra, key=lambda info: info["source"])


def _exit_if_stale(lines: list[str]) -> None:
    for line in lines:
        print(line, file=sys.stderr)
    if lines:
        raise typer.Exit(1)


def _short(state: object) -> str:
    text = json.dumps(state) if state is not None else "—"
    return text if len(text) <= 48 else text[:45] + "..."

"""`kpisync status`: per source and stream — cursor, last run, rows, requests, errors."""

from __future__ import annotations

import json
from typing import Optional

from rich.console import Console
from rich.table import Table

from kpisync.core.status import source_status

from .app import DbOption, JsonOption, app
from .common import open_store


@app.command()
def status(db: Optional[str] = DbOption, as_json: bool = JsonOption) -> None:
    """Show what each source has synced and how its last run went."""
    with open_store(db) as store:
        sources = source_status(store)
    if as_json:
        print(json.dumps(sources, indent=2))
        return
    console = Console()
    if not sources:
        console.print("nothing synced yet — run `kpisync pull SOURCE` (or `kpisync demo`)")
        return
    for info in sources:
        run = info["last_run"] or {}
        console.print(
            f"[bold]{info['source']}[/] ({info.get('connector', '?')}): last run {run.get('status', '—')} "
            f"at {run.get('finished_at') or run.get('started_at') or '—'}, "
            f"{run.get('requests', 0)} requests; last success {info['last_success'] or 'never'}",
            highlight=False,
        )
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
        console.print(table)
        rows = ", ".join(f"{table}={count:,}" for table, count in info["rows"].items())
        console.print(f"  rows: {rows or 'none'}", highlight=False)
        for notice in run.get("notices", []):
            console.print(f"  [yellow]notice:[/] {notice}", highlight=False)


def _short(state: object) -> str:
    text = json.dumps(state) if state is not None else "—"
    return text if len(text) <= 48 else text[:45] + "..."

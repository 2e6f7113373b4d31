"""`kpisync connectors list`: every installed connector, built-in or plugin."""

from __future__ import annotations

import json

import typer
from rich.console import Console
from rich.table import Table

from kpisync.core.errors import KpisyncError
from kpisync.core.registry import connector_names, entry_point_value, load_connector

from .app import JsonOption, app

connectors_app = typer.Typer(help="Installed connectors.", no_args_is_help=True)
app.add_typer(connectors_app, name="connectors")


@connectors_app.command("list")
def list_connectors(as_json: bool = JsonOption) -> None:
    """Name, kind, title and settings of each connector found through entry points."""
    rows = []
    for name in connector_names():
        try:
            cls = load_connector(name)
        except KpisyncError as exc:
            rows.append({"name": name, "kind": "?", "title": f"(broken: {exc})", "module": entry_point_value(name), "settings": []})
            continue
        settings = [
            f"{field}{'' if info.is_required() else '?'}" for field, info in cls.config_model.model_fields.items()
        ]
        rows.append({"name": name, "kind": cls.kind, "title": cls.title, "module": entry_point_value(name), "settings": settings})
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    table = Table(box=None, header_style="bold")
    for column in ("name", "kind", "title", "settings (? = optional)"):
        table.add_column(column)
    for row in rows:
        table.add_row(row["name"], row["kind"], row["title"], ", ".join(row["settings"]))
    Console().print(table)

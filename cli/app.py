"""The typer application object and the options shared by commands.

Command modules import `app` from here and add themselves; `main.py` imports every command
module once. Keeping the app in its own module lets a command module be added without touching
the others.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="kpisync",
    help="Pull help-desk, social and shop data into one SQLite store and compute support KPIs.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

DB_HELP = "SQLite store (default: $KPISYNC_DB, else ./kpisync.db)"
CONFIG_HELP = "Config file (default: ./kpisync.toml if present)"
DbOption = typer.Option(None, "--db", help=DB_HELP, show_default=False)
ConfigOption = typer.Option(None, "--config", help=CONFIG_HELP, show_default=False)
JsonOption = typer.Option(False, "--json", help="Machine-readable JSON on stdout.")

"""`kpisync import helprace-ratings FILE.csv`: Helprace CSAT from its export (the API has none).

The expected columns are documented in kpisync/connectors/helprace/ratings_csv.py and in the
connector's README. Good rows are written in one transaction; bad rows are listed with their
line numbers and the command then exits 1. Importing the same file again changes nothing.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional

import typer

from .app import DbOption, app
from .common import open_store

import_app = typer.Typer(help="Import exports that have no API into the store.", no_args_is_help=True)
app.add_typer(import_app, name="import")


@import_app.command("helprace-ratings")
def helprace_ratings(
    file: Path = typer.Argument(..., help="Helprace's satisfaction export (CSV, UTF-8)."),
    source: str = typer.Option("helprace", "--source", help="Source name the ratings belong to."),
    scale: int = typer.Option(5, "--scale", min=2, help="Top of the scale when ratings are numbers (1..scale)."),
    db: Optional[str] = DbOption,
) -> None:
    """Import Helprace satisfaction ratings (CSV) into the `ratings` table."""
    from kpisync.connectors.helprace.ratings_csv import read_ratings  # the CSV format lives with the connector

    with open_store(db) as store:
        agents = {
            row[0]: row[1]
            for row in store.query(
                "SELECT email_norm, external_id FROM users WHERE source = ? AND role IN ('agent', 'admin', 'light_agent') "
                "AND email_norm IS NOT NULL",
                (source,),
            )
        }
        result = read_ratings(file, agents, scale)
        written = store.write_batch(source, "ratings_import", result.ratings, None) if result.ratings else 0
    print(f"{file}: imported {len(result.ratings)} rating(s) into source '{source}' ({written} new or changed)")
    if result.errors:
        print(f"{file}: skipped {len(result.errors)} bad row(s):", file=sys.stderr)
        for line, reason in result.errors:
            print(f"  line {line}: {reason}", file=sys.stderr)
        sys.exit(1)  # not typer.Exit: the exit code must survive standalone_mode=False

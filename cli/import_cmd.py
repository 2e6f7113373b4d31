"""`kpisync import orders FILE.csv`: shop orders from a CSV export, validated row by row.

Good rows are upserted (by order id, so importing the same file again changes nothing); bad
rows are listed with their line numbers on stderr and the command then exits 1. The column
mapping is documented in connectors/csv_orders/README.md.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from kpisync.core.httpclient import Runtime
from kpisync.core.sync import sync_source

from .app import DbOption, JsonOption, app
from .common import open_store

SHOWN_ERRORS = 50


def _import_group() -> typer.Typer:
    """The `kpisync import` group, shared with the other import commands (created if absent)."""
    for group in app.registered_groups:
        if group.name == "import" and group.typer_instance is not None:
            return group.typer_instance
    group_app = typer.Typer(help="Import exports that have no API into the store.", no_args_is_help=True)
    app.add_typer(group_app, name="import")
    return group_app


@_import_group().command("orders")
def import_orders(
    file: Path = typer.Argument(..., help="Orders export (CSV, UTF-8; comma, semicolon or tab separated)."),
    source: str = typer.Option("csv_orders", "--source", help="Source name the orders belong to."),
    mapping: Optional[list[str]] = typer.Option(
        None, "--mapping", help="COLUMN=FIELD, repeatable (fields: external_id, customer_email, created_at, total, "
        "currency, status, net_total, refunded, customer_id, customer_phone, is_test, cancelled_at, updated_at)."
    ),
    currency: Optional[str] = typer.Option(None, "--currency", help="Currency of every row when the file has no currency column."),
    timezone: str = typer.Option("UTC", "--timezone", help="Zone of timestamps written without an offset."),
    platform: str = typer.Option("csv", "--platform", help="Platform recorded on the orders (shopify, woocommerce, …)."),
    db: Optional[str] = DbOption,
    as_json: bool = JsonOption,
) -> None:
    """Import shop orders from a CSV file into the `orders` table."""
    from kpisync.connectors.csv_orders import CsvOrdersConfig, CsvOrdersConnector

    config = CsvOrdersConfig(path=str(file), mapping=mapping or [], currency=currency, timezone=timezone, platform=platform)
    connector = CsvOrdersConnector(config, Runtime())
    connector.check()  # header problems are one ConfigError line before anything is written
    with open_store(db) as store:
        run = sync_source(store, source, connector, full_refresh=True)  # always re-read: report every bad row
    report = connector.report
    if as_json:
        json.dump({"file": str(file), "source": source, "status": run.status, "imported": report.rows,
                   "written": run.rows_written, "line_item_rows": report.continuation_rows,
                   "rejected": [{"line": line, "reason": reason} for line, reason in report.rejected]},
                  sys.stdout, indent=2)  # fmt: skip
        sys.stdout.write("\n")
    else:
        extra = f", {report.continuation_rows} further line-item row(s) folded in" if report.continuation_rows else ""
        print(f"{file}: imported {report.rows} order(s) into source '{source}' ({run.rows_written} new or changed{extra})")
    if run.status != "success":
        print(f"error: {run.error}", file=sys.stderr)
        sys.exit(1)
    if report.rejected:
        print(f"{file}: skipped {len(report.rejected)} bad row(s):", file=sys.stderr)
        for line, reason in report.rejected[:SHOWN_ERRORS]:
            print(f"  line {line}: {reason}", file=sys.stderr)
        if len(report.rejected) > SHOWN_ERRORS:
            print(f"  … and {len(report.rejected) - SHOWN_ERRORS} more", file=sys.stderr)
        sys.exit(1)  # not typer.Exit: the exit code must survive standalone_mode=False

"""`kpisync import orders FILE.csv` and the `csv_orders` connector: what a user sees."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from kpisync.connectors.csv_orders import CsvOrdersConfig, CsvOrdersConnector
from kpisync.core.errors import ConfigError
from kpisync.core.httpclient import Runtime
from kpisync.core.store import Store
from kpisync.core.sync import sync_source

# A Shopify order export: line items repeat the order on extra rows with the totals left empty.
SHOPIFY_EXPORT = """\
Name,Email,Financial Status,Created at,Total,Currency,Refunded Amount,Cancelled at,Lineitem name
#1001,Ann@Example.com,paid,2025-03-02 10:00:00 +0100,100.00,EUR,,,Mug
#1001,,,,,,,,Spoon
#1002,bob@example.com,partially_refunded,2025-03-03 11:00:00 +0100,50.00,EUR,20.00,,Plate
#1003,notanemail,paid,2025-03-03 11:00:00 +0100,5.00,EUR,,,Cup
#1004,cat@example.com,paid,yesterday,5.00,EUR,,,Cup
#1005,dan@example.com,paid,2025-03-04T09:00:00Z,"1,234.50",EUR,,,Cup
#1006,,voided,2025-03-04T09:00:00Z,12,usd,,2025-03-04T10:00:00Z,Cup
#1002,bob@example.com,paid,2025-03-03 11:00:00 +0100,50.00,EUR,,,Plate
#1007,eve@example.com,paid,2025-03-05T08:00:00Z,7.50,EURO,,,Cup
"""
EXPECTED = {
    "#1001": ("ann@example.com", "2025-03-02T09:00:00Z", "100.00", None, "EUR", "paid", None),
    "#1002": ("bob@example.com", "2025-03-03T10:00:00Z", "50.00", "30.00", "EUR", "partially_refunded", None),
    "#1006": (None, "2025-03-04T09:00:00Z", "12.00", None, "USD", "voided", "2025-03-04T10:00:00Z"),
}
REJECTED = [
    "  line 5: email 'notanemail' is not an email address",
    "  line 6: created_at 'yesterday' is not a date and time (use ISO 8601, e.g. 2025-03-01T14:05:00Z)",
    "  line 7: total '1,234.50' is not a decimal number (digits with a dot for decimals, no currency sign or thousands separator)",
    "  line 9: order #1002 is already on line 4",
    "  line 10: currency 'EURO' is not a three-letter code",
]


def kpisync(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KPISYNC_")}
    env.update(HOME=str(cwd), KPISYNC_DB=str(cwd / "kpi.db"))
    return subprocess.run([sys.executable, "-m", "kpisync.cli", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=60)


def rows(db: Path, source: str = "csv_orders") -> dict[str, tuple[object, ...]]:
    with Store(db) as store:
        found = store.query(
            "SELECT external_id, customer_email_norm, created_at, total, net_total, currency, status, cancelled_at "
            "FROM orders WHERE source = ?", (source,))  # fmt: skip
    return {r[0]: tuple(r)[1:] for r in found}


def test_good_rows_are_kept_and_bad_ones_reported_with_line_numbers(tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text(SHOPIFY_EXPORT, encoding="utf-8")
    result = kpisync("import", "orders", "orders.csv", cwd=tmp_path)
    assert result.returncode == 1, result.stderr
    assert result.stdout.strip() == (
        "orders.csv: imported 3 order(s) into source 'csv_orders' (3 new or changed, 1 further line-item row(s) folded in)"
    )
    assert result.stderr.splitlines() == ["orders.csv: skipped 5 bad row(s):", *REJECTED]
    assert rows(tmp_path / "kpi.db") == EXPECTED


def test_importing_the_same_file_again_changes_nothing(tmp_path: Path) -> None:
    (tmp_path / "orders.csv").write_text(SHOPIFY_EXPORT, encoding="utf-8")
    kpisync("import", "orders", "orders.csv", cwd=tmp_path)
    again = kpisync("import", "orders", "orders.csv", "--json", cwd=tmp_path)
    report = json.loads(again.stdout)
    assert (report["imported"], report["written"], len(report["rejected"])) == (3, 0, 5)
    assert rows(tmp_path / "kpi.db") == EXPECTED
    fixed = SHOPIFY_EXPORT.replace("notanemail", "fay@example.com")
    (tmp_path / "orders.csv").write_text(fixed, encoding="utf-8")
    third = json.loads(kpisync("import", "orders", "orders.csv", "--json", cwd=tmp_path).stdout)
    assert (third["imported"], third["written"]) == (4, 1)  # only the repaired row is new


def test_an_explicit_mapping_a_semicolon_file_with_bom_and_a_default_currency(tmp_path: Path) -> None:
    german = "\ufeffBestellnummer;E-Mail-Adresse;Bestelldatum;Summe;Zustand\n" \
             "A-1;kim@example.de;2025-04-01 12:00:00;19.90;bezahlt\n" \
             "A-2;;2025-04-02 09:30;5;storniert\n"  # fmt: skip
    (tmp_path / "bestellungen.csv").write_text(german, encoding="utf-8")
    result = kpisync(
        "import", "orders", "bestellungen.csv", "--source", "shop_de", "--currency", "eur", "--timezone", "Europe/Berlin",
        "--mapping", "Bestellnummer=external_id", "--mapping", "E-Mail-Adresse=customer_email",
        "--mapping", "Bestelldatum=created_at", "--mapping", "Summe=total", "--mapping", "Zustand=status",
        cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert rows(tmp_path / "kpi.db", "shop_de") == {
        "A-1": ("kim@example.de", "2025-04-01T10:00:00Z", "19.90", None, "EUR", "bezahlt", None),
        "A-2": (None, "2025-04-02T07:30:00Z", "5.00", None, "EUR", "storniert", None),
    }


def test_header_problems_are_one_line_before_anything_is_written(tmp_path: Path) -> None:
    (tmp_path / "x.csv").write_text("order,when,amount\n1,2025-01-01,3.00\n", encoding="utf-8")  # amount = total
    result = kpisync("import", "orders", "x.csv", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr.strip() == (
        "error: csv_orders: x.csv has no column for created_at, currency (columns: order, when, amount); "
        "map one with --mapping COLUMN=FIELD or pass --currency"
    )
    wrong = kpisync("import", "orders", "x.csv", "--mapping", "when=created", cwd=tmp_path)
    assert "mapping 'when=created' must be COLUMN=FIELD" in wrong.stderr
    assert kpisync("import", "orders", "missing.csv", cwd=tmp_path).stderr.strip() == (
        "error: csv_orders: cannot read missing.csv: No such file or directory"
    )
    assert not (tmp_path / "kpi.db").exists() or rows(tmp_path / "kpi.db") == {}


def test_the_connector_skips_an_unchanged_file_and_batches_big_ones(tmp_path: Path) -> None:
    lines = ["order_id,email,created_at,total,currency,status"]
    lines += [f"{i},c{i % 700}@example.com,2025-01-01T00:00:{i % 60:02d}Z,{i}.99,EUR,paid" for i in range(2500)]
    path = tmp_path / "big.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    config = CsvOrdersConfig(path=str(path), platform="shopify")
    with Store(tmp_path / "s.db") as store:
        first = sync_source(store, "shop_csv", CsvOrdersConnector(config, Runtime()))
        assert (first.status, first.records, first.streams[0].batches) == ("success", 2500, 3)
        again = sync_source(store, "shop_csv", CsvOrdersConnector(config, Runtime()))
        assert (again.records, again.rows_written) == (0, 0)
        assert again.notices == ["big.csv is unchanged since the last import"]
        assert store.query("SELECT platform, total FROM orders WHERE external_id = '2499'")[0][:] == ("shopify", "2499.99")


def test_start_date_and_test_flags(tmp_path: Path) -> None:
    path = tmp_path / "o.csv"
    path.write_text("id,email,created_at,total,currency,test\n1,a@x.io,2024-12-31T23:00:00Z,1.00,EUR,no\n"
                    "2,b@x.io,2025-01-02T00:00:00Z,2.00,EUR,yes\n3,c@x.io,2025-01-03T00:00:00Z,3.00,EUR,maybe\n",
                    encoding="utf-8")  # fmt: skip
    connector = CsvOrdersConnector(CsvOrdersConfig(path=str(path), start_date="2025-01-01T00:00:00Z"), Runtime())
    with Store(tmp_path / "s.db") as store:
        assert sync_source(store, "csv", connector).status == "success"
        assert [tuple(r) for r in store.query("SELECT external_id, is_test FROM orders")] == [("2", 1)]
    assert connector.report.skipped_before_start == 1
    assert connector.report.rejected == [(4, "test flag 'maybe' is not true/false")]


def test_bad_settings_are_config_errors(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="currency"):
        CsvOrdersConfig(path="x.csv", currency="EURO")
    with pytest.raises(ConfigError, match="time zone"):
        CsvOrdersConnector(CsvOrdersConfig(path="x.csv", timezone="Mars/Olympus"), Runtime())

"""Orders from a CSV file (any shop's export), validated row by row.

The columns map to canonical order fields by name (common spellings and Shopify's order export
are recognised; README.md has the table) or by an explicit mapping `column=field`. A bad row is
reported with its line number and skipped; the good rows are kept. Importing the same file again
changes nothing: rows are upserted by order id, and an unchanged file is not even re-read.
"""

from __future__ import annotations

import csv
import hashlib
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import ValidationError, field_validator

from kpisync.core.connector import Batch, Connector, ConnectorConfig, Stream
from kpisync.core.errors import ConfigError
from kpisync.core.models import Order

BATCH_ROWS = 1000
#: Canonical fields a column can map to; the first four must be present (currency may be a setting).
FIELDS = ("external_id", "customer_email", "created_at", "total", "currency", "status", "net_total", "refunded",
          "customer_id", "customer_phone", "is_test", "cancelled_at", "updated_at")  # fmt: skip
REQUIRED = ("external_id", "created_at", "total", "currency")
#: Header spellings (lower-case, letters and digits only) → field, most specific first.
SYNONYMS: dict[str, tuple[str, ...]] = {
    "external_id": ("orderid", "id", "ordernumber", "order", "number", "name"),
    "customer_email": ("customeremail", "email", "billingemail", "emailaddress"),
    "created_at": ("createdat", "orderdate", "datecreated", "createddate", "date", "paidat"),
    "total": ("total", "ordertotal", "totalprice", "amount", "grandtotal"),
    "currency": ("currency", "currencycode"),
    "status": ("financialstatus", "status", "orderstatus", "paymentstatus"),
    "net_total": ("nettotal", "currenttotalprice", "netamount"),
    "refunded": ("refundedamount", "refunded", "refundtotal"),
    "customer_id": ("customerid",),
    "customer_phone": ("phone", "billingphone", "customerphone", "phonebilling", "phonenumber", "telephone", "mobile"),
    "is_test": ("test", "istest", "testorder"),
    "cancelled_at": ("cancelledat", "canceledat"),
    "updated_at": ("updatedat", "datemodified", "modifiedat"),
}
_AMOUNT = re.compile(r"-?\d+(\.\d+)?")
_CURRENCY = re.compile(r"[A-Z]{3}")
_TRUE, _FALSE = {"true", "yes", "1", "y", "t"}, {"false", "no", "0", "n", "f", ""}
_FORMATS = ("%Y-%m-%d %H:%M:%S %z", "%Y-%m-%d %H:%M %z", "%Y-%m-%d %H:%M:%S", "%Y-%m-%d %H:%M", "%Y-%m-%d")


class CsvOrdersConfig(ConnectorConfig):
    """Settings: KPISYNC_CSV_ORDERS_<FIELD>, [sources.NAME] with connector = "csv_orders", or
    the options of `kpisync import orders`."""

    path: str
    #: "column=field" pairs overriding the recognised header names (e.g. "Bestellnummer=external_id").
    mapping: list[str] = []
    #: Currency of every row when the file has no currency column.
    currency: str | None = None
    #: Zone of timestamps written without an offset.
    timezone: str = "UTC"
    #: Recorded as the orders' platform (shopify, woocommerce, …).
    platform: str = "csv"
    #: One character; sniffed among , ; tab and | when not set.
    delimiter: str | None = None

    @field_validator("currency")
    @classmethod
    def _iso_currency(cls, value: str | None) -> str | None:
        if value is not None and not _CURRENCY.fullmatch(value.strip().upper()):
            raise ValueError(f"{value!r} is not a three-letter currency code")
        return value.strip().upper() if value else None


@dataclass
class ImportReport:
    """What one read of the file found: good rows, rejected rows (line, reason), line-item rows."""

    rows: int = 0
    rejected: list[tuple[int, str]] = field(default_factory=list)
    continuation_rows: int = 0
    skipped_before_start: int = 0
    unchanged: bool = False


class CsvOrdersConnector(Connector):
    name = "csv_orders"
    title = "Orders CSV"
    kind = "shop"
    config_model = CsvOrdersConfig
    description = "Orders from a CSV export (order id, email, created_at, total, currency, status), validated row by row."

    config: CsvOrdersConfig

    def __init__(self, config: ConnectorConfig, runtime: Any) -> None:
        super().__init__(config, runtime)
        assert isinstance(config, CsvOrdersConfig)
        self.path = Path(config.path).expanduser()
        try:
            self.zone = ZoneInfo(config.timezone)
        except (ZoneInfoNotFoundError, ValueError):
            raise ConfigError(f"csv_orders: unknown time zone {config.timezone!r}") from None
        self.report = ImportReport()

    def check(self) -> None:
        with self._open() as handle:
            reader = csv.reader(handle, dialect=self._dialect(handle))
            self.columns(next(reader, []))

    def streams(self) -> list[Stream]:
        return [OrdersCsvStream(self)]

    # -- reading -------------------------------------------------------------------------------
    def _open(self) -> io.TextIOWrapper:
        try:
            return open(self.path, encoding="utf-8-sig", newline="")  # noqa: SIM115 - closed by the caller
        except OSError as exc:
            raise ConfigError(f"csv_orders: cannot read {self.path}: {exc.strerror or exc}") from None

    def _dialect(self, handle: io.TextIOWrapper) -> type[csv.Dialect] | csv.Dialect:
        if self.config.delimiter:
            class Given(csv.excel):
                delimiter = self.config.delimiter  # type: ignore[assignment]
            return Given
        sample = handle.read(65536)
        handle.seek(0)
        try:
            return csv.Sniffer().sniff(sample, delimiters=",;\t|")
        except csv.Error:
            return csv.excel

    def columns(self, header: list[str]) -> dict[str, int]:
        """Field → column index, from the explicit mapping first, then the recognised names."""
        if not any(h.strip() for h in header):
            raise ConfigError(f"csv_orders: {self.path.name} is empty or has no header row")
        index = {h.strip(): i for i, h in enumerate(header)}
        found: dict[str, int] = {}
        for pair in self.config.mapping:
            column, sep, target = pair.partition("=")
            column, target = column.strip(), target.strip()
            if not sep or target not in FIELDS:
                raise ConfigError(f"csv_orders: mapping {pair!r} must be COLUMN=FIELD with FIELD one of {', '.join(FIELDS)}")
            if column not in index:
                raise ConfigError(f"csv_orders: mapping {pair!r}: {self.path.name} has no column {column!r} (columns: {', '.join(index)})")
            found[target] = index[column]
        squashed = {re.sub(r"[^a-z0-9]", "", h.lower()): i for i, h in reversed(list(enumerate(header)))}
        taken = set(found.values())
        for target, spellings in SYNONYMS.items():
            if target in found:
                continue
            for spelling in spellings:
                if spelling in squashed and squashed[spelling] not in taken:
                    found[target] = squashed[spelling]
                    taken.add(squashed[spelling])
                    break
        missing = [f for f in REQUIRED if f not in found and not (f == "currency" and self.config.currency)]
        if missing:
            hint = " or pass --currency" if "currency" in missing else ""
            raise ConfigError(
                f"csv_orders: {self.path.name} has no column for {', '.join(missing)} (columns: {', '.join(index)}); "
                f"map one with --mapping COLUMN=FIELD{hint}"
            )
        return found

    def fingerprint(self) -> str:
        """The file's bytes and every setting that shapes the rows: same digest, same import."""
        digest = hashlib.sha256()
        digest.update(repr(self.config.model_dump(exclude={"path"})).encode())
        with open(self.path, "rb") as handle:
            for chunk in iter(lambda: handle.read(1 << 20), b""):
                digest.update(chunk)
        return digest.hexdigest()

    def rows(self) -> Iterator[list[Order]]:
        """Batches of valid orders; rejected rows land in `self.report`."""
        report = self.report = ImportReport()
        seen: dict[str, int] = {}
        batch: list[Order] = []
        with self._open() as handle:
            reader = csv.reader(handle, dialect=self._dialect(handle))
            columns = self.columns(next(reader, []))
            line = reader.line_num + 1
            for values in reader:
                start, line = line, reader.line_num + 1
                if not any(v.strip() for v in values):
                    continue
                cell = {f: values[i].strip() if i < len(values) else "" for f, i in columns.items()}
                if cell["external_id"] in seen and not cell["total"]:
                    report.continuation_rows += 1  # an export's further line items of the same order
                    continue
                try:
                    order = self._order(cell)
                except ValueError as exc:
                    report.rejected.append((start, str(exc)))
                    continue
                if order.external_id in seen:
                    report.rejected.append((start, f"order {order.external_id} is already on line {seen[order.external_id]}"))
                    continue
                seen[order.external_id] = start
                if self.config.start_date and order.created_at < self.config.start_date:
                    report.skipped_before_start += 1
                    continue
                report.rows += 1
                batch.append(order)
                if len(batch) >= BATCH_ROWS:
                    yield batch
                    batch = []
        if batch:
            yield batch

    def _order(self, cell: dict[str, str]) -> Order:
        order_id = cell["external_id"]
        if not order_id:
            raise ValueError("the order id is empty")
        total = _amount("total", cell["total"])
        net = _amount("net_total", cell["net_total"]) if cell.get("net_total") else None
        if net is None and cell.get("refunded"):
            net = max(Decimal(0), total - abs(_amount("refunded", cell["refunded"])))
        currency = (cell.get("currency") or self.config.currency or "").upper()
        if not _CURRENCY.fullmatch(currency):
            raise ValueError(f"currency {cell.get('currency')!r} is not a three-letter code" if cell.get("currency") else "the currency is empty")
        email = cell.get("customer_email") or None
        if email is not None and (email.count("@") != 1 or " " in email):
            raise ValueError(f"email {email!r} is not an email address")
        status = (cell.get("status") or "").lower().replace("canceled", "cancelled") or None
        try:
            return Order(
                external_id=order_id,
                platform=self.config.platform,
                customer_id=cell.get("customer_id") or None,
                customer_email=email,
                customer_phone=cell.get("customer_phone") or None,
                created_at=self._instant("created_at", cell["created_at"]),
                updated_at=self._instant("updated_at", cell["updated_at"]) if cell.get("updated_at") else None,
                total=_text(total),
                net_total=_text(net) if net is not None else None,
                currency=currency,
                status=status,
                is_test=_flag(cell.get("is_test", "")),
                cancelled_at=self._instant("cancelled_at", cell["cancelled_at"]) if cell.get("cancelled_at") else None,
                raw={k: v for k, v in cell.items() if v},
            )
        except ValidationError as exc:
            raise ValueError(exc.errors()[0].get("msg", "invalid value")) from None

    def _instant(self, name: str, text: str) -> datetime:
        if not text:
            raise ValueError(f"{name} is empty")
        try:
            parsed = datetime.fromisoformat(text.replace("Z", "+00:00"))
        except ValueError:
            parsed = None
            for pattern in _FORMATS:
                try:
                    parsed = datetime.strptime(text, pattern)
                    break
                except ValueError:
                    continue
            if parsed is None:
                raise ValueError(f"{name} {text!r} is not a date and time (use ISO 8601, e.g. 2025-03-01T14:05:00Z)") from None
        if parsed.tzinfo is None:
            parsed = parsed.replace(tzinfo=self.zone)
        return parsed.astimezone(timezone.utc)


class OrdersCsvStream(Stream):
    """The whole file, in batches; the state (the file's fingerprint) is written with the last one."""

    name = "orders"

    def __init__(self, connector: CsvOrdersConnector) -> None:
        self.csv = connector

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        digest = self.csv.fingerprint()
        if state and state.get("sha256") == digest:
            self.csv.report = ImportReport(unchanged=True)
            yield Batch([], notices=[f"{self.csv.path.name} is unchanged since the last import"])
            return
        pending: list[Order] | None = None
        for batch in self.csv.rows():
            if pending is not None:
                yield Batch(pending)
            pending = batch
        report = self.csv.report
        notices = []
        if report.rejected:
            shown = "; ".join(f"line {line}: {reason}" for line, reason in report.rejected[:5])
            more = f"; … {len(report.rejected) - 5} more" if len(report.rejected) > 5 else ""
            notices.append(f"skipped {len(report.rejected)} bad row(s) of {self.csv.path.name} ({shown}{more})")
        yield Batch(pending or [], {"sha256": digest, "rows": report.rows, "rejected": len(report.rejected)}, notices)


def _amount(name: str, text: str) -> Decimal:
    if not _AMOUNT.fullmatch(text):
        raise ValueError(f"{name} {text!r} is not a decimal number (digits with a dot for decimals, no currency sign "
                         "or thousands separator)")  # fmt: skip
    try:
        return Decimal(text)
    except InvalidOperation:
        raise ValueError(f"{name} {text!r} is not a decimal number") from None


def _text(amount: Decimal) -> str:
    """Decimal text with at least two decimals, like the API order connectors."""
    exponent = amount.as_tuple().exponent
    if isinstance(exponent, int) and exponent > -2:
        amount = amount.quantize(Decimal("0.01"))
    return format(amount, "f")


def _flag(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"test flag {text!r} is not true/false")

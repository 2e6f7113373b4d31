"""Orders CSV connector (entry point `csv_orders`, and `kpisync import orders FILE.csv`)."""

from .connector import CsvOrdersConfig, CsvOrdersConnector, ImportReport

__all__ = ["CsvOrdersConfig", "CsvOrdersConnector", "ImportReport"]

"""What every command needs: the store path, settings, a connector instance, signal handling."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kpisync.core.config import connector_name_of, load_config_file, resolve_db, source_settings
from kpisync.core.connector import Connector
from kpisync.core.httpclient import Runtime
from kpisync.core.registry import load_connector
from kpisync.core.store import Store


def open_store(db: str | None) -> Store:
    return Store(resolve_db(db))


def build_connector(source: str, config_path: str | None, runtime: Runtime) -> Connector:
    """The connector instance for `source`, configured from file + environment + keyring."""
    config = load_config_file(config_path)
    connector_cls = load_connector(connector_name_of(source, config))
    settings = source_settings(source, connector_cls, config)
    return connector_cls(settings, runtime)


@contextmanager
def stop_on_signals(runtime: Runtime) -> Iterator[None]:
    """SIGTERM/SIGINT ask the sync to stop after the current batch instead of killing it."""
    previous: dict[int, Any] = {}

    def request_stop(signum: int, frame: Any) -> None:
        runtime.stop.set()

    for sig in (signal.SIGTERM, signal.SIGINT):
        previous[sig] = signal.signal(sig, request_stop)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def secret_env_values() -> list[str]:
    """Values of KPISYNC_* variables that look like secrets, to scrub unexpected error text."""
    markers = ("TOKEN", "KEY", "SECRET", "PASSWORD")
    return [
        value
        for name, value in os.environ.items()
        if name.startswith("KPISYNC_") and any(m in name for m in markers) and len(value) >= 4
    ]


def scrub(text: str) -> str:
    for secret in sorted(secret_env_values(), key=len, reverse=True):
        text = text.replace(secret, "***")
    return text

"""Finding connectors: every connector, built-in or third-party, is an entry point.

Built-ins are registered in kpisync's own pyproject under the `kpisync.connectors` group, exactly
as a plugin package registers its own; there is no second, private list.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from .connector import Connector
from .errors import ConfigError

GROUP = "kpisync.connectors"


def _entry_points() -> dict[str, EntryPoint]:
    return {ep.name: ep for ep in entry_points(group=GROUP)}


def connector_names() -> list[str]:
    return sorted(_entry_points())


def load_connector(name: str) -> type[Connector]:
    """The connector class registered as `name`, or a one-line ConfigError."""
    found = _entry_points().get(name)
    if found is None:
        known = ", ".join(connector_names()) or "none"
        raise ConfigError(f"unknown connector '{name}' (installed: {known})")
    try:
        cls = found.load()
    except Exception as exc:  # a broken plugin must not take the CLI down
        raise ConfigError(f"connector '{name}' failed to load from {found.value}: {exc}") from None
    if not (isinstance(cls, type) and issubclass(cls, Connector)):
        raise ConfigError(f"entry point '{name}' ({found.value}) is not a kpisync Connector")
    return cls


def entry_point_value(name: str) -> str:
    return _entry_points()[name].value

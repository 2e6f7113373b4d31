"""`kpisync config check`: is every configured source ready for an unattended sync?

For each `[sources.NAME]`: the connector exists, the settings validate (same merge of file,
environment and keyring as `sync`), and `check()` — one cheap authenticated request — passes.
It also says where each secret comes from, and warns about a secret written in plain text in
the file, without ever printing a value.
"""

from __future__ import annotations

import json
import os
from typing import Any, Optional

import typer

from kpisync.core.config import configured_sources, connector_name_of, keyring_get, load_config_file, source_settings
from kpisync.core.connector import Connector
from kpisync.core.errors import ConfigError, KpisyncError
from kpisync.core.httpclient import Runtime
from kpisync.core.registry import load_connector

from .app import ConfigOption, JsonOption, app
from .auth_cmd import secret_fields
from .common import scrub, stop_on_signals

config_app = typer.Typer(help="Validate the configuration.", no_args_is_help=True)
app.add_typer(config_app, name="config")


@config_app.command("check")
def check(
    config: Optional[str] = ConfigOption,
    source: Optional[list[str]] = typer.Option(None, "--source", "-s", help="Only these sources (repeatable)."),
    offline: bool = typer.Option(False, "--offline", help="Validate settings only; do not call the APIs."),
    as_json: bool = JsonOption,
) -> None:
    """Validate settings and verify each source's credentials with one request; exit 1 on any problem."""
    settings = load_config_file(config)
    names = list(dict.fromkeys(source)) if source else list(configured_sources(settings))
    if not names:
        raise ConfigError("no sources configured: add [sources.NAME] tables to kpisync.toml (`kpisync init` writes one)")
    runtime = Runtime()
    with stop_on_signals(runtime):
        results = [_check_source(name, settings, runtime, offline) for name in names]
    if as_json:
        print(json.dumps(results, indent=2))
    else:
        for result in results:
            origin = ", ".join(f"{field} from {where}" for field, where in result["secrets"].items())
            line = f"{result['source']} ({result['connector']}): {result['status']}"
            if result["error"]:
                line += f" — {result['error']}"
            if origin:
                line += f" [{origin}]"
            print(line)
            for warning in result["warnings"]:
                print(f"  warning: {warning}")
    if any(r["status"] != "ok" and r["status"] != "valid" for r in results):
        raise typer.Exit(1)


def _check_source(source: str, settings: dict[str, Any], runtime: Runtime, offline: bool) -> dict[str, Any]:
    result: dict[str, Any] = {"source": source, "connector": connector_name_of(source, settings), "status": "ok", "error": None, "secrets": {}, "warnings": []}
    try:
        cls = load_connector(result["connector"])
        result["secrets"] = secret_origins(source, cls, settings)
        for field, origin in result["secrets"].items():
            if origin == "kpisync.toml (plain text)":
                result["warnings"].append(
                    f"{field} is written in plain text in the config file; move it to the keyring "
                    f"(`kpisync auth set {source} {field}`) or an environment variable (\"env:NAME\")"
                )
        connector = cls(source_settings(source, cls, settings), runtime)
        try:
            if offline:
                result["status"] = "valid"
            else:
                connector.check()
        finally:
            connector.close()
    except KpisyncError as exc:
        result["status"], result["error"] = "error", scrub(str(exc))
    except Exception as exc:  # noqa: BLE001 — one broken connector must not hide the others' results
        result["status"], result["error"] = "error", scrub(f"internal error: {type(exc).__name__}: {exc}")
    return result


def secret_origins(source: str, cls: type[Connector], settings: dict[str, Any]) -> dict[str, str]:
    """Where each secret field of `source` is read from, in `core.config`'s precedence order."""
    table = configured_sources(settings).get(source, {})
    origins = {}
    for field in secret_fields(cls):
        variable = f"KPISYNC_{source.upper()}_{field.upper()}"
        value = table.get(field)
        if os.environ.get(variable):
            origins[field] = f"${variable}"
        elif isinstance(value, str) and value.startswith("env:"):
            origins[field] = f"${value[4:]}" + ("" if value[4:] in os.environ else " (not set)")
        elif value is not None:
            origins[field] = "kpisync.toml (plain text)"
        elif keyring_get(source, field):
            origins[field] = "keyring"
    return origins

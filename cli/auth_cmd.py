"""`kpisync auth set|delete SOURCE FIELD`: a source's secret in the OS keyring.

The value is read without echo (or from stdin when it is not a terminal, for scripts) and
stored under service "kpisync", user "SOURCE.FIELD" — where `core.config` looks for secret
fields that neither the environment nor kpisync.toml sets. kpisync never writes it anywhere
else and never prints it.
"""

from __future__ import annotations

import getpass
import os
import sys
import typing
from typing import Any, Optional

import typer
from pydantic import SecretStr

from kpisync.core.config import KEYRING_SERVICE, configured_sources, connector_name_of, load_config_file
from kpisync.core.connector import Connector
from kpisync.core.errors import ConfigError, KpisyncError
from kpisync.core.registry import load_connector

from .app import ConfigOption, app

auth_app = typer.Typer(help="Store or delete a source's secrets in the OS keyring.", no_args_is_help=True)
app.add_typer(auth_app, name="auth")


@auth_app.command("set")
def set_secret(
    source: str = typer.Argument(..., help="Source name (a connector, or a \\[sources.NAME] of the config)."),
    field: str = typer.Argument(..., help="Secret setting, e.g. api_token."),
    config: Optional[str] = ConfigOption,
) -> None:
    """Prompt for SOURCE's secret FIELD (no echo) and store it in the OS keyring."""
    settings = load_config_file(config)
    connector = load_connector(connector_name_of(source, settings))
    require_secret_field(source, connector, field)
    backend = require_keyring()
    value = read_secret(f"{source}.{field}: ")
    if not value:
        raise ConfigError("empty value: nothing stored")
    try:
        backend.set_password(KEYRING_SERVICE, f"{source}.{field}", value)
    except Exception as exc:  # locked keyring, D-Bus errors, ...
        raise KpisyncError(f"the keyring refused the secret: {type(exc).__name__}: {exc}") from None
    print(f"stored {source}.{field} in the keyring ({keyring_name(backend)})")
    shadow = _shadowed_by(source, field, settings)
    if shadow:
        print(f"note: {shadow} also sets {field} and wins over the keyring", file=sys.stderr)


@auth_app.command("delete")
def delete_secret(
    source: str = typer.Argument(..., help="Source name."),
    field: str = typer.Argument(..., help="Secret setting, e.g. api_token."),
) -> None:
    """Remove SOURCE's secret FIELD from the OS keyring."""
    backend = require_keyring()
    import keyring.errors

    try:
        backend.delete_password(KEYRING_SERVICE, f"{source}.{field}")
    except keyring.errors.PasswordDeleteError:
        raise ConfigError(f"the keyring holds no {source}.{field}") from None
    except Exception as exc:
        raise KpisyncError(f"the keyring refused the deletion: {type(exc).__name__}: {exc}") from None
    print(f"deleted {source}.{field} from the keyring")


# -- shared with `init` and `config check` ----------------------------------------------------
def is_secret(annotation: Any) -> bool:
    return annotation is SecretStr or SecretStr in typing.get_args(annotation)


def secret_fields(connector: type[Connector]) -> list[str]:
    return [name for name, info in connector.config_model.model_fields.items() if is_secret(info.annotation)]


def require_secret_field(source: str, connector: type[Connector], field: str) -> None:
    secrets = secret_fields(connector)
    if field not in secrets:
        hint = ", ".join(secrets) or "none"
        raise ConfigError(
            f"'{field}' is not a secret setting of {source} ({connector.name}; secret settings: {hint}); "
            f"plain settings go in [sources.{source}] of kpisync.toml"
        )


def keyring_backend() -> Any | None:
    """The keyring backend, or None when only the fail/null backends are available."""
    try:
        import keyring
        from keyring.backends import fail, null

        backend = keyring.get_keyring()
    except Exception:
        return None
    if isinstance(backend, (fail.Keyring, null.Keyring)):
        return None
    return backend


def require_keyring() -> Any:
    backend = keyring_backend()
    if backend is None:
        raise ConfigError(
            "no OS keyring is available here (no Secret Service, Keychain or Windows Credential Locker); "
            "set the secret as an environment variable KPISYNC_<SOURCE>_<FIELD>, or write FIELD = \"env:NAME\" "
            "in kpisync.toml and set NAME"
        )
    return backend


def keyring_name(backend: Any) -> str:
    return f"{type(backend).__module__}.{type(backend).__name__}"


def read_secret(prompt: str) -> str:
    """A secret from the terminal without echo, or the first line of stdin when piped."""
    if sys.stdin is not None and sys.stdin.isatty():
        return getpass.getpass(prompt).strip()
    line = sys.stdin.readline() if sys.stdin is not None else ""
    return line.rstrip("\r\n").strip()


def _shadowed_by(source: str, field: str, settings: dict[str, Any]) -> str | None:
    variable = f"KPISYNC_{source.upper()}_{field.upper()}"
    if os.environ.get(variable):
        return f"the environment variable {variable}"
    if field in configured_sources(settings).get(source, {}):
        return f"[sources.{source}] {field} in kpisync.toml"
    return None

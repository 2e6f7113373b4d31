"""Settings: kpisync.toml, environment variables and the OS keyring.

Precedence for a source's field, highest first: `KPISYNC_<SOURCE>_<FIELD>` in the environment,
the `[sources.<source>]` table of the config file, then — for secret fields only — the OS
keyring (service "kpisync", user "<source>.<field>"). A value of the form `env:NAME` in the file
reads the variable NAME, so a config file never has to hold a secret.

    [sources.zendesk]
    subdomain = "acme"
    email = "ops@acme.com"
    api_token = "env:ZENDESK_TOKEN"

    [sources.zendesk_eu]          # a second instance of the same connector
    connector = "zendesk"
    subdomain = "acme-eu"
"""

from __future__ import annotations

import os
import tomllib
import types
import typing
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import SecretStr, ValidationError

from .connector import Connector, ConnectorConfig
from .errors import ConfigError

DEFAULT_CONFIG = "kpisync.toml"
DEFAULT_DB = "kpisync.db"
KEYRING_SERVICE = "kpisync"


def resolve_db(db: str | Path | None, env: Mapping[str, str] | None = None) -> Path:
    """--db, else KPISYNC_DB, else kpisync.db in the current directory."""
    env = os.environ if env is None else env
    return Path(db or env.get("KPISYNC_DB") or DEFAULT_DB)


def load_config_file(path: str | Path | None) -> dict[str, Any]:
    """The parsed config file; an explicit path must exist, the default one may not."""
    explicit = path is not None
    file = Path(path) if explicit else Path(DEFAULT_CONFIG)
    if not file.exists():
        if explicit:
            raise ConfigError(f"config file {file} does not exist")
        return {}
    try:
        return tomllib.loads(file.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"config file {file} is not valid TOML: {exc}") from None


def configured_sources(config: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    sources = config.get("sources", {})
    if not isinstance(sources, dict):
        raise ConfigError("[sources] in the config file must be a table of tables")
    return {name: dict(table) for name, table in sources.items()}


def connector_name_of(source: str, config: Mapping[str, Any]) -> str:
    """The connector a source uses: its `connector` key, else the source name itself."""
    table = configured_sources(config).get(source, {})
    return str(table.get("connector", source))


def source_settings(
    source: str,
    connector: type[Connector],
    config: Mapping[str, Any],
    env: Mapping[str, str] | None = None,
    use_keyring: bool = True,
) -> ConnectorConfig:
    """Validated settings of `source`, merged from file, environment and keyring."""
    env = os.environ if env is None else env
    model = connector.config_model
    values: dict[str, Any] = {}
    table = configured_sources(config).get(source, {})
    for key, value in table.items():
        if key == "connector":
            continue
        values[key] = _deref_env(source, key, value, env)
    prefix = f"KPISYNC_{source.upper()}_"
    for name in model.model_fields:
        env_value = env.get(prefix + name.upper())
        if env_value is not None and env_value != "":
            values[name] = _coerce_env(model, name, env_value)
    if use_keyring:
        for name, field in model.model_fields.items():
            if name not in values and _is_secret(field.annotation):
                secret = keyring_get(source, name)
                if secret:
                    values[name] = secret
    try:
        return model(**values)
    except ValidationError as exc:
        raise ConfigError(_explain(source, prefix, exc)) from None


def keyring_get(source: str, field: str) -> str | None:
    """A secret from the OS keyring, or None when there is no keyring or no entry."""
    try:
        import keyring  # imported lazily: slow, and unused when secrets come from the environment

        return keyring.get_password(KEYRING_SERVICE, f"{source}.{field}")
    except Exception:  # no backend on a headless machine, locked keyring, ...
        return None


def _deref_env(source: str, key: str, value: Any, env: Mapping[str, str]) -> Any:
    if isinstance(value, str) and value.startswith("env:"):
        name = value[4:]
        if name not in env:
            raise ConfigError(f"{source}: setting '{key}' refers to ${name}, which is not set")
        return env[name]
    return value


def _is_secret(annotation: Any) -> bool:
    if annotation is SecretStr:
        return True
    return SecretStr in typing.get_args(annotation)


def _coerce_env(model: type[ConnectorConfig], name: str, text: str) -> Any:
    """Environment values are text; lists are comma-separated."""
    annotation = model.model_fields[name].annotation
    options = typing.get_args(annotation) if typing.get_origin(annotation) in (typing.Union, types.UnionType) else (annotation,)
    if any(typing.get_origin(option) is list for option in options):
        return [part.strip() for part in text.split(",") if part.strip()]
    return text


def _explain(source: str, prefix: str, exc: ValidationError) -> str:
    """One line naming the first bad setting and where to set it."""
    error = exc.errors()[0]
    message = str(error.get("msg", "invalid value")).removeprefix("Value error, ")
    if not error.get("loc"):  # a rule across fields (e.g. "email and api_token, or oauth_token")
        return f"{source}: {message} (environment {prefix}<FIELD> or [sources.{source}] in kpisync.toml)"
    field = ".".join(str(part) for part in error["loc"])
    top = field.split(".")[0]
    where = f"set {prefix}{top.upper()} or [sources.{source}] {top} in kpisync.toml"
    if error.get("type") == "missing":
        return f"{source}: missing setting '{field}' ({where})"
    if error.get("type") == "extra_forbidden":
        return f"{source}: unknown setting '{field}' in [sources.{source}]"
    return f"{source}: invalid setting '{field}': {message} ({where})"

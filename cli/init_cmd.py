"""`kpisync init`: pick connectors, answer a few questions, get a kpisync.toml without secrets.

Plain settings (subdomain, email, ...) go into `[sources.NAME]`. A secret goes either into the
OS keyring (typed without echo, stored like `kpisync auth set`) or stays in an environment
variable that the file references as `FIELD = "env:NAME"`. The file therefore never holds a
secret and can be committed or shared. An existing file is appended to, never rewritten, so
its comments survive.
"""

from __future__ import annotations

import json
import re
import tomllib
import types
import typing
from pathlib import Path
from typing import Any, Optional

import typer
from pydantic.fields import FieldInfo

from kpisync.core.config import DEFAULT_CONFIG, KEYRING_SERVICE, configured_sources, load_config_file, source_settings
from kpisync.core.connector import Connector
from kpisync.core.errors import ConfigError, KpisyncError
from kpisync.core.registry import connector_names, load_connector

from .app import app
from .auth_cmd import is_secret, keyring_backend, keyring_name, read_secret

_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]*$")


@app.command()
def init(
    config: Optional[str] = typer.Option(None, "--config", help=f"Config file to write (default: ./{DEFAULT_CONFIG}).", show_default=False),
    connector: Optional[list[str]] = typer.Option(None, "--connector", "-c", help="Set up these connectors (repeatable) instead of choosing from a list."),
) -> None:
    """Interactive set-up: choose connectors, write kpisync.toml, store secrets safely."""
    path = Path(config or DEFAULT_CONFIG)
    existing = load_config_file(path) if path.exists() else {}
    taken = set(configured_sources(existing))
    chosen = connector or _choose_connectors()
    backend = keyring_backend()
    if backend is None:
        typer.echo("no OS keyring here: secrets will be read from environment variables the file names.")
    blocks, notes = [], []
    for name in chosen:
        cls = load_connector(name)
        source = _ask_source_name(name, taken)
        taken.add(source)
        block, block_notes = _ask_source(source, cls, backend)
        blocks.append(block)
        notes.extend(block_notes)
    if not blocks:
        raise ConfigError("no connector chosen; nothing written")
    text = path.read_text(encoding="utf-8") if path.exists() else _HEADER
    if text and not text.endswith("\n"):
        text += "\n"
    text += "\n" + "\n\n".join(blocks) + "\n"
    try:
        parsed = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:  # a bug here must not leave a broken file behind
        raise KpisyncError(f"internal error: the generated config is not valid TOML ({exc}); nothing written") from None
    path.write_text(text, encoding="utf-8")
    typer.echo(f"wrote {path} ({len(blocks)} source(s))")
    for source in sorted(set(configured_sources(parsed)) - set(configured_sources(existing))):
        _report_settings(source, parsed)
    for note in notes:
        typer.echo(f"  {note}")
    typer.echo("next: kpisync config check  →  kpisync sync  →  kpisync schedule install --every 15m")


_HEADER = """# kpisync settings — written by `kpisync init`. No secrets in this file: they live in the
# OS keyring (`kpisync auth set SOURCE FIELD`) or in environment variables named by "env:NAME".
# Any setting can also be overridden with KPISYNC_<SOURCE>_<FIELD> in the environment.
"""


def _choose_connectors() -> list[str]:
    names = connector_names()
    if not names:
        raise ConfigError("no connectors are installed")
    typer.echo("Installed connectors:")
    for number, name in enumerate(names, 1):
        try:
            cls = load_connector(name)
            typer.echo(f"  {number}. {name:<12} {cls.title} ({cls.kind})")
        except KpisyncError as exc:
            typer.echo(f"  {number}. {name:<12} (broken: {exc})")
    answer = typer.prompt("Connectors to set up (numbers or names, comma-separated)")
    chosen = []
    for part in (p.strip() for p in answer.replace(" ", ",").split(",")):
        if not part:
            continue
        if part.isdigit() and 1 <= int(part) <= len(names):
            chosen.append(names[int(part) - 1])
        elif part in names:
            chosen.append(part)
        else:
            raise ConfigError(f"unknown connector '{part}' (installed: {', '.join(names)})")
    return chosen


def _ask_source_name(connector: str, taken: set[str]) -> str:
    default = connector
    counter = 2
    while default in taken:
        default, counter = f"{connector}_{counter}", counter + 1
    while True:
        source = typer.prompt(f"Source name for this {connector} account", default=default).strip()
        if not _NAME.match(source):
            typer.echo("  a source name is letters, digits and _, starting with a letter")
        elif source in taken:
            typer.echo(f"  [sources.{source}] already exists in the config")
        else:
            return source


def _ask_source(source: str, cls: type[Connector], backend: Any) -> tuple[str, list[str]]:
    """The TOML block of one source, and notes for the user (env variables to set)."""
    lines = [f"[sources.{source}]"]
    if source != cls.name:
        lines.append(f'connector = "{cls.name}"')
    notes = []
    typer.echo(f"{source} ({cls.title}): press Enter to leave a setting out")
    secret_set = False
    for field, info in cls.config_model.model_fields.items():
        if is_secret(info.annotation):
            line, note = _ask_secret(source, field, backend, skip_by_default=secret_set)
            secret_set = secret_set or not line.startswith("#") or "keyring" in line
            lines.append(line)
            if note:
                notes.append(note)
        elif info.is_required() or info.default is None:
            answer = typer.prompt(f"  {field}", default="", show_default=False).strip()
            if answer:
                lines.append(f"{field} = {_toml_value(info, answer)}")
        else:
            lines.append(f"# {field} = {_toml_literal(info.default)}")
    return "\n".join(lines), notes


def _ask_secret(source: str, field: str, backend: Any, skip_by_default: bool) -> tuple[str, str | None]:
    """Where a secret comes from; the TOML line never holds the value itself.

    Once one secret of a source is set (api_token), the next (oauth_token) defaults to skip.
    """
    choices = "k=keyring, e=environment variable, s=skip" if backend else "e=environment variable, s=skip"
    default = "s" if skip_by_default else ("k" if backend else "e")
    while True:
        how = typer.prompt(f"  {field} (secret): {choices}", default=default).strip().lower()[:1]
        if how == "k" and backend is not None:
            value = read_secret(f"  {field} (input hidden): ")
            if not value:
                return f"# {field}: not set", None
            backend.set_password(KEYRING_SERVICE, f"{source}.{field}", value)
            return f"# {field}: in the OS keyring ({keyring_name(backend)}); change it with `kpisync auth set {source} {field}`", None
        if how == "e":
            suggested = f"{source}_{field}".upper()
            variable = typer.prompt(f"  environment variable holding {field}", default=suggested).strip()
            if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", variable):
                typer.echo("  not a valid variable name")
                continue
            return f'{field} = "env:{variable}"', f"set {variable} in the environment of every kpisync run (see README: Unattended operation)"
        if how == "s":
            return f"# {field}: not set", None
        typer.echo(f"  answer one of: {choices}")


def _toml_value(info: FieldInfo, text: str) -> str:
    """TOML for an answer, typed by the field's annotation (numbers, booleans, lists, text)."""
    options = _annotation_options(info.annotation)
    if bool in options and text.lower() in ("true", "false", "yes", "no", "y", "n"):
        return "true" if text.lower() in ("true", "yes", "y") else "false"
    if int in options and re.fullmatch(r"-?\d+", text):
        return text
    if float in options and re.fullmatch(r"-?\d+(\.\d+)?", text):
        return text
    if any(typing.get_origin(o) is list for o in options):
        return _toml_literal([part.strip() for part in text.split(",") if part.strip()])
    return _toml_literal(text)


def _annotation_options(annotation: Any) -> tuple[Any, ...]:
    if typing.get_origin(annotation) in (typing.Union, types.UnionType):
        return typing.get_args(annotation)
    return (annotation,)


def _toml_literal(value: Any) -> str:
    """JSON's string escapes are valid TOML basic-string escapes; lists and numbers match too."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_literal(v) for v in value) + "]"
    return json.dumps(str(value), ensure_ascii=False)


def _report_settings(source: str, parsed: dict[str, Any]) -> None:
    """Validate the new source as `sync` will read it; say what is still missing."""
    try:
        cls = load_connector(str(configured_sources(parsed)[source].get("connector", source)))
        source_settings(source, cls, parsed)
        typer.echo(f"  {source}: settings complete")
    except KpisyncError as exc:
        typer.echo(f"  {source}: not ready yet — {exc}")

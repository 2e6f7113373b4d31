"""E-mail each agent their own report over SMTP: one message per agent, HTML + plain text.

    [report.smtp]
    host = "smtp.example.com"
    port = 587                 # default: 587 for starttls, 465 for ssl, 25 for none
    tls = "starttls"           # "starttls" (default), "ssl" (implicit TLS) or "none"
    user = "reports@example.com"
    from = "Support reports <reports@example.com>"
    # password: never in this file. KPISYNC_SMTP_PASSWORD, `password = "env:NAME"`, or the OS
    # keyring: `keyring set kpisync report.smtp.password`

Recipients are the agents' e-mail addresses from the users table of the store. A password is
only sent over TLS (or to a server on this machine), and never appears in an error.
"""

from __future__ import annotations

import ipaddress
import os
import smtplib
import socket
import ssl
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formataddr, make_msgid
from typing import Any

from pydantic import SecretStr

from ..config import keyring_get
from ..errors import ConfigError, KpisyncError
from .agent import AgentReport
from .render_html import html
from .render_md import text

PASSWORD_ENV = "KPISYNC_SMTP_PASSWORD"
KEYRING_USER = ("report.smtp", "password")  # service "kpisync", user "report.smtp.password"
TLS_MODES = {"starttls": 587, "ssl": 465, "none": 25}
TIMEOUT = 30.0


@dataclass(frozen=True)
class SmtpSettings:
    host: str
    port: int
    tls: str
    sender: str
    user: str | None = None
    password: SecretStr | None = None
    timeout: float = TIMEOUT


def smtp_settings(config: Mapping[str, Any], env: Mapping[str, str] | None = None, use_keyring: bool = True) -> SmtpSettings:
    """`[report.smtp]` of a parsed kpisync.toml, with the password from env or keyring."""
    env = os.environ if env is None else env
    table = (config.get("report") or {}).get("smtp")
    if not isinstance(table, dict):
        raise ConfigError("--send needs [report.smtp] in kpisync.toml (host, port, tls, user, from; "
                          f"the password in ${PASSWORD_ENV} or the keyring)")
    known = {"host", "port", "tls", "user", "from", "password", "timeout"}
    unknown = sorted(set(table) - known)
    if unknown:
        raise ConfigError(f"[report.smtp]: unknown setting {unknown[0]!r} (known: {', '.join(sorted(known))})")
    for key in ("host", "from"):
        if not str(table.get(key) or "").strip():
            raise ConfigError(f"[report.smtp]: missing setting {key!r}")
    tls = str(table.get("tls", "starttls")).lower()
    if tls not in TLS_MODES:
        raise ConfigError("[report.smtp] tls must be \"starttls\", \"ssl\" or \"none\"")
    try:
        port = int(table.get("port", TLS_MODES[tls]))
    except (TypeError, ValueError):
        raise ConfigError(f"[report.smtp] port must be a number, got {table.get('port')!r}") from None
    password = _password(table, env, use_keyring)
    user = str(table["user"]) if table.get("user") else None
    if password is not None and user is None:
        raise ConfigError("[report.smtp]: a password is set but no user to log in with")
    settings = SmtpSettings(str(table["host"]).strip(), port, tls, str(table["from"]).strip(), user, password,
                            float(table.get("timeout", TIMEOUT)))
    if settings.user and tls == "none" and not _loopback(settings.host):
        raise ConfigError(f"[report.smtp]: refusing to send a password without TLS to {settings.host} "
                          "(use tls = \"starttls\" or \"ssl\")")
    return settings


def _password(table: Mapping[str, Any], env: Mapping[str, str], use_keyring: bool) -> SecretStr | None:
    if env.get(PASSWORD_ENV):
        return SecretStr(env[PASSWORD_ENV])
    value = table.get("password")
    if value is not None:
        text_value = str(value)
        if not text_value.startswith("env:"):
            raise ConfigError(f"[report.smtp] password must not be written in the file: set ${PASSWORD_ENV}, "
                              "write password = \"env:NAME\", or store it with `keyring set kpisync report.smtp.password`")
        name = text_value[4:]
        if not env.get(name):
            raise ConfigError(f"[report.smtp] password refers to ${name}, which is not set")
        return SecretStr(env[name])
    if use_keyring:
        secret = keyring_get(*KEYRING_USER)
        if secret:
            return SecretStr(secret)
    return None


def _loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


# -- messages ------------------------------------------------------------------------------------
@dataclass
class Outgoing:
    """One agent's message (or the reason it cannot be sent)."""

    report: AgentReport
    message: EmailMessage | None
    skipped: str | None = None

    @property
    def recipient(self) -> str | None:
        return self.report.agent.email


def subject(report: AgentReport) -> str:
    return f"Your support figures for {report.span.label}"


def build(reports: Iterable[AgentReport], sender: str) -> list[Outgoing]:
    """A multipart/alternative message per agent: plain text first, then the HTML report."""
    out = []
    for report in reports:
        email = (report.agent.email or "").strip()
        if not email or "@" not in email:
            out.append(Outgoing(report, None, "no e-mail address in the users table"))
            continue
        message = EmailMessage()
        message["Subject"] = subject(report)
        message["From"] = sender
        message["To"] = formataddr((report.agent.name, email))
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2].strip("> ") or None)
        message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no auto-replies to a report
        message.set_content(text(report))
        message.add_alternative(html(report), subtype="html")
        out.append(Outgoing(report, message))
    return out


@dataclass
class Delivery:
    recipient: str | None
    agent: str
    ok: bool
    detail: str


def send(outgoing: list[Outgoing], settings: SmtpSettings) -> list[Delivery]:
    """Send every message over one SMTP session; a refused recipient does not stop the others."""
    results = [Delivery(o.recipient, o.report.agent.name, False, o.skipped) for o in outgoing if o.message is None]
    messages = [o for o in outgoing if o.message is not None]
    if not messages:
        return results
    try:
        with _connect(settings) as smtp:
            for item in messages:
                try:
                    refused = smtp.send_message(item.message)
                except smtplib.SMTPRecipientsRefused as exc:
                    refused = exc.recipients
                except smtplib.SMTPResponseException as exc:
                    results.append(Delivery(item.recipient, item.report.agent.name, False,
                                            f"server answered {exc.smtp_code}: {_text(exc.smtp_error)}"))
                    continue
                if refused:
                    code, why = next(iter(refused.values()))
                    results.append(Delivery(item.recipient, item.report.agent.name, False,
                                            f"recipient refused ({code} {_text(why)})"))
                else:
                    results.append(Delivery(item.recipient, item.report.agent.name, True, "sent"))
    except smtplib.SMTPAuthenticationError as exc:
        raise KpisyncError(f"smtp: {settings.host}:{settings.port} refused the login of {settings.user} "
                           f"({exc.smtp_code}); check the password in ${PASSWORD_ENV} or the keyring") from None
    except (smtplib.SMTPException, OSError, ssl.SSLError) as exc:
        raise KpisyncError(f"smtp: could not send through {settings.host}:{settings.port} ({settings.tls}): "
                           f"{_describe(exc, settings)}") from None
    return results


def _connect(settings: SmtpSettings) -> smtplib.SMTP:
    context = ssl.create_default_context()
    if settings.tls == "ssl":
        smtp: smtplib.SMTP = smtplib.SMTP_SSL(settings.host, settings.port, timeout=settings.timeout, context=context)
    else:
        smtp = smtplib.SMTP(settings.host, settings.port, timeout=settings.timeout)
    try:
        smtp.ehlo()
        if settings.tls == "starttls":
            smtp.starttls(context=context)
            smtp.ehlo()
        if settings.user and settings.password is not None:
            smtp.login(settings.user, settings.password.get_secret_value())
    except BaseException:
        smtp.close()
        raise
    return smtp


def _text(value: bytes | str) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _describe(exc: BaseException, settings: SmtpSettings) -> str:
    if isinstance(exc, socket.timeout):
        return f"no answer within {settings.timeout:g} s"
    if isinstance(exc, ConnectionRefusedError):
        return "connection refused"
    message = str(exc) or type(exc).__name__
    if settings.password is not None:
        message = message.replace(settings.password.get_secret_value(), "***")
    return message

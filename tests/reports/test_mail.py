"""`kpisync report agents --send` against a real SMTP server (aiosmtpd) on 127.0.0.1."""

from __future__ import annotations

import dataclasses
import email
import socket
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import pytest
from report_store import AGENTS, COMMENTS
from typer.testing import CliRunner

aiosmtpd_controller = pytest.importorskip("aiosmtpd.controller")
from aiosmtpd.smtp import AuthResult, LoginPassword  # noqa: E402

from kpisync.cli.main import app  # noqa: E402
from kpisync.core.errors import ConfigError, KpisyncError  # noqa: E402
from kpisync.core.reports import AgentReport  # noqa: E402
from kpisync.core.reports.mail import build, send, smtp_settings  # noqa: E402

PASSWORD = "s3cret-Smtp-pass"


class Inbox:
    """An SMTP handler that keeps every message it accepts."""

    def __init__(self) -> None:
        self.envelopes: list[Any] = []
        self.logins: list[tuple[str, str]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 (aiosmtpd hook name)
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"

    def authenticate(self, server: Any, session: Any, envelope: Any, mechanism: str, data: Any) -> AuthResult:
        if isinstance(data, LoginPassword):
            self.logins.append((data.login.decode(), data.password.decode()))
            ok = data.password.decode() == PASSWORD
            return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535 itself
        return AuthResult(success=False, handled=False)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture()
def smtp() -> Iterator[tuple[Inbox, int]]:
    inbox = Inbox()
    port = free_port()
    controller = aiosmtpd_controller.Controller(inbox, hostname="127.0.0.1", port=port, authenticator=inbox.authenticate,
                                                auth_require_tls=False, ready_timeout=10)
    controller.start()
    try:
        yield inbox, port
    finally:
        controller.stop()


def config(tmp_path: Path, port: int, extra: str = 'user = "reports"\n') -> Path:
    path = tmp_path / "kpisync.toml"
    path.write_text(
        '[metrics]\ntimezone = "UTC"\nmin_resolved = 1\n\n'
        f'[report.smtp]\nhost = "127.0.0.1"\nport = {port}\ntls = "none"\nfrom = "Support reports <reports@acme.test>"\n'
        + extra,
        encoding="utf-8",
    )
    return path


def run(*args: str, password: str | None = PASSWORD) -> Any:
    env = {"KPISYNC_SMTP_PASSWORD": password} if password else {"KPISYNC_SMTP_PASSWORD": ""}
    return CliRunner().invoke(app, list(args), env=env)


def test_send_mails_each_agent_only_their_own_report(smtp: tuple[Inbox, int], store_path: Path, tmp_path: Path) -> None:
    inbox, port = smtp
    result = run("report", "agents", "--month", "2026-10", "--send", "--db", str(store_path),
                 "--config", str(config(tmp_path, port)))
    assert result.exit_code == 0, result.output
    assert "4 of 4 report(s) sent" in result.output and PASSWORD not in result.output
    assert inbox.logins == [("reports", PASSWORD)]
    assert sorted(tuple(e.rcpt_tos) for e in inbox.envelopes) == sorted((email_,) for _, email_, _ in AGENTS.values())
    for envelope in inbox.envelopes:
        message = email.message_from_bytes(envelope.content, policy=policy.default)
        [address] = envelope.rcpt_tos
        agent = next(key for key, (_, mail, _) in AGENTS.items() if mail == address)
        name = AGENTS[agent][0]
        assert message["To"] == f"{name} <{address}>" and message["From"] == "Support reports <reports@acme.test>"
        assert message["Subject"] == "Your support figures for October 2026"
        assert message.get_content_type() == "multipart/alternative"
        plain = message.get_body(("plain",)).get_content()
        html = message.get_body(("html",)).get_content()
        for body in (plain, html):
            assert name in body and "October 2026 (2026-10-01 – 2026-10-31, UTC)" in body
            if agent in COMMENTS:
                assert COMMENTS[agent] in body
            for other, (other_name, other_mail, _) in AGENTS.items():
                if other != agent:
                    assert other_name not in body and other_mail not in body
                    assert COMMENTS.get(other, "\0") not in body
        assert "<svg" not in html and "<script" not in html


def test_dry_run_shows_who_would_get_what_and_sends_nothing(smtp: tuple[Inbox, int], store_path: Path,
                                                             tmp_path: Path) -> None:
    inbox, port = smtp
    result = run("report", "agents", "--month", "2026-10", "--send", "--dry-run", "--db", str(store_path),
                 "--config", str(config(tmp_path, port)))
    assert result.exit_code == 0, result.output
    assert "4 message(s) from Support reports <reports@acme.test>, nothing sent" in result.output
    for _, mail, _ in AGENTS.values():
        assert mail in result.output
    assert inbox.envelopes == [] and inbox.logins == []


def test_wrong_password_is_one_line_without_the_secret(smtp: tuple[Inbox, int], agents: list[AgentReport],
                                                        tmp_path: Path) -> None:
    inbox, port = smtp
    import tomllib

    settings = smtp_settings(tomllib.loads(config(tmp_path, port).read_text()), env={"KPISYNC_SMTP_PASSWORD": "wrong-pass"},
                             use_keyring=False)
    with pytest.raises(KpisyncError, match="refused the login of reports") as failure:
        send(build(agents, settings.sender), settings)
    assert "wrong-pass" not in str(failure.value) and inbox.envelopes == []


def test_an_agent_without_e_mail_is_skipped_not_fatal(smtp: tuple[Inbox, int], agents: list[AgentReport]) -> None:
    inbox, port = smtp
    settings = smtp_settings({"report": {"smtp": {"host": "127.0.0.1", "port": port, "tls": "none",
                                                   "from": "r@acme.test"}}}, env={}, use_keyring=False)
    nameless = dataclasses.replace(agents[0], agent=dataclasses.replace(agents[0].agent, email=None))
    results = send(build([nameless, agents[1]], settings.sender), settings)
    assert [(r.agent, r.ok, r.detail) for r in results] == [
        ("Ann Archer", False, "no e-mail address in the users table"), ("Bob Baker", True, "sent")]
    assert [e.rcpt_tos for e in inbox.envelopes] == [["bob@acme.test"]]


@pytest.mark.parametrize("table, env, message", [
    ({}, {}, r"--send needs \[report.smtp\]"),
    ({"host": "mail.acme.test", "from": "r@acme.test", "user": "r", "password": "plain-text"}, {},
     "must not be written in the file"),
    ({"host": "mail.acme.test", "from": "r@acme.test", "user": "r", "tls": "none"}, {"KPISYNC_SMTP_PASSWORD": "x1234"},
     "refusing to send a password without TLS"),
    ({"host": "mail.acme.test", "from": "r@acme.test", "password": "env:SMTP_PW"}, {}, r"refers to \$SMTP_PW"),
    ({"host": "mail.acme.test", "from": "r@acme.test", "tls": "maybe"}, {}, "tls must be"),
    ({"host": "mail.acme.test"}, {}, "missing setting 'from'"),
])
def test_smtp_settings_are_checked(table: dict[str, Any], env: dict[str, str], message: str) -> None:
    config_ = {"report": {"smtp": table}} if table else {}
    with pytest.raises(ConfigError, match=message):
        smtp_settings(config_, env=env, use_keyring=False)


def test_password_from_env_reference_and_default_ports() -> None:
    settings = smtp_settings({"report": {"smtp": {"host": "mail.acme.test", "from": "r@acme.test", "user": "r",
                                                   "password": "env:SMTP_PW"}}}, env={"SMTP_PW": "pw-9876"},
                             use_keyring=False)
    assert (settings.port, settings.tls, settings.password.get_secret_value()) == (587, "starttls", "pw-9876")
    assert "pw-9876" not in repr(settings)
    ssl_port = smtp_settings({"report": {"smtp": {"host": "h", "from": "f@x", "tls": "ssl"}}}, env={}, use_keyring=False)
    assert ssl_port.port == 465

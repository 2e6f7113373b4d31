"""Session logins with a refresh token (core/sdk/auth.py): refreshed instead of re-created,
kept between runs in a 0600 file or the OS keyring, redacted everywhere."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

import keyring
import pytest
import requests
from keyring.backend import KeyringBackend
from keyring.backends import null
from keyring.errors import PasswordDeleteError

from kpisync.core.connector import ConnectorConfig
from kpisync.core.errors import ApiError
from kpisync.core.httpclient import HttpClient, Runtime
from kpisync.core.sdk import FileTokenCache, RestConnector, Token, TokenCache, TokenLogin
from kpisync.core.sdk.auth import KeyringTokenCache, saved_tokens
from kpisync.fixtures.simserver import Request, Response, SimServer


class SessionSim(SimServer):
    """A help desk's session API: POST /login {user, password} → access + refresh token and the
    account id; POST /refresh (Bearer refresh) rotates both and revokes the used refresh token;
    GET /me needs a live access token. A dead one is refused with 401, or with 400
    {"error": "ExpiredToken"} when `atproto` (the way Bluesky's PDS says it)."""

    def __init__(self, atproto: bool = False) -> None:
        super().__init__()
        self.atproto = atproto
        self.access: set[str] = set()
        self.refresh: set[str] = set()
        self.issued: list[str] = []
        self.logins = self.refreshes = 0
        self.route("POST", r"/login", self._login)
        self.route("POST", r"/refresh", self._refresh)
        self.route("GET", r"/me", self._me)

    def _issue(self) -> Response:
        n = len(self.issued) // 2
        access, refresh = f"acc-{n}-x9q", f"ref-{n}-k2w"
        self.access.add(access)
        self.refresh.add(refresh)
        self.issued += [access, refresh]
        return Response(json={"access": access, "refresh": refresh, "account": "acct-7"})

    def _login(self, request: Request) -> Response:
        if request.json() != {"user": "ops", "password": "pw-s3cret"}:
            return Response(401, json={"error": "bad credentials"})
        self.logins += 1
        return self._issue()

    def _refresh(self, request: Request) -> Response:
        token = request.bearer_token()
        if token not in self.refresh:
            return Response(400, json={"error": "ExpiredToken"})
        self.refresh.discard(token)
        self.refreshes += 1
        return self._issue()

    def _me(self, request: Request) -> Response:
        if request.bearer_token() not in self.access:
            return Response(400, json={"error": "ExpiredToken"}) if self.atproto else Response(401, json={"error": "expired"})
        return Response(json={"id": "acct-7"})

    def expire_access(self) -> None:
        self.access.clear()


class SessionLogin(TokenLogin):
    """The connector's side: login and refresh against SessionSim."""

    def login(self, http: HttpClient) -> Token:
        data = http.request("POST", "/login", json_body={"user": "ops", "password": "pw-s3cret"}).data
        return Token(data["access"], refresh=data["refresh"], extra={"account": data["account"]})

    def refresh(self, http: HttpClient, token: Token) -> Token | None:
        response = http.request("POST", "/refresh", headers={"Authorization": f"Bearer {token.refresh}"}, tolerate=(400,))
        if response.status == 400:
            return None
        return Token(response.data["access"], refresh=response.data["refresh"], extra={"account": response.data["account"]})

    def secrets(self) -> list[str]:
        return ["pw-s3cret"]


class AtprotoLogin(SessionLogin):
    def refused(self, response: requests.Response) -> bool:
        return response.status_code == 400 and response.json().get("error") == "ExpiredToken"


class DeskConnector(RestConnector):
    name, title, config_model, check_path = "desk", "Desk", ConnectorConfig, "/me"
    login_class: type[SessionLogin] = SessionLogin
    cache: TokenCache

    def authenticator(self) -> SessionLogin:
        return self.login_class("desk-session:ops", cache=self.cache)


def desk(sim: SessionSim, cache: TokenCache, login_class: type[SessionLogin] = SessionLogin) -> DeskConnector:
    DeskConnector.cache, DeskConnector.login_class = cache, login_class
    return DeskConnector(ConnectorConfig(base_url=sim.url), Runtime(time_scale=1000))


def test_a_session_is_logged_in_once_refreshed_when_refused_and_re_created_only_when_the_refresh_is_refused(tmp_path: Path) -> None:
    file = tmp_path / "sessions.json"
    with SessionSim() as sim:
        desk(sim, FileTokenCache(file)).check()
        again = desk(sim, FileTokenCache(file))  # the next run: the saved session, no login
        again.check()
        assert sim.logins == 1 and again.auth.session().extra == {"account": "acct-7"}  # type: ignore[attr-defined]
        assert stat.S_IMODE(os.stat(file).st_mode) == 0o600

        sim.expire_access()  # 401 → refresh (not a login) → resent once
        third = desk(sim, FileTokenCache(file))
        third.check()
        assert (sim.logins, sim.refreshes) == (1, 1) and sim.request_count("/me", status=401) == 1
        saved = json.loads(file.read_text())["desk-session:ops"]
        assert (saved["value"], saved["refresh"], saved["extra"]) == ("acc-1-x9q", "ref-1-k2w", {"account": "acct-7"})
        assert third.http.redact("Bearer ref-1-k2w, acc-1-x9q, pw-s3cret") == "Bearer ***, ***, ***"

        sim.expire_access()
        sim.refresh.clear()  # the refresh token was revoked too: log in again
        desk(sim, FileTokenCache(file)).check()
        assert (sim.logins, sim.refreshes) == (2, 1)


def test_a_token_past_its_expiry_is_refreshed_before_use(tmp_path: Path) -> None:
    with SessionSim() as sim:
        sim.refresh.add("ref-old")
        cache = FileTokenCache(tmp_path / "sessions.json")
        cache.save("desk-session:ops", Token("acc-old", expires_at=1.0, refresh="ref-old", extra={"account": "acct-7"}))
        desk(sim, cache).check()
        assert (sim.logins, sim.refreshes) == (0, 1) and sim.request_count("/me") == 1  # no refused request


def test_an_api_that_refuses_with_its_own_status_renews_through_refused(tmp_path: Path) -> None:
    """atproto answers 400 {"error": "ExpiredToken"}: renewed when `refused` says so, an error otherwise."""
    with SessionSim(atproto=True) as sim:
        desk(sim, TokenCache()).check()
        sim.expire_access()
        desk(sim, TokenCache(), AtprotoLogin).check()
        assert (sim.logins, sim.refreshes) == (1, 1) and sim.request_count("/me", status=400) == 1
        sim.expire_access()
        with pytest.raises(ApiError):  # the default `refused` (401) does not renew on a 400
            desk(sim, TokenCache()).check()


class MemoryKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    def __init__(self) -> None:
        super().__init__()
        self.entries: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.entries.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.entries[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.entries.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@pytest.fixture
def memory_keyring() -> Any:
    previous = keyring.get_keyring()
    backend = MemoryKeyring()
    keyring.set_keyring(backend)
    yield backend
    keyring.set_keyring(previous)


def test_sessions_kept_in_the_keyring_and_auto_picks_it_only_when_one_is_installed(tmp_path: Path, memory_keyring: MemoryKeyring) -> None:
    assert isinstance(saved_tokens("auto", tmp_path / "s.json"), KeyringTokenCache)
    assert isinstance(saved_tokens("file", tmp_path / "s.json"), FileTokenCache)
    cache = saved_tokens("keyring", tmp_path / "s.json")
    token = Token("acc", refresh="ref", extra={"did": "did:plc:x"})
    cache.save("k", token)
    assert cache.load("k") == token and json.loads(memory_keyring.entries[("kpisync", "k")])["refresh"] == "ref"
    cache.clear("k")
    cache.clear("k")  # clearing what is gone is no error
    assert cache.load("k") is None and cache.where == "the OS keyring"
    keyring.set_keyring(null.Keyring())  # a headless machine
    fallback = saved_tokens("auto", tmp_path / "s.json")
    assert isinstance(fallback, FileTokenCache) and fallback.where == str(tmp_path / "s.json")
    assert not (tmp_path / "s.json").exists()


def test_the_file_cache_reads_entries_without_refresh_token_and_ignores_foreign_ones(tmp_path: Path) -> None:
    file = tmp_path / "tokens.json"
    file.write_text(json.dumps({"oauth": {"value": "t", "expires_at": 5}, "old": {"access_jwt": "a", "refresh_jwt": "r"}}))
    cache = FileTokenCache(file)
    assert cache.load("oauth") == Token("t", 5.0) and cache.load("old") is None
    cache.save("oauth", Token("t2", 6.0))
    assert json.loads(file.read_text())["oauth"] == {"value": "t2", "expires_at": 6.0}  # the OAuth format, unchanged

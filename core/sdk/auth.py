"""Authentication helpers: how a connector proves who it is, on every request.

Each helper is a `requests` auth hook (`requests.auth.AuthBase`) that `ApiClient` installs on
its session, so the retry, pacing and redaction rules of `HttpClient` stay in one place. Every
helper names the secret values it sends, so they are redacted from errors and logs too.

    BasicAuth(config.email + "/token", config.api_token)        # Zendesk API token
    BasicAuth(config.api_key, "X")                               # Freshdesk API key
    BearerToken(config.oauth_token)                              # a personal access token
    ApiKeyHeader("X-Api-Key", config.api_key)                    # header API key
    ApiKeyQuery("api_key", config.api_key)                       # key in the query string
    OAuth2ClientCredentials(token_url, client_id, client_secret) # token issued, cached, refreshed

Token-based helpers fetch a token on first use, keep it in a `TokenCache` (in memory for the
process, a 0600 file or the OS keyring between runs) and, when the API answers 401 to a token
that came from the cache or has just expired, fetch a fresh one and send the request once more.
A login that also issues a refresh token (a session login: atproto's createSession, help desks'
session APIs) overrides `TokenLogin.refresh`: an expired or refused token is then refreshed,
and only a refused refresh logs in again.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import requests
from pydantic import SecretStr
from requests.auth import AuthBase

from ..config import KEYRING_SERVICE
from ..errors import AuthError, MalformedPayload
from ..httpclient import HttpClient, Runtime


def _plain(value: str | SecretStr | None) -> str:
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    return value or ""


class Auth(AuthBase):
    """Base of every helper: adds credentials to a prepared request."""

    #: Shown after "authentication failed (HTTP 401) —" when the API refuses the credentials.
    hint = "check the credentials"

    def secrets(self) -> list[str]:
        """Plain values this helper sends, for redaction."""
        return []

    def close(self) -> None:
        """Release what the authenticator opened itself (a token endpoint's session)."""

    def bind(self, client: HttpClient) -> None:
        """Called once by ApiClient; token helpers remember the client to redact new tokens."""

    def strip(self, url: str) -> str:
        """`url` without the credentials this helper put in it (before it goes into a state)."""
        return url

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        return request


class NoAuth(Auth):
    """Public APIs (and simulators of them)."""


class BasicAuth(Auth):
    """HTTP Basic: `user:password` (Freshdesk sends the API key as user and "X" as password)."""

    def __init__(self, user: str | SecretStr, password: str | SecretStr) -> None:
        self.user, self.password = _plain(user), _plain(password)
        self.header = "Basic " + base64.b64encode(f"{self.user}:{self.password}".encode()).decode()

    def secrets(self) -> list[str]:
        # A SecretStr user (an API key sent as the user name) is as secret as the password.
        return [s for s in (self.password, self.header.split(" ", 1)[1]) if len(s) > 1]

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = self.header
        return request


class BearerToken(Auth):
    """`Authorization: Bearer <token>` with a long-lived token from the config."""

    def __init__(self, token: str | SecretStr, scheme: str = "Bearer") -> None:
        self.token, self.scheme = _plain(token), scheme

    def secrets(self) -> list[str]:
        return [self.token]

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"{self.scheme} {self.token}"
        return request


class ApiKeyHeader(Auth):
    """An API key in a header of its own (`X-Api-Key: …`), optionally with a prefix."""

    def __init__(self, header: str, key: str | SecretStr, prefix: str = "") -> None:
        self.header_name, self.key, self.prefix = header, _plain(key), prefix

    def secrets(self) -> list[str]:
        return [self.key]

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers[self.header_name] = f"{self.prefix}{self.key}"
        return request


class ApiKeyQuery(Auth):
    """An API key in the query string (`?api_key=…`): redacted from every error message.
    Several parameters as a mapping: `ApiKeyQuery({"consumer_key": k, "consumer_secret": s})`."""

    def __init__(self, param: str | Mapping[str, str | SecretStr], key: str | SecretStr | None = None) -> None:
        pairs = param if isinstance(param, Mapping) else {param: key}
        self.params = {name: _plain(value) for name, value in pairs.items()}

    def secrets(self) -> list[str]:
        return list(self.params.values())

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        for name, value in self.params.items():
            request.url = _with_query(str(request.url), name, value)
        return request

    def strip(self, url: str) -> str:
        for name in self.params:
            url = _with_query(url, name, None)
        return url


def _with_query(url: str, name: str, value: str | None) -> str:
    """`url` with the query parameter `name` set to `value` (None: removed), once."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != name]
    if value is not None:
        query.append((name, value))
    return urlunsplit(parts._replace(query=urlencode(query)))


# -- tokens ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Token:
    value: str
    #: Expiry on the runtime's wall clock (`TokenCache.now`); 0 = never expires.
    expires_at: float = 0.0
    #: The refresh token of a session login ("" = none): `TokenLogin.refresh` renews with it.
    refresh: str = ""
    #: What else the login answered that the connector needs (the account's id), kept with it.
    extra: Mapping[str, str] = field(default_factory=dict)


class TokenCache:
    """Where issued tokens live between uses. The default keeps them for the process."""

    _memory: dict[str, Token] = {}
    _lock = threading.Lock()
    #: Where the tokens are, for messages ("… reuses its saved session (<where>)").
    where = "this process's memory"

    def __init__(self, runtime: Runtime | None = None) -> None:
        self.time_scale = runtime.time_scale if runtime is not None else 1.0

    def now(self) -> float:
        """Wall-clock seconds on the runtime's (scaled) clock, comparable across processes."""
        return time.time() * self.time_scale

    def load(self, key: str) -> Token | None:
        with self._lock:
            return self._memory.get(key)

    def save(self, key: str, token: Token) -> None:
        with self._lock:
            self._memory[key] = token

    def clear(self, key: str) -> None:
        with self._lock:
            self._memory.pop(key, None)


class FileTokenCache(TokenCache):
    """Tokens in a JSON file readable by its owner only (0600), never in the store: scheduled
    syncs then reuse a token instead of logging in every run (some vendors cap logins a day)."""

    def __init__(self, path: str | Path, runtime: Runtime | None = None) -> None:
        super().__init__(runtime)
        self.path = Path(path)
        self.where = str(self.path)

    def _read(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text(encoding="utf-8"))
            return data if isinstance(data, dict) else {}
        except (OSError, ValueError):
            return {}

    def load(self, key: str) -> Token | None:
        return _decode(self._read().get(key))

    def save(self, key: str, token: Token) -> None:
        data = self._read()
        data[key] = _encode(token)
        write_private(self.path, json.dumps(data))

    def clear(self, key: str) -> None:
        data = self._read()
        if data.pop(key, None) is not None:
            write_private(self.path, json.dumps(data))


class KeyringTokenCache(TokenCache):
    """Tokens in the OS keyring (service "kpisync", one entry a key): for desktops, where a
    file next to the store would be readable by backups and other tools."""

    where = "the OS keyring"

    def __init__(self, runtime: Runtime | None = None, service: str = KEYRING_SERVICE) -> None:
        super().__init__(runtime)
        self.service = service

    def load(self, key: str) -> Token | None:
        import keyring  # lazily: slow to import, unused on servers

        try:
            return _decode(json.loads(keyring.get_password(self.service, key) or "null"))
        except ValueError:
            return None

    def save(self, key: str, token: Token) -> None:
        import keyring

        keyring.set_password(self.service, key, json.dumps(_encode(token)))

    def clear(self, key: str) -> None:
        import keyring
        from keyring.errors import PasswordDeleteError

        try:
            keyring.delete_password(self.service, key)
        except PasswordDeleteError:
            pass


TokenBackend = Literal["auto", "keyring", "file"]


def saved_tokens(backend: TokenBackend, file: str | Path, runtime: Runtime | None = None) -> TokenCache:
    """The cache a `session_store`-style setting names: "keyring", "file" (0600 at `file`) or
    "auto" — the keyring when a real one is installed, else the file (headless servers)."""
    if backend == "keyring" or (backend == "auto" and keyring_usable()):
        return KeyringTokenCache(runtime)
    return FileTokenCache(file, runtime)


def keyring_usable() -> bool:
    """A real keyring backend is installed (not the fail/null ones of a headless machine)."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
        return not isinstance(backend, fail.Keyring) and getattr(backend, "priority", 0) > 0
    except Exception:  # a broken keyring install must not stop a sync
        return False


def _encode(token: Token) -> dict[str, Any]:
    entry: dict[str, Any] = {"value": token.value, "expires_at": token.expires_at}
    if token.refresh:
        entry["refresh"] = token.refresh
    if token.extra:
        entry["extra"] = dict(token.extra)
    return entry


def _decode(entry: Any) -> Token | None:
    """A Token from a cache entry; None for anything else (an old or foreign format: log in)."""
    if not isinstance(entry, dict) or not isinstance(entry.get("value"), str):
        return None
    extra = entry.get("extra")
    extra = {str(k): str(v) for k, v in extra.items()} if isinstance(extra, dict) else {}
    return Token(entry["value"], float(entry.get("expires_at") or 0), str(entry.get("refresh") or ""), extra)


def write_private(path: Path, text: str) -> None:
    """Atomically replace `path` with a file only its owner can read (mkstemp creates 0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class TokenLogin(Auth):
    """A session login: `login()` returns a Token; it is cached, sent as a bearer token, and
    renewed when it expires or a request comes back 401. Subclass and implement `login`
    (OAuth2ClientCredentials below is one), or pass `login=` a function of the token client.

    The login goes through its own HttpClient (`token_http`) so its retries are the usual ones
    and a refused login is one clear AuthError line.
    """

    #: Renew this many seconds (runtime clock) before the announced expiry.
    margin = 60.0

    def __init__(
        self,
        cache_key: str,
        login: Callable[[HttpClient], Token] | None = None,
        cache: TokenCache | None = None,
        scheme: str = "Bearer",
    ) -> None:
        self.cache_key = cache_key
        self._login = login
        self.cache = cache
        self.scheme = scheme
        self.token_http: HttpClient | None = None
        self.runtime: Runtime | None = None
        self._client: HttpClient | None = None
        self._token: Token | None = None
        self._from_cache = False

    def close(self) -> None:
        if self.token_http is not None:
            self.token_http.close()

    def bind(self, client: HttpClient) -> None:
        self._client = client
        self.runtime = client.runtime
        if self.cache is None:
            self.cache = TokenCache(client.runtime)
        # Same User-Agent as the API calls: vendors that require a descriptive one (Reddit)
        # throttle the token endpoint too.
        self.token_http = HttpClient(
            client.base_url, client.runtime, name=client.name, secrets=self.secrets(), auth_hint=self.hint,
            headers={"User-Agent": str(client.session.headers["User-Agent"])},
        )  # fmt: skip

    def login(self, http: HttpClient) -> Token:
        if self._login is None:
            raise NotImplementedError("pass login= or subclass TokenLogin")
        return self._login(http)

    def refresh(self, http: HttpClient, token: Token) -> Token | None:
        """A new token from `token.refresh`, asked when the token expired or was refused; None
        when the refresh token is refused too (then `login` runs). Only called for tokens with a
        refresh token; the default never refreshes."""
        return None

    def refused(self, response: requests.Response) -> bool:
        """Whether the API refused the token (expired, revoked): renew it and resend once.
        Most APIs answer 401; atproto answers 400 {"error": "ExpiredToken"}: override."""
        return response.status_code == 401

    def session(self) -> Token:
        """The current token with what its login answered (`extra`), logging in if needed."""
        self.token()
        assert self._token is not None
        return self._token

    def token(self, renew: bool = False) -> str:
        assert self.cache is not None and self.token_http is not None, "bind() first"
        now = self.cache.now()
        if not renew and self._token is None:
            cached = self.cache.load(self.cache_key)
            if cached is not None:
                self._token, self._from_cache = cached, True
        expired = self._token is not None and self._token.expires_at and now >= self._token.expires_at - self.margin
        if renew or self._token is None or expired:
            renewed = self.refresh(self.token_http, self._token) if self._token is not None and self._token.refresh else None
            if renewed is None:
                if self._token is not None:
                    self.cache.clear(self.cache_key)
                renewed = self.login(self.token_http)
            self._token, self._from_cache = renewed, False
            self.cache.save(self.cache_key, self._token)
        for client in (self._client, self.token_http):
            if client is not None:
                client.add_secret(self._token.value)
                client.add_secret(self._token.refresh)
        return self._token.value

    def expires_at(self, lifetime: float | None) -> float:
        """Expiry for a token valid `lifetime` seconds from now (None: no expiry given)."""
        assert self.cache is not None
        return self.cache.now() + float(lifetime) if lifetime else 0.0

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"{self.scheme} {self.token()}"
        request.register_hook("response", self._retry_on_401)
        return request

    def _retry_on_401(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """A token the API no longer accepts (revoked, or expired early; see `refused`): renew
        it once and resend. A fresh token refused again is a credentials problem for HttpClient."""
        if getattr(response.request, "_kpisync_retried", False) or not self.refused(response):
            return response
        self.token(renew=True)
        request = response.request.copy()
        request.headers["Authorization"] = f"{self.scheme} {self.token()}"
        request._kpisync_retried = True  # type: ignore[attr-defined]
        response.content  # noqa: B018 - drain so the connection goes back to the pool
        response.raw.release_conn()
        if self.runtime is not None:
            self.runtime.count_request()
        new = response.connection.send(request, **kwargs)
        new.history.append(response)
        new.request = request
        return new


class OAuth2ClientCredentials(TokenLogin):
    """OAuth 2.0 client credentials (RFC 6749 §4.4): POST grant_type=client_credentials with
    the client id and secret to `token_url`; the answer's access_token and expires_in are used.

    `body="form"` is the RFC's encoding; `"json"` for vendors that take JSON (Help Scout takes
    both). `basic=True` sends the client credentials as HTTP Basic instead of in the body.
    """

    def __init__(
        self,
        token_url: str,
        client_id: str,
        client_secret: str | SecretStr,
        *,
        scope: str | None = None,
        body: str = "form",
        basic: bool = False,
        cache: TokenCache | None = None,
        hint: str = "check client_id and client_secret",
    ) -> None:
        secret = _plain(client_secret)
        # The key names the secret too (by a short hash, never the secret itself): a changed
        # secret must log in again rather than reuse a token obtained with the old one.
        fingerprint = hashlib.sha256(secret.encode()).hexdigest()[:16]
        super().__init__(cache_key=f"{token_url}|{client_id}|{fingerprint}", cache=cache)
        self.token_url, self.client_id, self.client_secret = token_url, client_id, secret
        self.scope, self.body, self.basic, self.hint = scope, body, basic, hint

    def secrets(self) -> list[str]:
        return [self.client_secret]

    def login(self, http: HttpClient) -> Token:
        fields = {"grant_type": "client_credentials"}
        if not self.basic:
            fields.update(client_id=self.client_id, client_secret=self.client_secret)
        if self.scope:
            fields["scope"] = self.scope
        headers = None
        if self.basic:
            pair = base64.b64encode(f"{self.client_id}:{self.client_secret}".encode()).decode()
            headers = {"Authorization": f"Basic {pair}"}
        response = http.request(
            "POST", self.token_url, headers=headers, tolerate=(400, 401),
            json_body=fields if self.body == "json" else None, form=fields if self.body == "form" else None,
        )  # fmt: skip
        data = response.data if isinstance(response.data, dict) else {}
        if response.status in (400, 401):
            # RFC 6749 §5.2: `error` is a string code; some vendors send the status (Reddit: 401).
            code = data.get("error") if isinstance(data.get("error"), str) else None
            error = data.get("error_description") or code or f"HTTP {response.status}"
            raise AuthError(http.redact(f"{http.name}: the token request was refused ({error}) — {self.hint}"))
        if not isinstance(data.get("access_token"), str):
            raise MalformedPayload(f"malformed response from POST {self.token_url}: expected 'access_token'")
        return Token(data["access_token"], self.expires_at(data.get("expires_in")))

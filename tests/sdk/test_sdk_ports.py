"""SDK options added while porting the built-in connectors (Reddit, WooCommerce)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from kpisync.core.connector import ConnectorConfig
from kpisync.core.errors import AuthError
from kpisync.core.httpclient import Runtime
from kpisync.core.sdk import OAuth2ClientCredentials, RestConnector
from kpisync.fixtures.simserver import Request, Response, SimServer


class TokenSim(SimServer):
    """A token endpoint that answers a refusal with a numeric `error`, as Reddit does."""

    def __init__(self) -> None:
        super().__init__()
        self.agents: list[str] = []
        self.route("POST", r"/token", self._token)
        self.route("GET", r"/me", lambda request: Response(json={"ok": True}))

    def handle(self, request: Request) -> Response:
        self.agents.append(request.header("user-agent") or "")
        return self.route_request(request)

    def _token(self, request: Request) -> Response:
        if request.basic_auth() != ("app", "right"):
            return Response(401, json={"message": "Unauthorized", "error": 401})
        return Response(json={"access_token": "tok-" + str(len(self.agents)), "expires_in": 3600})


class TokenConfig(ConnectorConfig):
    client_id: str
    client_secret: SecretStr


class TokenConnector(RestConnector):
    name, title, config_model, check_path = "tokens", "Tokens", TokenConfig, "/me"

    def authenticator(self) -> OAuth2ClientCredentials:
        config: Any = self.config
        return OAuth2ClientCredentials(f"{self.base_url}/token", config.client_id, config.client_secret, basic=True, hint="check it")

    def headers(self) -> dict[str, str]:
        return {"User-Agent": "python:acme:1.0 (by /u/someone)"}


def test_headers_reach_the_token_request_and_a_numeric_error_reads_as_the_status() -> None:
    with TokenSim() as sim:
        runtime = Runtime(time_scale=1000)
        good = TokenConnector(TokenConfig(base_url=sim.url, client_id="app", client_secret=SecretStr("right")), runtime)
        good.check()
        assert sim.agents == ["python:acme:1.0 (by /u/someone)"] * 2  # token, then /me
        # another client id: no token of `good` in the (process-wide) token cache
        bad = TokenConnector(TokenConfig(base_url=sim.url, client_id="other-app", client_secret=SecretStr("wrong")), runtime)
        with pytest.raises(AuthError) as refused:
            bad.check()
    assert "the token request was refused (HTTP 401) — check it" in str(refused.value)

"""SDK options added while porting the built-in connectors (Reddit, WooCommerce)."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import SecretStr

from kpisync.core.connector import ConnectorConfig
from kpisync.core.errors import AuthError
from kpisync.core.httpclient import Runtime
from kpisync.core.sdk import ApiKeyQuery, OAuth2ClientCredentials, PageNumber, RestConnector, RestStream, UpdatedSince
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


class WpSim(SimServer):
    """`/posts?page=&per_page=&after=` (inclusive) in WordPress's style: the page count in
    X-WP-TotalPages (a full last page says nothing in the body), keys in the query string."""

    def __init__(self, items: list[dict[str, Any]], with_header: bool = True) -> None:
        super().__init__()
        self.items, self.with_header = items, with_header
        self.route("GET", r"/posts", self._posts)

    def _posts(self, request: Request) -> Response:
        if (request.arg("ck"), request.arg("cs")) != ("k-1", "s-2"):
            return Response(401, json={"code": "cannot_view"})
        after = request.arg("after")
        rows = [i for i in self.items if after is None or i["at"] >= after]
        page, size = int(request.arg("page") or 1), int(request.arg("per_page") or 10)
        pages = -(-len(rows) // size)
        headers = {"X-WP-TotalPages": str(pages)} if self.with_header else {}
        return Response(json=rows[(page - 1) * size : page * size], headers=headers)


class WpConfig(ConnectorConfig):
    pass


class Posts(RestStream):
    name = "posts"
    path = "/posts"
    paginator = PageNumber(size_param="per_page", size=5, total_pages_header="X-WP-TotalPages")
    cursor = UpdatedSince("after", "at", earliest=None)

    def map(self, item: dict[str, Any]) -> None:
        return None


class WpConnector(RestConnector):
    name, title, config_model, check_path = "wp", "WP", WpConfig, "/posts"
    stream_classes = [Posts]

    def authenticator(self) -> ApiKeyQuery:
        return ApiKeyQuery({"ck": "k-1", "cs": SecretStr("s-2")})


def test_total_pages_from_a_header_and_a_first_sync_without_a_filter() -> None:
    items = [{"id": n, "at": "2026-05-04T12:00:00Z"} for n in range(10)]  # two full pages, one second
    # page 1 unfiltered; page 1 again from that second (all seen); page 2; without the header a
    # full page 2 says nothing about a page 3, which comes back empty
    for with_header, pages in ((True, ["1", "1", "2"]), (False, ["1", "1", "2", "3"])):
        with WpSim(items, with_header) as sim:
            connector = WpConnector(WpConfig(base_url=sim.url), Runtime(time_scale=1000))
            states = [batch.state for batch in connector.streams()[0].read(None)]
            log = sim.request_log()
            assert [r.query["page"][0] for r in log] == pages and "after" not in log[0].query
            assert states[0] == {"since": "2026-05-04T12:00:00Z", "seen": ["0", "1", "2", "3", "4"]}
            assert states[-1] == {"since": "2026-05-04T12:00:00Z", "seen": sorted(str(n) for n in range(10))}
            auth = connector.http.session.auth
            assert isinstance(auth, ApiKeyQuery) and auth.strip(f"{sim.url}/posts?page=2&ck=k-1&cs=s-2") == f"{sim.url}/posts?page=2"

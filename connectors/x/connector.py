"""X (Twitter) API v2: mentions of the brand account and a recent search for its keywords.

Streams (docs.x.com x-api/posts/timelines and x-api/posts/search):

* `mentions` — GET /2/users/{id}/mentions (the 800 most recent mentions are reachable).
* `search` — GET /2/tweets/search/recent (the last 7 days), one query of ≤ 512 characters per
  chunk of keywords and hashtags, retweets excluded (`-is:retweet`).

Both poll with `since_id` = the newest id of the last poll and page back with the response's
`next_token`, 100 posts per request, authors expanded (`expansions=author_id`) for follower
counts. The state moves only at the end of a poll; a stopped poll resumes from its next_token,
which does not expire (x-api/posts/search/integrate/paginate).

X is paid per read: every post and user returned is billed, so each stream reports what it read
and an estimate of the cost, and `max_post_reads_per_run` can cap a run. Rate limits are per
endpoint per 15 minutes with x-rate-limit-* headers and no Retry-After: the client waits until
x-rate-limit-reset (epoch seconds).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr, field_validator

from kpisync.core.connector import Batch, Connector, ConnectorConfig, Stream
from kpisync.core.errors import ApiError, AuthError, ConfigError, MalformedPayload
from kpisync.core.httpclient import HeaderBudget, HttpClient, HttpResponse, RatePolicy, Runtime
from kpisync.core.models import Record
from kpisync.core.timeutil import iso

from . import mapping

PAGE = 100
QUERY_LIMIT = 512  # recent search, self-serve access (x-api/posts/search/integrate/overview)
TWEET_FIELDS = "created_at,author_id,lang,public_metrics,referenced_tweets,in_reply_to_user_id,entities,conversation_id"
EXPANSIONS = "author_id,referenced_tweets.id,referenced_tweets.id.author_id"
USER_FIELDS = "username,name,public_metrics"


class XConfig(ConnectorConfig):
    """Settings: KPISYNC_X_<FIELD> or [sources.x] in kpisync.toml."""

    #: App-only Bearer token of an X app with paid (pay-per-use or plan) API access.
    bearer_token: SecretStr
    #: The brand account's username, without "@".
    account: str
    #: More accounts of the brand: their posts are marked is_own_account.
    other_accounts: list[str] = []
    keywords: list[str] = []
    hashtags: list[str] = []
    #: Stop a run after this many billed post reads (the rest is read next run).
    max_post_reads_per_run: int | None = None
    #: Price estimates for the cost notice (X Developer Console shows the real ones).
    usd_per_post_read: float = 0.005
    usd_per_user_read: float = 0.010

    @field_validator("account", "other_accounts", "hashtags")
    @classmethod
    def _bare(cls, value: Any) -> Any:
        if isinstance(value, list):
            return [v.strip().lstrip("@#") for v in value if v.strip().lstrip("@#")]
        return value.strip().lstrip("@")


class PerEndpoint(RatePolicy):
    """X limits each endpoint separately (x-api/fundamentals/rate-limits), so one budget per path."""

    def __init__(self) -> None:
        self.budgets: dict[str, HeaderBudget] = {}

    def _budget(self, url: str) -> HeaderBudget:
        path = urlsplit(url).path
        key = "/2/users/:id/mentions" if path.endswith("/mentions") else path
        if key not in self.budgets:
            self.budgets[key] = HeaderBudget(
                remaining=("x-rate-limit-remaining",), reset=("x-rate-limit-reset",), floor=0, reset_is_epoch=True
            )
        return self.budgets[key]

    def wait_before(self, url: str, runtime: Runtime) -> tuple[float, str]:
        wait, _ = self._budget(url).wait_before(url, runtime)
        return wait, "X rate limit (per endpoint, 15-minute windows)"

    def observe(self, url: str, response: requests.Response, runtime: Runtime) -> None:
        self._budget(url).observe(url, response, runtime)


class Usage:
    """Billed reads of this run (pay-per-use bills every post and user returned)."""

    def __init__(self) -> None:
        self.posts = 0
        self.users = 0

    def add(self, data: dict[str, Any], *, users_endpoint: bool = False) -> None:
        if users_endpoint:
            self.users += len(data.get("data") or [])
            return
        includes = data.get("includes") or {}
        self.posts += len(data.get("data") or []) + len(includes.get("tweets") or [])
        self.users += len(includes.get("users") or [])


class XConnector(Connector):
    name = "x"
    title = "X (Twitter)"
    kind = "social"
    config_model = XConfig
    description = "Mentions of the brand account and a 7-day keyword search on X (paid API; reads are counted)."

    config: XConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        assert isinstance(config, XConfig)
        self.http = HttpClient(
            (config.base_url or "https://api.x.com").rstrip("/"),
            runtime,
            name="x",
            headers={"Authorization": f"Bearer {config.bearer_token.get_secret_value()}"},
            secrets=config.secret_values(),
            auth_hint="check bearer_token (KPISYNC_X_BEARER_TOKEN): the app's Bearer token from the X Developer Console",
            rate_policy=PerEndpoint(),
            default_retry_after=1.0,
        )
        self.usage = Usage()
        self._brand: mapping.Brand | None = None
        self._account_id: str | None = None

    # -- requests ----------------------------------------------------------------------------
    def get(self, path: str, params: dict[str, Any]) -> HttpResponse:
        """GET with X's access errors turned into one clear line; 400s are returned to the caller."""
        response = self.http.get(path, params, tolerate=(400, 402, 403))
        body = response.data if isinstance(response.data, dict) else {}
        if response.status == 403:
            reason = str(body.get("reason") or "")
            detail = " ".join(str(body.get(k) or "") for k in ("title", "detail")).strip()
            if reason in ("client-not-enrolled", "user-not-enrolled") or "Project" in detail:
                raise AuthError(
                    f"x: this X app has no paid API access (HTTP 403 {reason or 'Client Forbidden'}) — attach it "
                    "to a Project with pay-per-use credits or a paid plan in the X Developer Console"
                )
            raise AuthError(f"x: access refused (HTTP 403: {detail or 'Forbidden'}) — {self.http.auth_hint}")
        if response.status == 402:
            raise AuthError("x: the X account has no API credits left (HTTP 402) — top up in the X Developer Console")
        if response.status == 200:
            self.usage.add(body, users_endpoint=path.startswith("/2/users/by"))
        return response

    def brand(self) -> mapping.Brand:
        """The brand accounts' ids, looked up once per run (GET /2/users/by, one billed user read each)."""
        if self._brand is None:
            names = [self.config.account, *self.config.other_accounts]
            response = self.get("/2/users/by", {"usernames": ",".join(names), "user.fields": "username"})
            users = response.data.get("data") if response.status == 200 and isinstance(response.data, dict) else None
            if not users:
                raise ConfigError(f"x: account '{self.config.account}' was not found on X (setting 'account')")
            by_name = {str(u.get("username", "")).lower(): str(u["id"]) for u in users}
            self._account_id = by_name.get(self.config.account.lower())
            if self._account_id is None:
                raise ConfigError(f"x: account '{self.config.account}' was not found on X (setting 'account')")
            self._brand = mapping.Brand(
                own_ids=frozenset(by_name.values()),
                own_usernames=frozenset(n.lower() for n in names),
                account=self.config.account,
                keywords=tuple(self.config.keywords),
                hashtags=tuple(t.lower() for t in self.config.hashtags),
            )
        return self._brand

    def own_id(self) -> str:
        self.brand()
        assert self._account_id is not None
        return self._account_id

    def budget_left(self) -> int | None:
        cap = self.config.max_post_reads_per_run
        return None if cap is None else cap - self.usage.posts

    # -- contract ----------------------------------------------------------------------------
    def check(self) -> None:
        self.brand()

    def streams(self) -> list[Stream]:
        return [MentionsStream(self), SearchStream(self)]

    def close(self) -> None:
        self.http.close()


def search_queries(keywords: list[str], hashtags: list[str], limit: int = QUERY_LIMIT) -> list[str]:
    """`("a" OR "b c" OR #d) -is:retweet` chunks of at most `limit` characters each."""
    terms = [f'"{k}"' for k in keywords] + [f"#{t}" for t in hashtags]
    suffix = " -is:retweet"
    queries, current = [], []
    for term in terms:
        candidate = current + [term]
        if current and len(f"({' OR '.join(candidate)}){suffix}") > limit:
            queries.append(f"({' OR '.join(current)}){suffix}")
            candidate = [term]
        current = candidate
    if current:
        queries.append(f"({' OR '.join(current)}){suffix}")
    too_long = [q for q in queries if len(q) > limit]
    if too_long:
        raise ConfigError(f"x: a single keyword makes a search query longer than {limit} characters")
    return queries


class _Poll:
    """since_id polling of one X timeline or search. State: {"since_id"} between polls,
    {"since_id", "newest", "token"} within one."""

    def __init__(self, connector: XConnector, path: str, params: dict[str, Any], token_param: str, fallback: tuple[str, str]) -> None:
        self.x = connector
        self.path = path
        self.params = params
        self.token_param = token_param
        self.fallback = fallback
        self.notices: list[str] = []
        self.read_count = 0

    def read(self, state: dict[str, Any]) -> Iterator[tuple[list[Record], dict[str, Any]]]:
        since, newest, token = state.get("since_id"), state.get("newest"), state.get("token")
        start = iso(self.x.config.start_date)
        while True:
            params = {**self.params, "max_results": PAGE, "tweet.fields": TWEET_FIELDS,
                      "expansions": EXPANSIONS, "user.fields": USER_FIELDS}  # fmt: skip
            if since:
                params["since_id"] = since
            elif start:
                params["start_time"] = start
            if token:
                params[self.token_param] = token
            response = self.x.get(self.path, params)
            if response.status == 400:
                since, start, token, newest = self._recover(response.data, since, start)
                continue
            data = response.data if isinstance(response.data, dict) else None
            if data is None or not isinstance(data.get("meta"), dict):
                raise MalformedPayload(f"malformed response from GET {self.path}: expected 'meta'")
            meta = data["meta"]
            newest = newest or meta.get("newest_id")
            token = meta.get("next_token")
            records = self._records(data)
            self.read_count += len(data.get("data") or [])
            if token:
                yield records, {"since_id": since, "newest": newest, "token": token}
            else:
                yield records, {"since_id": newest or since}
                return
            left = self.x.budget_left()
            if left is not None and left <= 0:
                self.notices.append(
                    f"x: stopped after {self.x.usage.posts} post reads (max_post_reads_per_run); the rest follows next run"
                )
                return

    def _recover(self, body: Any, since: str | None, start: str | None) -> tuple[None, None, None, None]:
        """recent search refuses a since_id or start_time older than 7 days: read the 7 days it
        allows and say what may be missing."""
        text = str(body)
        if since and "since_id" in text:
            self.notices.append(
                "x: the last poll is more than 7 days old — recent search only covers 7 days, so posts "
                "between then and a week ago may be missing; poll at least weekly"
            )
            return None, None, None, None
        if start and "start_time" in text:
            self.notices.append("x: recent search only reaches back 7 days; older posts than that were not read")
            return None, None, None, None
        raise ApiError(f"x: GET {self.path} returned HTTP 400: {_problem(body)}", status=400)

    def _records(self, data: dict[str, Any]) -> list[Record]:
        includes = data.get("includes") or {}
        users = {str(u.get("id")): u for u in includes.get("users") or []}
        quoted = {str(t.get("id")): str(t.get("author_id")) for t in includes.get("tweets") or []}
        brand = self.x.brand()
        return [
            mapping.mention(tweet, users, quoted, brand, fallback=self.fallback)
            for tweet in data.get("data") or []
            if not mapping.is_retweet(tweet)  # billed all the same, but a retweet is not a mention
        ]


def _problem(body: Any) -> str:
    if isinstance(body, dict):
        errors = body.get("errors") or []
        if errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0])
        return str(body.get("detail") or body.get("title") or body)
    return str(body)


class _XStream(Stream):
    def __init__(self, connector: XConnector) -> None:
        self.x = connector

    def cost_notice(self, posts_before: int, users_before: int) -> str:
        posts = self.x.usage.posts - posts_before
        users = self.x.usage.users - users_before
        cost = posts * self.x.config.usd_per_post_read + users * self.x.config.usd_per_user_read
        return (
            f"x: {self.name} read {posts} posts and {users} users this run "
            f"(≈ ${cost:.2f} at ${self.x.config.usd_per_post_read}/post, ${self.x.config.usd_per_user_read}/user; "
            "X bills every read)"
        )


class MentionsStream(_XStream):
    name = "mentions"

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        posts, users = self.x.usage.posts, self.x.usage.users
        poll = _Poll(self.x, f"/2/users/{self.x.own_id()}/mentions", {}, "pagination_token",
                     ("mention", "@" + self.x.config.account))  # fmt: skip
        for records, new_state in poll.read(state or {}):
            yield Batch(records, new_state)
        if not (state or {}).get("since_id") and poll.read_count >= 800:
            poll.notices.append("x: the mentions timeline only reaches the 800 most recent mentions; older ones were not read")
        yield Batch([], notices=[*poll.notices, self.cost_notice(posts, users)])


class SearchStream(_XStream):
    name = "search"

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        posts, users = self.x.usage.posts, self.x.usage.users
        saved: dict[str, Any] = dict((state or {}).get("queries") or {})
        notices: list[str] = []
        for query in search_queries(self.x.config.keywords, self.x.config.hashtags):
            fallback = ("keyword", self.x.config.keywords[0] if self.x.config.keywords else query)
            poll = _Poll(self.x, "/2/tweets/search/recent", {"query": query}, "next_token", fallback)
            for records, query_state in poll.read(saved.get(query) or {}):
                saved[query] = query_state
                yield Batch(records, {"queries": dict(saved)})
            notices.extend(poll.notices)
            left = self.x.budget_left()
            if left is not None and left <= 0:
                break
        yield Batch([], notices=[*notices, self.cost_notice(posts, users)])

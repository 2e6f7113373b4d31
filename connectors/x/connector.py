"""X (Twitter) API v2: mentions of the brand account and a recent search for its keywords.

Streams (docs.x.com x-api/posts/timelines and x-api/posts/search):

* `mentions` — GET /2/users/{id}/mentions (the 800 most recent mentions are reachable).
* `search` — GET /2/tweets/search/recent (the last 7 days), one query of ≤ 512 characters per
  chunk of keywords and hashtags, retweets excluded (`-is:retweet`).

Both are SDK fan-outs (core/sdk/fanout.py), one listing per query: a poll walks back from the
newest post with the response's `next_token` down to `since_id` = the newest id of the last poll,
100 posts per request, authors expanded (`expansions=author_id`) for follower counts. The mark
moves only at the end of a poll; a stopped poll resumes from its next_token, which does not
expire (x-api/posts/search/integrate/paginate). The brand accounts' ids are kept in the stream
state, so only a first run (or a changed `account`) pays the user lookup.

X is paid per read: every post and user returned is billed, so each stream reports what it read
and an estimate of the cost, and `max_post_reads_per_run` can cap a run. Rate limits are per
endpoint per 15 minutes with x-rate-limit-* headers and no Retry-After: the client waits until
x-rate-limit-reset (epoch seconds).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import requests
from pydantic import SecretStr, field_validator

from kpisync.core.connector import Batch, ConnectorConfig
from kpisync.core.errors import ApiError, AuthError, ConfigError, MalformedPayload
from kpisync.core.httpclient import HeaderBudget, HttpResponse, RatePolicy, Runtime
from kpisync.core.models import Record
from kpisync.core.sdk import BearerToken, FanOutStream, FeedPage, Listing, RestConnector
from kpisync.core.timeutil import iso

from . import mapping

PAGE = 100
QUERY_LIMIT = 512  # recent search, self-serve access (x-api/posts/search/integrate/overview)
TWEET_FIELDS = "created_at,author_id,lang,public_metrics,referenced_tweets,in_reply_to_user_id,entities,conversation_id"
EXPANSIONS = "author_id,referenced_tweets.id,referenced_tweets.id.author_id"
USER_FIELDS = "username,name,public_metrics"
#: Post ids are snowflakes: milliseconds since this epoch, shifted 22 bits (resources/fundamentals/x-ids).
TWEPOCH_MS = 1288834974657


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


def _problem(body: Any) -> str:
    if isinstance(body, dict):
        errors = body.get("errors") or []
        if errors and isinstance(errors[0], dict):
            return str(errors[0].get("message") or errors[0])
        return str(body.get("detail") or body.get("title") or body)
    return str(body)


class Timeline(Listing):
    """since_id polling of one X timeline or search: newest first, paged back with a token."""

    def __init__(
        self, x: XConnector, key: str, path: str, params: dict[str, Any], token: str, fallback: tuple[str, str]
    ) -> None:
        super().__init__(key)
        self.x, self.path, self.params, self.token, self.fallback = x, path, params, token, fallback
        self.start = iso(x.config.start_date)
        #: False once recent search refused since_id/start_time as older than its 7 days.
        self.bounded = True
        self.notices: list[str] = []

    def newest_params(self, mark: Any) -> dict[str, Any]:
        params = {**self.params, "max_results": PAGE, "tweet.fields": TWEET_FIELDS,
                  "expansions": EXPANSIONS, "user.fields": USER_FIELDS}  # fmt: skip
        if self.bounded and mark:
            params["since_id"] = mark
        elif self.bounded and self.start:
            params["start_time"] = self.start
        return params

    def older_params(self, cursor: Any, mark: Any) -> dict[str, Any]:
        return {**self.newest_params(mark), self.token: cursor}

    def fetch(self, params: dict[str, Any]) -> FeedPage:
        response = self.x.get(self.path, params)
        if response.status == 400:
            self._recover(response.data, params)
            return self.fetch(self.newest_params(None))
        data = response.data if isinstance(response.data, dict) else None
        if data is None or not isinstance(data.get("meta"), dict):
            raise MalformedPayload(f"malformed response from GET {self.path}: expected 'meta'")
        return FeedPage(data.get("data") or [], older=data["meta"].get("next_token"), data=data)

    def _recover(self, body: Any, params: dict[str, Any]) -> None:
        """recent search refuses a since_id or start_time older than 7 days: read the 7 days it
        allows (from the newest post again) and say what may be missing."""
        if "since_id" in params and "since_id" in str(body):
            self.notices.append(
                "x: the last poll is more than 7 days old — recent search only covers 7 days, so posts "
                "between then and a week ago may be missing; poll at least weekly"
            )
        elif "start_time" in params and "start_time" in str(body):
            self.notices.append("x: recent search only reaches back 7 days; older posts than that were not read")
        else:
            raise ApiError(f"x: GET {self.path} returned HTTP 400: {_problem(body)}", status=400)
        self.bounded = False


def _entry(old: dict[str, Any]) -> dict[str, Any]:
    """A poll state of earlier versions ({"since_id"}, mid-poll {"since_id", "newest", "token"})."""
    if "since_id" not in old and "token" not in old:
        return old
    entry = {"mark": old["since_id"]} if old.get("since_id") else {}
    return {**entry, "head": old.get("newest"), "older": old["token"]} if old.get("token") else entry


class _XStream(FanOutStream):
    """Timelines of one kind; keeps the brand accounts' ids in its state (`users`) so a run needs
    no lookup, and reports what the run read (and what it cost)."""

    connector: XConnector
    timelines: list[Timeline]

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        x = self.connector
        self.before, self.read_count = (x.usage.posts, x.usage.users), 0
        if state and "users" in state:
            self.brand = x.brand(state["users"])
        yield from super().read(state)

    def listings(self) -> list[Listing]:
        return list(self.timelines)

    def stop(self) -> bool:
        cap = self.connector.config.max_post_reads_per_run
        return cap is not None and self.connector.usage.posts >= cap

    def map_page(self, items: list[dict[str, Any]], page: FeedPage) -> list[Record]:  # type: ignore[override]
        self.read_count += len(page.items)
        includes = page.data.get("includes") or {}
        users = {str(u.get("id")): u for u in includes.get("users") or []}
        quoted = {str(t.get("id")): str(t.get("author_id")) for t in includes.get("tweets") or []}
        fallback = page.listing.fallback  # type: ignore[union-attr]
        return [
            mapping.mention(tweet, users, quoted, self.brand, fallback=fallback)
            for tweet in items
            if not mapping.is_retweet(tweet)  # billed all the same, but a retweet is not a mention
        ]

    def notices(self) -> list[str]:
        x, out = self.connector, [n for t in self.timelines for n in t.notices]
        if self.fan.stopped:
            out.append(f"x: stopped after {x.usage.posts} post reads (max_post_reads_per_run); the rest follows next run")
        posts, users = x.usage.posts - self.before[0], x.usage.users - self.before[1]
        cost = posts * x.config.usd_per_post_read + users * x.config.usd_per_user_read
        return [*out, (
            f"x: {self.name} read {posts} posts and {users} users this run "
            f"(≈ ${cost:.2f} at ${x.config.usd_per_post_read}/post, ${x.config.usd_per_user_read}/user; "
            "X bills every read)"
        )]  # fmt: skip


class MentionsStream(_XStream):
    """GET /2/users/{id}/mentions, its entry keyed by the brand account's id: a changed `account`
    starts a timeline of its own instead of reading past the old one's since_id."""

    name = "mentions"
    group = "feeds"

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        x, state = self.connector, dict(state or {})
        users = x.account_ids(state.get("users"))
        own = users[x.config.account.lower()]
        if "since_id" in state or "token" in state:
            state = {self.group: {own: _entry(state)}}
        self.first_poll = "mark" not in (state.get(self.group) or {}).get(own, {})
        self.timelines = [
            Timeline(x, str(own), f"/2/users/{own}/mentions", {}, "pagination_token", ("mention", "@" + x.config.account))
        ]
        yield from super().read({**state, "users": users})

    def notices(self) -> list[str]:
        out = super().notices()
        if self.first_poll and self.read_count >= 800:
            out.insert(-1, "x: the mentions timeline only reaches the 800 most recent mentions; older ones were not read")
        return out


class SearchStream(_XStream):
    """GET /2/tweets/search/recent, one listing per query (keywords and hashtags in chunks)."""

    name = "search"
    group = "queries"

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        x, state = self.connector, dict(state or {})
        queries = search_queries(x.config.keywords, x.config.hashtags)
        if queries:  # the brand's ids classify replies and quotes
            state["users"] = x.account_ids(state.get("users"))
        state[self.group] = {q: _entry(e) for q, e in (state.get(self.group) or {}).items()}
        self.timelines = [
            Timeline(x, q, "/2/tweets/search/recent", {"query": q}, "next_token", ("keyword", next(iter(x.config.keywords), q)))
            for q in queries
        ]
        yield from super().read(state)


class XConnector(RestConnector):
    name = "x"
    title = "X (Twitter)"
    kind = "social"
    config_model = XConfig
    description = "Mentions of the brand account and a 7-day keyword search on X (paid API; reads are counted)."
    default_base_url = "https://api.x.com"
    client_options = {"default_retry_after": 1.0}
    stream_classes = [MentionsStream, SearchStream]

    config: XConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        super().__init__(config, runtime)
        self.usage = Usage()
        self._ids: dict[str, str | None] | None = None

    def authenticator(self) -> BearerToken:
        token = BearerToken(self.config.bearer_token)
        token.hint = "check bearer_token (KPISYNC_X_BEARER_TOKEN): the app's Bearer token from the X Developer Console"
        return token

    def rate_policy(self) -> PerEndpoint:
        return PerEndpoint()

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

    def check(self) -> None:
        """Prove the token and paid access without a billed read: X bills each post and user a
        response *returns* (x-api/getting-started/pricing), and no post is newer than a since_id
        of this very instant. Looking the account up here would cost a user read every run."""
        now = (int(time.time() * 1000) - TWEPOCH_MS) << 22
        self.get("/2/tweets/search/recent", {"query": "@" + self.config.account, "max_results": 10, "since_id": str(now)})

    def account_ids(self, saved: Any) -> dict[str, str | None]:
        """Lower-case brand usernames → user ids: a stream state's, when it names exactly the
        configured accounts; else looked up (GET /2/users/by, one billed user read each), so a
        changed `account` or `other_accounts` is looked up again."""
        names = [self.config.account, *self.config.other_accounts]
        wanted = sorted({n.lower() for n in names})
        if self._ids is None and isinstance(saved, dict) and sorted(saved) == wanted:
            self._ids = saved
        if self._ids is None:
            response = self.get("/2/users/by", {"usernames": ",".join(names), "user.fields": "username"})
            users = response.data.get("data") if response.status == 200 and isinstance(response.data, dict) else None
            found = {str(u.get("username", "")).lower(): str(u["id"]) for u in users or []}
            if self.config.account.lower() not in found:
                raise ConfigError(f"x: account '{self.config.account}' was not found on X (setting 'account')")
            self._ids = {n: found.get(n) for n in wanted}
        return self._ids

    def brand(self, ids: dict[str, str | None]) -> mapping.Brand:
        return mapping.Brand(
            own_ids=frozenset(i for i in ids.values() if i),
            own_usernames=frozenset(ids),
            account=self.config.account,
            keywords=tuple(self.config.keywords),
            hashtags=tuple(t.lower() for t in self.config.hashtags),
        )

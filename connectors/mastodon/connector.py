"""Mastodon: mentions of the brand account and brand hashtags on one instance.

Two streams, both on Mastodon's id-ordered lists (newest first, `max_id` pages back, `min_id`
pages forward; docs.joinmastodon.org methods/notifications and methods/timelines):

* `mentions` — GET /api/v1/notifications?types[]=mention (user token, read:notifications),
  80 per page. Replies to the brand are mentions too (replying addresses the account).
* `hashtags` — GET /api/v1/timelines/tag/{tag} for each configured hashtag, 40 per page.

Both are fan-outs (core/sdk/fanout.py): the first run pages back (max_id) from the newest item to
`start_date`; later runs page forward (min_id) from the newest id seen, so a run with nothing new
costs one request per feed. Requests per sync ≈ ⌈new mentions/80⌉ + Σ⌈new tag posts/40⌉ (+1 per
feed on the first run). README.md lists limits.
"""

from __future__ import annotations

from collections.abc import Iterator
from functools import cached_property
from types import SimpleNamespace
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit

import requests
from pydantic import SecretStr, field_validator, model_validator
from requests.structures import CaseInsensitiveDict

from kpisync.core.connector import Batch, ConnectorConfig
from kpisync.core.httpclient import HttpClient, Runtime
from kpisync.core.models import Record
from kpisync.core.sdk import (
    BearerToken, FanOutStream, FeedPage, HeaderBudget, Listing, RestConnector, link_url, records_at,
)  # fmt: skip
from kpisync.core.timeutil import to_utc

from . import mapping

NOTIFICATIONS_PAGE = 80  # max since Mastodon 4.1 (methods/notifications)
TIMELINE_PAGE = 40  # max for timelines (methods/timelines)
PRIVATE = frozenset({"private", "direct"})


class MastodonConfig(ConnectorConfig):
    """Settings: KPISYNC_MASTODON_<FIELD> or [sources.mastodon] in kpisync.toml."""

    #: The brand account's instance, e.g. https://mastodon.social (or set base_url).
    instance_url: str | None = None
    #: A user token of the brand account with the read:notifications scope.
    access_token: SecretStr
    #: The brand account the token belongs to, e.g. "nimbus" or "nimbus@mastodon.social".
    account: str
    #: More accounts of the brand: their posts are marked is_own_account.
    other_accounts: list[str] = []
    #: Brand hashtags to follow (without "#").
    hashtags: list[str] = []
    #: Keep followers-only and direct mentions (private conversations) too.
    include_private: bool = False

    @field_validator("hashtags")
    @classmethod
    def _bare_tags(cls, tags: list[str]) -> list[str]:
        return [t.strip().lstrip("#").lower() for t in tags if t.strip().lstrip("#")]

    @model_validator(mode="after")
    def _need_instance(self) -> MastodonConfig:
        if not self.instance_url and not self.base_url:
            raise ValueError("set 'instance_url' (e.g. https://mastodon.social)")
        return self


class IsoResetBudget(HeaderBudget):
    """Mastodon's budget headers (api/rate-limits: 300 requests / 5 min) with X-RateLimit-Reset as
    an ISO timestamp, which HeaderBudget reads once it is turned into epoch seconds. Its 429 has
    no Retry-After, so this wait is the only one."""

    def __init__(self) -> None:
        super().__init__(
            ("X-RateLimit-Remaining",), ("X-RateLimit-Reset",), floor=0, default_reset=300, reset_is_epoch=True
        )

    def observe(self, url: str, response: requests.Response, runtime: Runtime) -> None:
        headers = CaseInsensitiveDict(response.headers)
        try:
            reset = to_utc(headers.get("X-RateLimit-Reset"))
        except ValueError:
            reset = None
        if reset is None:
            headers.pop("X-RateLimit-Reset", None)  # HeaderBudget then waits a whole window
        else:
            headers["X-RateLimit-Reset"] = str(reset.timestamp())
        super().observe(url, SimpleNamespace(headers=headers), runtime)  # type: ignore[arg-type]


class Feed(Listing):
    """One id-ordered Mastodon list: newest first, `max_id` pages back, `min_id` forward. Only
    the ids are taken from the Link header (rel="next" carries max_id): requests always go to our
    own base URL, so the token is never sent to another host (and a proxy in base_url works)."""

    forward = True

    def __init__(self, http: HttpClient, key: str, path: str, params: list[tuple[str, Any]], limit: int) -> None:
        super().__init__(key)
        self.http, self.path, self.params, self.limit = http, path, [*params, ("limit", limit)], limit
        #: A tag timeline answers 404 for a hashtag nobody has used yet (methods/timelines).
        self.tolerate = (404,) if "/tag/" in path else ()

    def newest_params(self, mark: Any) -> list[tuple[str, Any]]:
        return self.params

    def older_params(self, cursor: Any, mark: Any) -> list[tuple[str, Any]]:
        return [*self.params, ("max_id", cursor)]

    def newer_params(self, mark: Any) -> list[tuple[str, Any]]:
        return [*self.params, ("min_id", mark)]

    def fetch(self, params: list[tuple[str, Any]]) -> FeedPage:
        response = self.http.get(self.path, params, tolerate=self.tolerate)
        if response.status == 404:
            return FeedPage([], missing=True)
        items = records_at(response.data, "", f"GET {self.path}")
        older = (parse_qs(urlsplit(link_url(response, "next") or "").query).get("max_id") or [None])[0]
        # min_id returns the `limit` items just above the cursor: a short page is the top.
        return FeedPage(items, older=older, newer=len(items) >= self.limit)


def _upgrade(entry: dict[str, Any]) -> dict[str, Any]:
    """A feed state written before the fan-out ({"min_id"} / {"head", "max_id"}) in its terms."""
    if "min_id" in entry:
        return {"mark": entry["min_id"]}
    if "max_id" in entry:
        return {"head": entry.get("head"), "older": entry["max_id"]}
    return entry


class MentionsStream(FanOutStream):
    """Statuses that mention the brand account (notifications of type mention)."""

    name = "mentions"
    group = "feeds"
    connector: MastodonConnector

    def listings(self) -> list[Listing]:
        return [Feed(self.http, "mentions", "/api/v1/notifications", [("types[]", "mention")], NOTIFICATIONS_PAGE)]

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        self.skipped = 0
        if state and self.group not in state:
            state = {self.group: {"mentions": _upgrade(state)}}
        return super().read(state)

    def map(self, notification: dict[str, Any]) -> Record | None:
        status = notification.get("status")
        if not isinstance(status, dict) or notification.get("type") != "mention":
            return None
        if status.get("visibility") in PRIVATE and not self.connector.config.include_private:
            self.skipped += 1
            return None
        brand = self.connector.brand
        return mapping.mention(status, brand, fallback=("mention", "@" + brand.own_accounts[0]))

    def notices(self) -> list[str]:
        if not self.skipped:
            return []
        return [f"mastodon: skipped {self.skipped} followers-only or direct mention(s); "
                "set include_private = true to keep them"]  # fmt: skip


class HashtagsStream(FanOutStream):
    """Public statuses carrying one of the brand hashtags, one feed per tag."""

    name = "hashtags"
    group = "tags"
    connector: MastodonConnector

    def listings(self) -> list[Listing]:
        tags = self.connector.config.hashtags
        return [Feed(self.http, tag, f"/api/v1/timelines/tag/{quote(tag)}", [], TIMELINE_PAGE) for tag in tags]

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        tags = (state or {}).get(self.group) or {}
        return super().read({self.group: {tag: _upgrade(entry) for tag, entry in tags.items()}})

    def map_page(self, items: list[dict[str, Any]], page: FeedPage) -> list[Record]:  # type: ignore[override]
        fallback = ("hashtag", "#" + page.listing.key)  # type: ignore[union-attr]
        brand = self.connector.brand
        # Tag timelines carry no boosts; be safe.
        return [mapping.mention(status, brand, fallback=fallback) for status in items if status.get("reblog") is None]

    def missing_notice(self, key: str) -> str:
        return f"mastodon: #{key} does not exist on this instance yet (no posts)"


class MastodonConnector(RestConnector):
    name = "mastodon"
    title = "Mastodon"
    kind = "social"
    config_model = MastodonConfig
    description = "Mentions of the brand account and brand hashtags on its Mastodon instance (free)."
    client_options = {"default_retry_after": 1.0}
    stream_classes = [MentionsStream, HashtagsStream]

    config: MastodonConfig

    @cached_property
    def brand(self) -> mapping.Brand:
        host = urlsplit(self.config.instance_url or self.base_url).hostname or ""
        own = [self.config.account, *self.config.other_accounts]
        return mapping.Brand(
            instance_host=host,
            own_accounts=tuple(mapping.normalise_acct(a, host) for a in own),
            hashtags=tuple(self.config.hashtags),
        )

    def api_base_url(self) -> str:
        return self.config.base_url or self.config.instance_url or ""

    def authenticator(self) -> BearerToken:
        token = BearerToken(self.config.access_token)
        token.hint = ("check access_token (KPISYNC_MASTODON_ACCESS_TOKEN): a user token of the brand account "
                      "with the read:notifications scope")  # fmt: skip
        return token

    def rate_policy(self) -> IsoResetBudget:
        return IsoResetBudget()

    def check(self) -> None:
        response = self.http.get("/api/v1/notifications", [("types[]", "mention"), ("limit", 1)])
        records_at(response.data, "", "GET /api/v1/notifications")

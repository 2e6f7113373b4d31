"""Bluesky postView / notification → SocialMention. Pure functions, no I/O.

Shapes follow the atproto lexicons (bluesky-social/atproto, lexicons/app/bsky/...):
feed/defs#postView (uri, cid, author, record, replyCount, repostCount, likeCount, quoteCount,
indexedAt), feed/post (text, createdAt, langs, reply.parent.uri, embed, facets) and
richtext/facet (#mention with did, #tag with tag); notification/listNotifications#notification.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kpisync.core.models import SocialMention


@dataclass(frozen=True)
class Brand:
    own_did: str
    own_handles: frozenset[str]  # lower case
    keywords: tuple[str, ...]
    hashtags: tuple[str, ...]  # lower case, no "#"

    @property
    def own_term(self) -> str:
        return "@" + min(self.own_handles) if self.own_handles else "@" + self.own_did

    def is_own(self, author: dict[str, Any]) -> bool:
        return author.get("did") == self.own_did or str(author.get("handle", "")).lower() in self.own_handles


def did_of(uri: str | None) -> str | None:
    """The repository (author DID) of an at:// URI."""
    if not uri or not uri.startswith("at://"):
        return None
    return uri[5:].split("/", 1)[0]


def contains_term(text: str, term: str) -> bool:
    """Case-insensitive whole-word phrase match ("nimbus" is in "#Nimbus!" but not "cumulonimbus")."""
    return re.search(rf"(?<![\w]){re.escape(term.casefold())}(?![\w])", text.casefold()) is not None


def classify(record: dict[str, Any], brand: Brand) -> tuple[str, str] | None:
    """(kind, matched_term) from the post record alone, so a post found by a notification and by
    a search is the same row: reply to the brand > quote of it > @mention > hashtag > keyword."""
    reply = record.get("reply") or {}
    if did_of((reply.get("parent") or {}).get("uri")) == brand.own_did:
        return "reply", brand.own_term
    if did_of(_quoted_uri(record.get("embed"))) == brand.own_did:
        return "quote", brand.own_term
    tags: list[str] = []
    for facet in record.get("facets") or []:
        for feature in facet.get("features") or []:
            kind = feature.get("$type")
            if kind == "app.bsky.richtext.facet#mention" and feature.get("did") == brand.own_did:
                return "mention", brand.own_term
            if kind == "app.bsky.richtext.facet#tag":
                tags.append(str(feature.get("tag", "")).lower())
    tags.extend(t.lower() for t in record.get("tags") or [])
    for tag in brand.hashtags:
        if tag in tags:
            return "hashtag", "#" + tag
    text = str(record.get("text") or "")
    for keyword in brand.keywords:
        if contains_term(text, keyword):
            return "keyword", keyword
    return None


def _quoted_uri(embed: Any) -> str | None:
    """app.bsky.embed.record{record.uri} or recordWithMedia{record.record.uri}."""
    if not isinstance(embed, dict):
        return None
    record = embed.get("record") or {}
    if "record" in record and isinstance(record["record"], dict):  # recordWithMedia
        record = record["record"]
    return record.get("uri")


def post_url(uri: str, handle: str | None) -> str:
    rkey = uri.rsplit("/", 1)[-1]
    return f"https://bsky.app/profile/{handle or did_of(uri)}/post/{rkey}"


def mention(
    uri: str,
    author: dict[str, Any],
    record: dict[str, Any],
    brand: Brand,
    *,
    fallback: tuple[str, str],
    counts: dict[str, Any] | None = None,
    followers: int | None = None,
) -> SocialMention:
    """`counts` is the postView (reply/repost/like counts) when we have one; `followers` comes
    from app.bsky.actor.getProfiles because postView authors carry no follower count."""
    kind, term = classify(record, brand) or fallback
    counts = counts or {}
    langs = record.get("langs") or []
    return SocialMention(
        external_id=uri,
        platform="bluesky",
        kind=kind,  # type: ignore[arg-type]
        matched_term=term,
        author_id=author.get("did"),
        author_handle=author.get("handle"),
        author_followers=followers,
        text=record.get("text"),
        url=post_url(uri, author.get("handle")),
        lang=langs[0] if langs else None,
        posted_at=record.get("createdAt") or counts.get("indexedAt"),
        is_own_account=brand.is_own(author),
        reposts=counts.get("repostCount"),
        likes=counts.get("likeCount"),
        replies=counts.get("replyCount"),
        raw={"cid": counts.get("cid"), "indexedAt": counts.get("indexedAt"), "quoteCount": counts.get("quoteCount")},
    )

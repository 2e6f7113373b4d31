"""X API v2 Tweet (+ includes) → SocialMention. Pure functions, no I/O.

Shapes follow docs.x.com (x-api/fundamentals/data-dictionary and fields-and-expansions): a Tweet
has id, text, created_at, author_id, lang, public_metrics {retweet_count, reply_count,
like_count, quote_count}, referenced_tweets [{type: retweeted|quoted|replied_to, id}],
in_reply_to_user_id and entities {mentions [{username, id}], hashtags [{tag}]}; expanded users
and tweets arrive in `includes`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kpisync.core.models import SocialMention


@dataclass(frozen=True)
class Brand:
    own_ids: frozenset[str]
    own_usernames: frozenset[str]  # lower case, no "@"
    account: str  # the brand username as configured, for matched_term
    keywords: tuple[str, ...]
    hashtags: tuple[str, ...]  # lower case, no "#"


def is_retweet(tweet: dict[str, Any]) -> bool:
    return any(r.get("type") == "retweeted" for r in tweet.get("referenced_tweets") or [])


def contains_term(text: str, term: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(term.casefold())}(?![\w])", text.casefold()) is not None


def classify(tweet: dict[str, Any], quoted_authors: dict[str, str], brand: Brand) -> tuple[str, str] | None:
    """(kind, matched_term) from the tweet alone: reply to the brand > quote of a brand post >
    @mention > hashtag > keyword. `quoted_authors` maps expanded tweet ids to their author ids."""
    own = "@" + brand.account
    if str(tweet.get("in_reply_to_user_id") or "") in brand.own_ids:
        return "reply", own
    for ref in tweet.get("referenced_tweets") or []:
        if ref.get("type") == "quoted" and quoted_authors.get(str(ref.get("id"))) in brand.own_ids:
            return "quote", own
    entities = tweet.get("entities") or {}
    for m in entities.get("mentions") or []:
        if str(m.get("username", "")).lower() in brand.own_usernames or str(m.get("id")) in brand.own_ids:
            return "mention", own
    tags = {str(h.get("tag", "")).lower() for h in entities.get("hashtags") or []}
    for tag in brand.hashtags:
        if tag in tags:
            return "hashtag", "#" + tag
    text = str(tweet.get("text") or "")
    for keyword in brand.keywords:
        if contains_term(text, keyword):
            return "keyword", keyword
    return None


def mention(
    tweet: dict[str, Any],
    users: dict[str, dict[str, Any]],
    quoted_authors: dict[str, str],
    brand: Brand,
    *,
    fallback: tuple[str, str],
) -> SocialMention:
    author = users.get(str(tweet.get("author_id"))) or {}
    metrics = tweet.get("public_metrics") or {}
    kind, term = classify(tweet, quoted_authors, brand) or fallback
    username = author.get("username")
    return SocialMention(
        external_id=tweet["id"],
        platform="x",
        kind=kind,  # type: ignore[arg-type]
        matched_term=term,
        author_id=tweet.get("author_id"),
        author_handle=username,
        author_followers=(author.get("public_metrics") or {}).get("followers_count"),
        text=tweet.get("text"),
        url=f"https://x.com/{username or 'i'}/status/{tweet['id']}",
        lang=tweet.get("lang"),
        posted_at=tweet["created_at"],
        is_own_account=str(tweet.get("author_id")) in brand.own_ids
        or (username or "").lower() in brand.own_usernames,
        reposts=metrics.get("retweet_count"),
        likes=metrics.get("like_count"),
        replies=metrics.get("reply_count"),
        raw={
            "conversation_id": tweet.get("conversation_id"),
            "quote_count": metrics.get("quote_count"),
            "referenced_tweets": tweet.get("referenced_tweets"),
        },
    )

"""Reddit listing child (kind t3, a submission) → SocialMention. Pure functions, no I/O.

Fields as Reddit's JSON returns them (reddit-archive/reddit wiki "JSON"): name (the fullname
t3_<id>), title, selftext, author, author_fullname, created_utc, permalink, score,
num_comments, num_crossposts, subreddit. Reddit reports no language and no follower counts.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from kpisync.core.models import SocialMention


@dataclass(frozen=True)
class Brand:
    own_accounts: tuple[str, ...]  # usernames as configured, no "u/"
    keywords: tuple[str, ...]

    def is_own(self, author: str | None) -> bool:
        return author is not None and author.lower() in (a.lower() for a in self.own_accounts)


def contains_term(text: str, term: str) -> bool:
    return re.search(rf"(?<![\w]){re.escape(term.casefold())}(?![\w])", text.casefold()) is not None


def post_text(data: dict[str, Any]) -> str:
    title, body = str(data.get("title") or ""), str(data.get("selftext") or "")
    return f"{title}\n\n{body}" if body and body != title else title


def classify(data: dict[str, Any], brand: Brand) -> tuple[str, str] | None:
    """"u/<brand>" in the post is a mention; otherwise the first configured keyword it contains."""
    text = post_text(data)
    for account in brand.own_accounts:
        if contains_term(text, f"u/{account}"):
            return "mention", f"u/{account}"
    for keyword in brand.keywords:
        if contains_term(text, keyword):
            return "keyword", keyword
    return None


def mention(data: dict[str, Any], brand: Brand, *, fallback: tuple[str, str]) -> SocialMention:
    kind, term = classify(data, brand) or fallback
    permalink = data.get("permalink")
    return SocialMention(
        external_id=data["name"],
        platform="reddit",
        kind=kind,  # type: ignore[arg-type]
        matched_term=term,
        author_id=data.get("author_fullname"),
        author_handle=data.get("author"),
        author_followers=None,
        text=post_text(data),
        url=f"https://www.reddit.com{permalink}" if permalink else data.get("url"),
        lang=None,
        posted_at=data["created_utc"],
        is_own_account=brand.is_own(data.get("author")),
        reposts=data.get("num_crossposts"),
        likes=data.get("score"),
        replies=data.get("num_comments"),
        raw={"subreddit": data.get("subreddit"), "upvote_ratio": data.get("upvote_ratio"),
             "over_18": data.get("over_18")},  # fmt: skip
    )

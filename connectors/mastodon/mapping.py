"""Mastodon Status JSON → SocialMention. Pure functions, no I/O.

Shapes follow the Mastodon API docs: entities/Status (id, created_at, content as sanitised HTML,
visibility, language, url, in_reply_to_account_id, reblogs/favourites/replies counts, account,
mentions[].acct, tags[].name) and the Account entity (acct, followers_count).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from html.parser import HTMLParser
from typing import Any

from kpisync.core.models import SocialMention


@dataclass(frozen=True)
class Brand:
    """How to recognise the brand in a status: its accounts and its hashtags."""

    instance_host: str
    own_accounts: tuple[str, ...]  # normalised: "nimbus" (local) or "nimbus@other.host"
    hashtags: tuple[str, ...]  # lower case, no "#"

    def is_own(self, acct: str | None) -> bool:
        return acct is not None and normalise_acct(acct, self.instance_host) in self.own_accounts


def normalise_acct(handle: str, instance_host: str) -> str:
    """"@Nimbus@social.example" on social.example → "nimbus"; remote accounts keep their host."""
    name = handle.strip().lstrip("@").lower()
    user, _, host = name.partition("@")
    return user if not host or host == instance_host.lower() else name


def mention(status: dict[str, Any], brand: Brand, *, fallback: tuple[str, str]) -> SocialMention:
    """The canonical record of a status. `fallback` is (kind, term) of the query that found it,
    used only when the status itself shows no brand signal (e.g. a tag the server normalised)."""
    account = status.get("account") or {}
    kind, term = classify(status, brand) or fallback
    return SocialMention(
        external_id=status["id"],
        platform="mastodon",
        kind=kind,  # type: ignore[arg-type]
        matched_term=term,
        author_id=account.get("id"),
        author_handle=full_handle(account.get("acct"), brand.instance_host),
        author_followers=account.get("followers_count"),
        text=html_to_text(status.get("content") or ""),
        url=status.get("url") or status.get("uri"),
        lang=status.get("language"),
        posted_at=status["created_at"],
        is_own_account=brand.is_own(account.get("acct")),
        reposts=status.get("reblogs_count"),
        likes=status.get("favourites_count"),
        replies=status.get("replies_count"),
        raw={
            "uri": status.get("uri"),
            "visibility": status.get("visibility"),
            "in_reply_to_id": status.get("in_reply_to_id"),
            "mentions": [m.get("acct") for m in status.get("mentions") or []],
            "tags": [t.get("name") for t in status.get("tags") or []],
        },
    )


def classify(status: dict[str, Any], brand: Brand) -> tuple[str, str] | None:
    """(kind, matched_term) from the status alone, so every stream that finds the same status
    writes the same row: a reply to the brand, else an @mention of it, else its first hashtag."""
    own_ids = {
        str(m.get("id"))
        for m in status.get("mentions") or []
        if brand.is_own(m.get("acct"))
    }
    if brand.is_own((status.get("account") or {}).get("acct")):
        own_ids.add(str((status.get("account") or {}).get("id")))
    own_term = "@" + brand.own_accounts[0] if brand.own_accounts else None
    reply_to = status.get("in_reply_to_account_id")
    if reply_to is not None and str(reply_to) in own_ids and own_term:
        named = next((m.get("acct") for m in status.get("mentions") or [] if str(m.get("id")) == str(reply_to)), None)
        return "reply", "@" + normalise_acct(named, brand.instance_host) if named else own_term
    for m in status.get("mentions") or []:
        if brand.is_own(m.get("acct")):
            return "mention", "@" + normalise_acct(m["acct"], brand.instance_host)
    tags = {str(t.get("name", "")).lower() for t in status.get("tags") or []}
    for tag in brand.hashtags:
        if tag in tags:
            return "hashtag", "#" + tag
    return None


def full_handle(acct: str | None, instance_host: str) -> str | None:
    """Local accounts get their instance's host, so handles are unambiguous across instances."""
    if not acct:
        return None
    return acct if "@" in acct else f"{acct}@{instance_host}"


class _TextExtractor(HTMLParser):
    """Mastodon content is sanitised HTML with only p, br, span and a (API guidelines). Links are
    kept whole: the "invisible" spans hold the parts of a URL a client hides for display."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []

    def handle_starttag(self, tag: str, attrs: Sequence[tuple[str, str | None]]) -> None:
        if tag == "br":
            self.parts.append("\n")
        elif tag == "p" and self.parts:
            self.parts.append("\n\n")

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_to_text(content: str) -> str:
    """Plain text of a status, paragraphs and line breaks kept."""
    parser = _TextExtractor()
    parser.feed(content)
    parser.close()
    return "".join(parser.parts).strip()

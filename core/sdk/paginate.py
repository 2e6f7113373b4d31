"""Paginators: how to get from one page of a list to the next.

A paginator knows the first request and, from a response, the next one (or None at the end);
`pages()` runs the loop and pulls the records out of each body with `records_path`:

    NextUrl("links.next", has_more="meta.has_more")   # Zendesk cursor lists
    NextUrl("_links.next.href")                       # Help Scout (HAL)
    CursorParam("cursor", "after_cursor", stop="end_of_stream")  # opaque cursors (Zendesk exports: exports.CursorExport)
    LinkHeader()                                      # Freshdesk, Mastodon, Shopify, GitHub
    PageNumber(size_param="per_page", size=100, max_pages=300)   # page=1,2,… with a cap
    PageNumber(total_pages="page.totalPages")         # stops at the announced last page
    Offset(limit=100, total="meta.total")             # offset/limit

`TimeWindows` slices a long time range into windows read one at a time (with an overlap and a
dedupe of the items seen twice), for reports and searches that only filter by a time range.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from requests.utils import parse_header_links

from ..errors import ApiError, MalformedPayload
from ..httpclient import HttpClient, HttpResponse

Params = dict[str, Any]
#: The next request: a path or full URL, and its query (None: the URL already carries it).
Request = tuple[str, Params | None]


def dig(data: Any, path: str, default: Any = None) -> Any:
    """`data["a"]["b"][0]` for path "a.b.0"; `default` when any step is missing."""
    if not path:
        return data
    for part in path.split("."):
        if isinstance(data, Mapping):
            data = data.get(part)
        elif isinstance(data, list) and part.lstrip("-").isdigit() and -len(data) <= int(part) < len(data):
            data = data[int(part)]
        else:
            return default
        if data is None:
            return default
    return data


def records_at(data: Any, path: str, what: str) -> list[dict[str, Any]]:
    """The list at `path` ("" = the body itself), or a MalformedPayload naming it."""
    found = dig(data, path)
    if found is None and path.startswith("_embedded.") and isinstance(data, Mapping):
        return []  # HAL lists (Help Scout) leave `_embedded` out of an empty page
    if not isinstance(found, list):
        raise MalformedPayload(f"malformed response from {what}: expected a list at '{path or 'the body'}'")
    return found


@dataclass
class Page:
    response: HttpResponse
    items: list[dict[str, Any]]


class Paginator:
    """One page only (small lists); subclasses override `next_request`."""

    def first(self, path: str, params: Params) -> Request:
        return path, dict(params)

    def next_request(self, response: HttpResponse, items: list[dict[str, Any]], current: Request) -> Request | None:
        return None

    def pages(
        self,
        http: HttpClient,
        path: str,
        params: Params | None = None,
        records_path: str = "",
        tolerate: tuple[int, ...] = (),
    ) -> Iterator[Page]:
        """Every page of the list; a tolerated error status ends it after yielding it (empty)."""
        request: Request | None = self.first(path, params or {})
        while request is not None:
            response = http.get(request[0], request[1], tolerate=tolerate)
            if response.status >= 400:
                yield Page(response, [])
                return
            items = records_at(response.data, records_path, f"GET {path}")
            yield Page(response, items)
            request = self.next_request(response, items, request)


class SinglePage(Paginator):
    """The whole list in one response."""


class NextUrl(Paginator):
    """The body names the next page's URL (`links.next`); `has_more` guards APIs that always
    send a link (Zendesk's cursor lists send one with `meta.has_more: false` on the last page)."""

    def __init__(self, path: str, has_more: str | None = None) -> None:
        self.path, self.has_more = path, has_more

    def next_request(self, response: HttpResponse, items: list[dict[str, Any]], current: Request) -> Request | None:
        if self.has_more and not dig(response.data, self.has_more):
            return None
        url = dig(response.data, self.path)
        return (str(url), None) if url and items else None


class CursorParam(Paginator):
    """The body holds an opaque cursor that goes back as a query parameter."""

    def __init__(self, param: str, cursor: str, stop: str | None = None) -> None:
        self.param, self.cursor, self.stop = param, cursor, stop

    def next_request(self, response: HttpResponse, items: list[dict[str, Any]], current: Request) -> Request | None:
        value = dig(response.data, self.cursor)
        if not value or (self.stop and dig(response.data, self.stop)):
            return None
        return current[0], {**(current[1] or {}), self.param: value}


class LinkHeader(Paginator):
    """RFC 8288 `Link: <url>; rel="next"` (the URL carries the query)."""

    def __init__(self, rel: str = "next") -> None:
        self.rel = rel

    def next_request(self, response: HttpResponse, items: list[dict[str, Any]], current: Request) -> Request | None:
        url = link_url(response, self.rel)
        return (url, None) if url and items else None


def link_url(response: HttpResponse, rel: str = "next") -> str | None:
    header = response.headers.get("Link") or response.headers.get("link")
    for link in parse_header_links(header) if header else []:
        if link.get("rel") == rel and link.get("url"):
            return str(link["url"])
    return None


class PageCapReached(ApiError):
    """The API stops at a page number (Freshdesk: 300); the caller narrows its filter instead."""


class PageNumber(Paginator):
    """`page=1, 2, …` until a short or empty page, the announced last page (`total_pages` in the
    body, or `total_pages_header` such as WordPress's X-WP-TotalPages; when the announcement is
    missing the short page ends the list), or the vendor's cap (`max_pages`: reaching it is a
    PageCapReached, never a silent stop)."""

    def __init__(
        self,
        param: str = "page",
        *,
        start: int = 1,
        size_param: str | None = None,
        size: int | None = None,
        total_pages: str | None = None,
        total_pages_header: str | None = None,
        max_pages: int | None = None,
    ) -> None:
        self.param, self.start, self.size_param, self.size = param, start, size_param, size
        self.total_pages, self.total_pages_header, self.max_pages = total_pages, total_pages_header, max_pages

    def first(self, path: str, params: Params) -> Request:
        query = {**params, self.param: self.start}
        if self.size_param and self.size:
            query[self.size_param] = self.size
        return path, query

    def next_request(self, response: HttpResponse, items: list[dict[str, Any]], current: Request) -> Request | None:
        query = dict(current[1] or {})
        page = int(query.get(self.param, self.start))
        if not items:
            return None
        # The announced last page (body field or header) decides; when the API leaves it out,
        # a short page ends the list — never stop silently after page one.
        total: int | None = None
        if self.total_pages is not None:
            total = _int_or_none(dig(response.data, self.total_pages))
        elif self.total_pages_header:
            total = _int_or_none(response.headers.get(self.total_pages_header))
        if total is not None:
            if page >= total:
                return None
        elif self.size and len(items) < self.size:
            return None
        if self.max_pages is not None and page + 1 - self.start >= self.max_pages:
            raise PageCapReached(f"{current[0]} lists at most {self.max_pages} pages; narrow the filter", status=400)
        query[self.param] = page + 1
        return current[0], query


def _int_or_none(value: Any) -> int | None:
    try:
        return int(value) if value is not None else None
    except (TypeError, ValueError):
        return None


class Offset(Paginator):
    """`offset=0, limit, 2·limit, …` until a short page or `total` items."""

    def __init__(self, offset_param: str = "offset", limit_param: str = "limit", limit: int = 100,
                 total: str | None = None, max_offset: int | None = None) -> None:  # fmt: skip
        self.offset_param, self.limit_param, self.limit = offset_param, limit_param, limit
        self.total, self.max_offset = total, max_offset

    def first(self, path: str, params: Params) -> Request:
        return path, {**params, self.offset_param: 0, self.limit_param: self.limit}

    def next_request(self, response: HttpResponse, items: list[dict[str, Any]], current: Request) -> Request | None:
        query = dict(current[1] or {})
        offset = int(query.get(self.offset_param, 0)) + len(items)
        total = dig(response.data, self.total) if self.total else None
        if not items or (total is not None and offset >= int(total)) or (total is None and len(items) < self.limit):
            return None
        if self.max_offset is not None and offset > self.max_offset:
            raise PageCapReached(f"{current[0]} lists at most {self.max_offset} items; narrow the filter", status=400)
        query[self.offset_param] = offset
        return current[0], query


@dataclass(frozen=True)
class Window:
    start: datetime
    end: datetime


class TimeWindows:
    """[start, end) cut into windows of `size`, each starting `overlap` before the previous end:
    a record stamped exactly at a boundary (or moved by clock skew) is read twice rather than
    never, and `Dedupe` drops the second copy."""

    def __init__(self, size: timedelta, overlap: timedelta = timedelta(0)) -> None:
        if size <= overlap:
            raise ValueError("a window must be longer than its overlap")
        self.size, self.overlap = size, overlap

    def windows(self, start: datetime, end: datetime) -> Iterator[Window]:
        lo = start
        while lo < end:
            hi = min(end, lo + self.size)
            yield Window(lo, hi)
            if hi >= end:
                return
            lo = hi - self.overlap


class Dedupe:
    """Keys seen in the current overlap zone; `fresh(items)` drops those seen before."""

    def __init__(self, key: str = "id") -> None:
        self.key = key
        self.seen: set[str] = set()

    def fresh(self, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
        out = []
        for item in items:
            key = str(dig(item, self.key))
            if key not in self.seen:
                self.seen.add(key)
                out.append(item)
        return out

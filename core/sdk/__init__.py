"""kpisync connector SDK: the building blocks a connector is declared from.

Everything a typical REST help-desk connector needs, drawn from the Zendesk and Freshdesk
connectors: paginators (`paginate`), incremental cursors (`incremental`), bulk export cursors
(`exports`), GraphQL connections and query costs (`graphql`), authentication (`auth`),
rate-limit policies (`rate`), mapping helpers (`mapping`) and `RestStream` / `RestConnector`
(`stream`) that compose them. docs/writing-a-connector.md
walks through a connector from `kpisync new-connector` to a working pull; `kpisync.testing` is
the conformance suite every connector runs.
"""

from __future__ import annotations

from .auth import (
    ApiKeyHeader,
    ApiKeyQuery,
    Auth,
    BasicAuth,
    BearerToken,
    FileTokenCache,
    KeyringTokenCache,
    NoAuth,
    OAuth2ClientCredentials,
    Token,
    TokenCache,
    TokenLogin,
    saved_tokens,
)
from .exports import CursorExport, TimeExport
from .fanout import FanOut, FanOutStream, FeedPage, Listing
from .graphql import Connection, ConnectionSince, GraphQL, GraphQLError, GraphQLStream, QueryTooCostly
from .incremental import Cursor, SinceId, StartTime, UpdatedSince, render
from .mapping import EnumMap, full_name, ident, utc, without
from .paginate import (
    CursorParam,
    Dedupe,
    LinkHeader,
    NextUrl,
    Offset,
    Page,
    PageCapReached,
    PageNumber,
    Paginator,
    SinglePage,
    TimeWindows,
    dig,
    link_url,
    records_at,
)
from .rate import CostBucket, CreditBudget, HeaderBudget, MinInterval, Policies, RatePolicy, RetryAfterPause
from .snapshot import Change, Gone, Snapshot, SnapshotStream, fingerprint
from .stream import RestConnector, RestStream, api_client

__all__ = [
    "ApiKeyHeader", "ApiKeyQuery", "Auth", "BasicAuth", "BearerToken", "CreditBudget", "Cursor", "CursorExport",
    "CursorParam", "Dedupe", "EnumMap", "FileTokenCache", "HeaderBudget", "LinkHeader", "MinInterval", "NextUrl",
    "NoAuth", "OAuth2ClientCredentials", "Offset", "Page", "PageCapReached", "PageNumber", "Paginator", "Policies",
    "RatePolicy", "RestConnector", "RestStream", "RetryAfterPause", "SinceId", "SinglePage", "StartTime",
    "TimeExport", "TimeWindows", "Token", "TokenCache", "TokenLogin", "UpdatedSince", "api_client", "dig",
    "full_name", "ident", "link_url", "records_at", "render", "utc", "without",
    # full-scan snapshots for APIs without a change filter (snapshot.py)
    "Change", "Gone", "Snapshot", "SnapshotStream", "fingerprint",
    # several newest-first listings per stream, each with its own cursor (fanout.py)
    "FanOut", "FanOutStream", "FeedPage", "Listing",
    # where a session login keeps its tokens: OS keyring or a 0600 file (auth.py)
    "KeyringTokenCache", "saved_tokens",
    # GraphQL: POSTed queries, Relay connections, calculated query costs (graphql.py, rate.CostBucket)
    "Connection", "ConnectionSince", "CostBucket", "GraphQL", "GraphQLError", "GraphQLStream", "QueryTooCostly",
]  # fmt: skip

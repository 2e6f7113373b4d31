"""Help Scout (Mailbox API 2.0), written with the connector SDK only (kpisync.core.sdk).

Requests per sync ≈ 1 token (cached for its two-day life) + ⌈U/50⌉ users + ⌈C/50⌉ changed
customers + ⌈V/25⌉ changed conversations (threads embedded: no per-conversation call) +
⌈R/10⌉ new ratings per report window. README.md beside this file lists endpoints and limits.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from kpisync.core.connector import ConnectorConfig
from kpisync.core.httpclient import Runtime
from kpisync.core.models import Record
from kpisync.core.sdk import (
    HeaderBudget, NextUrl, OAuth2ClientCredentials, PageNumber, Policies, RestConnector, RestStream,
    RetryAfterPause, StartTime, UpdatedSince,
)  # fmt: skip

from . import mapping

HAL_NEXT = NextUrl("_links.next.href")  # [pagination] no `next` link on the last page
ONE_SECOND = timedelta(seconds=1)  # modifiedSince is "after": step back a second, drop repeats
FOUNDED = datetime(2011, 1, 1, tzinfo=UTC)  # Help Scout launched in 2011: nothing is older


class HelpScoutConfig(ConnectorConfig):
    """Settings: KPISYNC_HELPSCOUT_<FIELD> or [sources.helpscout] in kpisync.toml."""

    #: Your Profile → My Apps → Create My App: the App ID and App Secret (client credentials flow).
    client_id: str
    client_secret: SecretStr
    store_bodies: bool = False
    #: The ratings report is read in windows of this many days (first sync: from start_date).
    ratings_window_days: int = 180
    #: Ratings submitted this long before the newest one seen are read again (late arrivals).
    ratings_lookback_minutes: int = 60


class Users(RestStream):
    name = "users"
    path = "/v2/users"
    records_path = "_embedded.users"
    paginator = HAL_NEXT

    def map(self, item: dict[str, Any]) -> Record:
        self.connector.agents.add(str(item["id"]))
        return mapping.user(item)


class Customers(RestStream):
    name = "customers"
    path = "/v2/customers"
    records_path = "_embedded.customers"
    params = {"sortField": "modifiedAt", "sortOrder": "asc"}
    paginator = HAL_NEXT
    cursor = UpdatedSince("modifiedSince", "updatedAt", overlap=ONE_SECOND)

    def start_date(self) -> datetime | None:
        return None  # every customer, however old: tickets in the window refer to them

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.customer(item)


class Conversations(RestStream):
    name = "conversations"
    path = "/v2/conversations"
    records_path = "_embedded.conversations"
    params = {"status": "all", "embed": "threads", "sortField": "modifiedAt", "sortOrder": "asc"}
    paginator = HAL_NEXT
    cursor = UpdatedSince("modifiedSince", "updatedAt", overlap=ONE_SECOND)

    def map(self, item: dict[str, Any]) -> list[Record]:
        return mapping.conversation(item, self.connector.agent_ids(), self.connector.config.store_bodies)

    def notices(self) -> list[str]:
        return mapping.CATEGORY.notices() + mapping.CHANNEL.notices()


class Ratings(RestStream):
    """Happiness ratings from the report (Plus and Pro plans; others get a notice)."""

    name = "satisfaction_ratings"
    path = "/v2/reports/happiness/ratings"
    records_path = "results"
    params = {"rating": "all", "sortField": "modifiedAt", "sortOrder": "ASC"}
    paginator = PageNumber(total_pages="pages")
    optional = True

    def __init__(self, connector: HelpScoutConnector) -> None:
        super().__init__(connector)
        config = connector.config
        self.cursor = StartTime(
            "start", "ratingCreatedAt", end_param="end", key="threadid", earliest=FOUNDED,
            window=timedelta(days=config.ratings_window_days), overlap=ONE_SECOND,
            lookback=timedelta(minutes=config.ratings_lookback_minutes),
        )  # fmt: skip

    def map(self, item: dict[str, Any]) -> Record:
        return mapping.rating(item)


class HelpScoutConnector(RestConnector):
    name = "helpscout"
    title = "Help Scout"
    kind = "helpdesk"
    config_model = HelpScoutConfig
    description = "Conversations with every thread, status changes, customers, users and happiness ratings (Mailbox API 2.0)."
    default_base_url = "https://api.helpscout.net"
    check_path = "/v2/users/me"
    stream_classes = [Users, Customers, Conversations, Ratings]
    # A 429 names its wait in X-RateLimit-Retry-After (RetryAfterPause), not in Retry-After.
    client_options = {"default_retry_after": 1.0}

    config: HelpScoutConfig

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        self.agents: set[str] = set()
        super().__init__(config, runtime)

    def authenticator(self) -> OAuth2ClientCredentials:
        return OAuth2ClientCredentials(
            f"{self.api_base_url().rstrip('/')}/v2/oauth2/token", self.config.client_id, self.config.client_secret,
            body="json", hint="check client_id and client_secret (KPISYNC_HELPSCOUT_CLIENT_ID, KPISYNC_HELPSCOUT_CLIENT_SECRET)",
        )  # fmt: skip

    def rate_policy(self) -> Policies:
        return Policies(
            HeaderBudget(remaining=("x-ratelimit-remaining-minute",), floor=1, default_reset=60.0),
            RetryAfterPause("X-RateLimit-Retry-After"),
        )

    def agent_ids(self) -> set[str]:
        """Invited users (agents); read here when the users stream did not run first."""
        if not self.agents:
            for _ in Users(self).read(None):  # Users.map fills self.agents
                pass
        return self.agents

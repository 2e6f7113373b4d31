"""Rate-limit policies: slow down before the vendor says stop.

`HttpClient` already retries a 429 after its `Retry-After`; a policy paces the requests so the
429 rarely comes. The ones in core/httpclient.py are re-exported here, plus:

    HeaderBudget(remaining=("x-ratelimit-remaining",), reset=("x-ratelimit-reset",))
        # stop at the floor until the reset the headers announce (seconds or epoch)
    MinInterval(10, applies=lambda url: "/incremental/" in url)   # a fixed per-minute cap
    RetryAfterPause("X-RateLimit-Retry-After")   # a vendor-named Retry-After: pause *every* request
    CreditBudget(remaining="X-RateLimit-Remaining", cost="X-RateLimit-Used-CurrentRequest")
        # cost buckets: calls cost different credits; wait when the next would not fit
    CostBucket()                                  # GraphQL query cost: a points bucket restored at a
        # steady rate, reported in each body (Shopify's extensions.cost.throttleStatus; graphql.py feeds it)
    Policies(a, b)                                # several at once: the longest wait wins
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from email.utils import parsedate_to_datetime

import requests

from ..httpclient import HeaderBudget, MinInterval, Policies, RatePolicy, Runtime
from .paginate import dig
from ..timeutil import utcnow

__all__ = ["CostBucket", "CreditBudget", "HeaderBudget", "MinInterval", "Policies", "RatePolicy", "RetryAfterPause", "seconds_from"]


def seconds_from(value: str | None) -> float | None:
    """Seconds in a Retry-After-style header: a number, or an HTTP date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - utcnow()).total_seconds())
    except (TypeError, ValueError, IndexError):
        return None


class RetryAfterPause(RatePolicy):
    """Honour a wait the vendor announces in its own header (Help Scout:
    `X-RateLimit-Retry-After`) for *every* following request, not just the retried one: the
    limit is per account, so the next stream would only meet the same 429."""

    def __init__(self, header: str = "Retry-After", statuses: tuple[int, ...] = (429, 503)) -> None:
        self.header, self.statuses = header, statuses
        self._resume_at = -math.inf

    def wait_before(self, url: str, runtime: Runtime) -> tuple[float, str]:
        return max(0.0, self._resume_at - runtime.now()), f"rate limited ({self.header})"

    def observe(self, url: str, response: requests.Response, runtime: Runtime) -> None:
        if response.status_code in self.statuses:
            wait = seconds_from(response.headers.get(self.header))
            if wait is not None:
                self._resume_at = max(self._resume_at, runtime.now() + wait)


class CreditBudget(RatePolicy):
    """Cost buckets: each call costs credits from a per-window budget that the headers report.

    Every response says how many credits are left (`remaining`) and what this call cost
    (`cost`). When the next call to an endpoint would not fit, wait for the window to roll
    over; its start is learnt from the first response after a reset (until then the first 429's
    Retry-After, which HttpClient honours, teaches it). Some plans also cap single endpoints
    without a header for it: a 429 while credits remain reveals such a cap, and from then on
    that endpoint is paced to the number of calls that fitted in the last window.
    (Freshdesk: X-RateLimit-Remaining / X-RateLimit-Used-CurrentRequest, 60 s windows.)
    """

    def __init__(
        self,
        remaining: str,
        cost: str | None = None,
        window: float = 60.0,
        endpoint: Callable[[str], str] = lambda url: "all",
        capped_name: str = "list",
    ) -> None:
        self.remaining_header, self.cost_header, self.window, self.endpoint = remaining, cost, window, endpoint
        self.capped_name = capped_name
        self.remaining: float | None = None
        self.window_start: float | None = None
        self.cost: dict[str, float] = {}
        self.endpoint_limit: dict[str, int] = {}
        self.sent: dict[str, deque[float]] = {}
        self._sending_at: float | None = None

    def wait_before(self, url: str, runtime: Runtime) -> tuple[float, str]:
        now = runtime.now()
        endpoint = self.endpoint(url)
        waits = [(0.0, "")]
        if self.remaining is not None and self.remaining < self.cost.get(endpoint, 1.0) and self.window_start is not None:
            reset = self.window_start + self.window
            if reset > now:
                waits.append((reset - now, "per-window credits used up"))
        limit = self.endpoint_limit.get(endpoint)
        sent = self.sent.setdefault(endpoint, deque())
        while sent and sent[0] <= now - self.window:
            sent.popleft()
        if limit is not None and len(sent) >= limit:
            waits.append((sent[-limit] + self.window - now, f"pacing {limit} {self.capped_name} requests/window"))
        wait = max(waits, key=lambda w: w[0])
        self._sending_at = now + wait[0]
        sent.append(self._sending_at)
        return wait

    def observe(self, url: str, response: requests.Response, runtime: Runtime) -> None:
        headers = response.headers
        remaining = _number(headers.get(self.remaining_header))
        used = _number(headers.get(self.cost_header)) if self.cost_header else None
        endpoint = self.endpoint(url)
        if used is not None and response.status_code != 429:
            self.cost[endpoint] = used
        if response.status_code == 429 and remaining is not None and remaining >= self.cost.get(endpoint, 1.0):
            sent = self.sent.get(endpoint) or deque()
            self.endpoint_limit[endpoint] = max(1, len(sent) - 1)
        if remaining is not None:
            if self.remaining is not None and remaining > self.remaining:
                # Credits came back: a window began before this call was sent. Dating it by the
                # send (not by this answer) keeps the estimate from drifting later every window.
                self.window_start = self._sending_at if self._sending_at is not None else runtime.now()
            self.remaining = remaining


class CostBucket(RatePolicy):
    """A points bucket reported in the response *body*: GraphQL calculated query costs.

    Each query costs points from a bucket of `maximum` that refills at `restore` points a
    second; every answer says how many are left. Before the next query, wait until the largest
    cost requested so far fits again (Shopify: `extensions.cost {requestedQueryCost,
    throttleStatus {currentlyAvailable, maximumAvailable, restoreRate}}`, the defaults below;
    other APIs name the same numbers elsewhere — pass their paths). The body is not in
    `observe`'s reach without parsing it twice, so the GraphQL client (graphql.py) hands each
    parsed body to `learn`.
    """

    def __init__(
        self,
        status: str = "extensions.cost.throttleStatus",
        available: str = "currentlyAvailable",
        maximum: str = "maximumAvailable",
        restore: str = "restoreRate",
        requested: str = "extensions.cost.requestedQueryCost",
        name: str = "GraphQL query cost budget",
    ) -> None:
        self.paths = (status, available, maximum, restore, requested)
        self.name = name
        self.available: float | None = None
        self.maximum = self.restore = self.need = self.at = 0.0

    def learn(self, body: object, runtime: Runtime) -> None:
        """Take the bucket's level from a parsed answer (throttled ones included)."""
        status, available, maximum, restore, requested = self.paths
        found = dig(body, status)
        if not isinstance(found, dict):
            return
        try:
            self.available = float(found[available])
            self.maximum = float(found.get(maximum) or self.available)
            self.restore = float(found.get(restore) or 0)
            self.need = max(self.need, float(dig(body, requested) or 0))
        except (KeyError, TypeError, ValueError):
            return
        self.at = runtime.now()

    def shortfall(self, body: object, runtime: Runtime) -> float:
        """Seconds until a throttled query's requested cost is available again (at least 0.1)."""
        try:
            self.need = max(self.need, float(dig(body, self.paths[4]) or 0))
        except (TypeError, ValueError):
            pass
        return max(self.wait_before("", runtime)[0], 0.1)

    def wait_before(self, url: str, runtime: Runtime) -> tuple[float, str]:
        if self.available is None or self.restore <= 0:
            return 0.0, ""
        now = min(self.maximum, self.available + (runtime.now() - self.at) * self.restore)
        missing = min(self.need, self.maximum) - now
        return (missing / self.restore, self.name) if missing > 0 else (0.0, "")


def _number(value: str | None) -> float | None:
    try:
        return float(value) if value is not None else None
    except ValueError:
        return None

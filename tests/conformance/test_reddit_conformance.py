"""Reddit runs the conformance suite (kpisync.testing) against its simulator.

The social world is fixed once generated; the simulator serves what was posted up to its clock.
The harness keeps that clock frozen (exact ground truth) and `change` moves it to the world's
end: the posts of the last days are the incremental changes. Rate-limit and Retry-After waits
still cost 1/`time_scale` of a real second, as the client sleeps on the scaled Runtime.

Expected rows are the ones tests/connectors/test_reddit.py checks, from
kpisync.fixtures.social_testing.reddit_expected: a
submission whose title or text names u/NimbusHQ is a mention, else one naming a keyword is a
keyword post; the text is the title, plus the self text when there is one; Reddit gives no
language and no follower counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from kpisync.connectors.reddit import RedditConnector
from kpisync.fixtures.reddit_sim import RedditSimulator
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.social_testing import KEYWORDS, reddit_expected, store_rows
from kpisync.fixtures.social_world import SocialWorld, generate_social_world
from kpisync.testing import ConformanceSuite, Expected, Harness

CLIENT_ID, SECRET = "reddit-conformance-app", "r3dd1t-conformance-s3cr3t-4471"
SUBS = ["nimbus", "selfhosted"]
START = datetime(2026, 6, 1, tzinfo=UTC)


@dataclass
class Scene:
    """The world and the moment the simulator serves it up to (its frozen clock)."""

    world: SocialWorld
    until: datetime


class RedditHarness(Harness):
    source = "reddit"
    connector_class = RedditConnector
    time_scale = 1000.0
    # `search` fetches the app-only OAuth token first; `subreddits` searches each subreddit once.
    noop_requests = {"search": 2, "subreddits": len(SUBS)}

    def world(self) -> Scene:
        world = generate_social_world(seed=53, start=START, end=START + timedelta(days=28), platforms=("reddit",))
        return Scene(world, world.end - timedelta(days=5))

    def simulator(self, scene: Scene) -> RedditSimulator:
        # Frozen clock (scale 0): posts appear only when `change` moves it, tokens do not expire
        # mid-test, and 1000 requests per window are far more than the suite makes.
        return RedditSimulator(scene.world, client_id=CLIENT_ID, client_secret=SECRET, clock=SimClock(scene.until, scale=0))

    def settings(self, sim: RedditSimulator) -> dict[str, Any]:
        return {"client_id": CLIENT_ID, "client_secret": SecretStr(SECRET), "username": "nimbus_ops",
                "keywords": KEYWORDS, "subreddits": SUBS, "own_accounts": ["NimbusHQ"],
                "base_url": sim.url, "auth_url": sim.url}  # fmt: skip

    def bad_settings(self, sim: RedditSimulator) -> dict[str, Any]:
        return {**self.settings(sim), "client_secret": SecretStr("r3dd1t-wrong-0000")}

    def secrets(self, sim: RedditSimulator) -> list[str]:
        """The client secret, and every access token the simulator handed out."""
        return [*super().secrets(sim), *sim.tokens]

    def expected(self, scene: Scene) -> Expected:
        return store_rows("reddit", reddit_expected(scene.until, source=scene.world))

    def change(self, scene: Scene, sim: RedditSimulator) -> None:
        scene.until = scene.world.end
        sim.clock.set(scene.until)


class TestRedditConformance(ConformanceSuite):
    harness = RedditHarness()

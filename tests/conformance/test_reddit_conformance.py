"""Reddit runs the conformance suite (kpisync.testing) against its simulator.

The social world is fixed once generated; the simulator serves what was posted up to its clock.
The harness keeps that clock frozen (exact ground truth) and `change` moves it to the world's
end: the posts of the last days are the incremental changes. Rate-limit and Retry-After waits
still cost 1/`time_scale` of a real second, as the client sleeps on the scaled Runtime.

Expected rows follow Reddit's rules as tests/connectors/test_reddit.py spells them out: a
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
from kpisync.fixtures.reddit_sim import RedditSimulator, post_fullname
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.social_world import SocialWorld, contains_term, generate_social_world
from kpisync.testing import ConformanceSuite, Expected, Harness

CLIENT_ID, SECRET = "reddit-conformance-app", "r3dd1t-conformance-s3cr3t-4471"
KEYWORDS = ["nimbus", "nimbus cloud"]
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
        rows: dict[str, dict[str, Any]] = {}
        for p in scene.world.posts_on("reddit", scene.until):
            text = p.title if p.title == p.text else f"{p.title}\n\n{p.text}"
            if contains_term(text, "u/NimbusHQ"):
                kind, term = "mention", "u/NimbusHQ"
            elif keyword := next((k for k in KEYWORDS if contains_term(text or "", k)), None):
                kind, term = "keyword", keyword
            else:
                continue
            rows[post_fullname(p)] = {
                "platform": "reddit", "kind": kind, "matched_term": term, "author_handle": p.author.handle,
                "author_followers": None, "is_own_account": int(p.is_own), "text": text, "lang": None,
                "posted_at": p.posted_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            }  # fmt: skip
        return {"social_mentions": rows}

    def change(self, scene: Scene, sim: RedditSimulator) -> None:
        scene.until = scene.world.end
        sim.clock.set(scene.until)


class TestRedditConformance(ConformanceSuite):
    harness = RedditHarness()

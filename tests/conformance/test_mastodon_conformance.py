"""Mastodon runs the conformance suite (kpisync.testing) against its simulator.

The social world is fixed once generated; what the simulator serves is what was posted up to its
clock. The harness therefore keeps the clock frozen (exact ground truth, whatever the test's
speed) at a moment inside the world, and `change` moves it forward: the posts of the last days
are the "incremental changes". Retry-After and rate-limit resets still cost only
1/`time_scale` of a real second, as the client sleeps on the scaled Runtime.

Expected rows are the ones tests/connectors/test_mastodon.py checks, from
kpisync.fixtures.social_testing.mastodon_expected: boosts are not statuses, direct mentions are private (not kept by default), a status is a reply
to the brand, else a mention of it, else a post with the first configured hashtag; local
accounts get the instance's host in their handle; counts are the status's
reblogs/favourites/replies counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pydantic import SecretStr

from kpisync.connectors.mastodon import MastodonConnector
from kpisync.fixtures.mastodon_sim import INSTANCE, MastodonSimulator
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.social_testing import TAGS, mastodon_expected, store_rows
from kpisync.fixtures.social_world import SocialWorld, generate_social_world
from kpisync.testing import ConformanceSuite, Expected, Harness

TOKEN = "mst-conformance-token-3318"
START = datetime(2026, 3, 2, tzinfo=UTC)


@dataclass
class Scene:
    """The world and the moment the simulator serves it up to (its frozen clock)."""

    world: SocialWorld
    until: datetime


class MastodonHarness(Harness):
    source = "mastodon"
    connector_class = MastodonConnector
    time_scale = 1000.0
    # `hashtags` polls each configured tag's timeline once.
    noop_requests = {"hashtags": len(TAGS)}

    def world(self) -> Scene:
        world = generate_social_world(seed=31, start=START, end=START + timedelta(days=21), platforms=("mastodon",))
        return Scene(world, world.end - timedelta(days=3))

    def simulator(self, scene: Scene) -> MastodonSimulator:
        # Frozen clock (scale 0): posts appear only when `change` moves it; the default limit of
        # 300 requests per window is never reached by the suite's few syncs of this world.
        return MastodonSimulator(scene.world, access_token=TOKEN, clock=SimClock(scene.until, scale=0))

    def settings(self, sim: MastodonSimulator) -> dict[str, Any]:
        return {"instance_url": f"https://{INSTANCE}", "base_url": sim.url, "access_token": SecretStr(TOKEN),
                "account": f"nimbus@{INSTANCE}", "hashtags": TAGS}  # fmt: skip

    def bad_settings(self, sim: MastodonSimulator) -> dict[str, Any]:
        return {**self.settings(sim), "access_token": SecretStr("mst-wrong-token-0000")}

    def expected(self, scene: Scene) -> Expected:
        return store_rows("mastodon", mastodon_expected(scene.until, source=scene.world), counts=True)

    def change(self, scene: Scene, sim: MastodonSimulator) -> None:
        scene.until = scene.world.end
        sim.clock.set(scene.until)


class TestMastodonConformance(ConformanceSuite):
    harness = MastodonHarness()

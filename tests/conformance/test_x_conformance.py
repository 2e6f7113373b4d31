"""X runs the conformance suite (kpisync.testing) against its X API v2 simulator.

The social world is fixed once generated; the simulator serves what was posted up to its clock.
The harness keeps that clock frozen (exact ground truth) and `change` moves it three days on:
the posts of those days are the incremental changes. Rate-limit and Retry-After waits still
cost 1/`time_scale` of a real second, as the client sleeps on the scaled Runtime.

Expected rows are the ones tests/connectors/test_x.py checks, from
kpisync.fixtures.social_testing.x_expected: retweets are not
mentions; the mentions timeline reaches every mention of @NimbusHQ (fewer than its 800 here),
recent search only the 7 days before each sync; a post is a reply to the brand, else a mention,
else its first configured hashtag, else its first keyword. Besides the suite, an app without
paid access must fail with one clear line (issue 7).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from kpisync.connectors.x import XConnector
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.social_testing import KEYWORDS, TAGS, store_rows, x_expected
from kpisync.fixtures.social_world import SocialWorld, generate_social_world
from kpisync.fixtures.x_sim import XSimulator
from kpisync.testing import ConformanceSuite, Expected, Harness, cli_env, kpisync

TOKEN = "AAAAAAAAAAAAAAAAAAAAAConformanceX%2B7Qe41"
UNPAID = "AAAAAAAAAAAAAAAAAAAAANoPlanX%2B0000"
START = datetime(2026, 5, 4, tzinfo=UTC)


@dataclass
class Scene:
    """The world, the moment the simulator serves it up to, and the moments of earlier syncs
    (each sync's recent search reached the 7 days before it)."""

    world: SocialWorld
    until: datetime
    earlier: tuple[datetime, ...] = field(default=())


class XHarness(Harness):
    source = "x"
    connector_class = XConnector
    time_scale = 1000.0

    def world(self) -> Scene:
        world = generate_social_world(seed=41, start=START, end=START + timedelta(days=16), platforms=("x",))
        return Scene(world, world.end - timedelta(days=3))

    def simulator(self, scene: Scene) -> XSimulator:
        # Frozen clock (scale 0): posts appear only when `change` moves it; the 450 requests per
        # endpoint and window are far more than the suite's syncs of this world make.
        clock = SimClock(scene.until, scale=0)
        return XSimulator(scene.world, tokens={TOKEN: "paid", UNPAID: "unenrolled"}, clock=clock)

    def settings(self, sim: XSimulator) -> dict[str, Any]:
        return {"bearer_token": SecretStr(TOKEN), "account": "NimbusHQ", "base_url": sim.url,
                "keywords": KEYWORDS, "hashtags": TAGS}  # fmt: skip

    def bad_settings(self, sim: XSimulator) -> dict[str, Any]:
        return {**self.settings(sim), "bearer_token": SecretStr("AAAAAAAAAAAAAAAAAAAAAWrongX0000")}

    def expected(self, scene: Scene) -> Expected:
        return store_rows("x", x_expected(scene.until, windows=scene.earlier, source=scene.world))

    def change(self, scene: Scene, sim: XSimulator) -> None:
        scene.earlier = (*scene.earlier, scene.until)
        scene.until = scene.until + timedelta(days=3)
        sim.clock.set(scene.until)


class TestXConformance(ConformanceSuite):
    harness = XHarness()

    def test_an_app_without_paid_access_fails_with_one_clear_line(self, tmp_path: Path, sim: XSimulator) -> None:
        h = self.harness
        settings = {**h.settings(sim), "bearer_token": SecretStr(UNPAID)}
        result = kpisync("pull", h.source, env=cli_env(h, settings, tmp_path / "kpi.db", tmp_path / "home"), cwd=tmp_path)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 3, (result.returncode, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: ") and "no paid API access" in lines[0], result.stderr
        assert UNPAID not in result.stdout + result.stderr

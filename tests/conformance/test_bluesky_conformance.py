"""Bluesky runs the conformance suite (kpisync.testing) against its PDS simulator.

The social world is fixed once generated; the simulator serves what was posted up to its clock.
The harness keeps that clock frozen (exact ground truth; sessions do not expire mid-test) and
`change` moves it to the world's end: the posts of the last days are the incremental changes.
Retry-After waits still cost 1/`time_scale` of a real second on the scaled Runtime.

The login session (access and refresh JWTs) is persisted by design so that createSession
(~100 a day) is not spent on every run. Each simulator gets its own session file outside the
test's folder; the suite then checks that neither the app password nor any JWT the simulator
issued reaches the store, the logs or the output.

Expected rows are the ones tests/connectors/test_bluesky.py checks, from
kpisync.fixtures.social_testing.bluesky_expected: reposts are not posts; kind by precedence
reply > quote (to the brand) > mention > hashtag > keyword.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from kpisync.connectors.bluesky import BlueskyConnector
from kpisync.fixtures.bluesky_sim import BlueskySimulator
from kpisync.fixtures.simserver import SimClock
from kpisync.fixtures.social_testing import KEYWORDS, TAGS, bluesky_expected, store_rows
from kpisync.fixtures.social_world import SocialWorld, generate_social_world
from kpisync.testing import ConformanceSuite, Expected, Harness

PASSWORD = "cnf7-bsky-q4w8-2mzd"
START = datetime(2026, 7, 6, tzinfo=UTC)
SESSIONS = Path(tempfile.mkdtemp(prefix="kpisync-bluesky-conformance-"))
atexit.register(shutil.rmtree, SESSIONS, ignore_errors=True)


@dataclass
class Scene:
    """The world and the moment the simulator serves it up to (its frozen clock)."""

    world: SocialWorld
    until: datetime


class BlueskyHarness(Harness):
    source = "bluesky"
    connector_class = BlueskyConnector
    time_scale = 1000.0
    # `search` runs one searchPosts query per keyword and per hashtag.
    noop_requests = {"search": len(KEYWORDS) + len(TAGS)}

    def __init__(self) -> None:
        self._session_files: dict[int, Path] = {}

    def world(self) -> Scene:
        world = generate_social_world(seed=67, start=START, end=START + timedelta(days=14), platforms=("bluesky",))
        return Scene(world, world.end - timedelta(days=3))

    def simulator(self, scene: Scene) -> BlueskySimulator:
        # Frozen clock (scale 0): posts appear only when `change` moves it; 3000 requests per
        # window and 30 logins per burst window are far more than the suite uses.
        sim = BlueskySimulator(scene.world, app_password=PASSWORD, clock=SimClock(scene.until, scale=0))
        self._session_files[id(sim)] = Path(tempfile.mkdtemp(dir=SESSIONS)) / "sessions.json"
        return sim

    def settings(self, sim: BlueskySimulator) -> dict[str, Any]:
        return {"identifier": "nimbus.bsky.social", "app_password": SecretStr(PASSWORD), "pds_url": "https://bsky.social",
                "base_url": sim.url, "keywords": KEYWORDS, "hashtags": TAGS,
                "session_store": "file", "session_file": str(self._session_files[id(sim)])}  # fmt: skip

    def bad_settings(self, sim: BlueskySimulator) -> dict[str, Any]:
        return {**self.settings(sim), "app_password": SecretStr("cnf7-wrng-0000-0000")}

    def secrets(self, sim: BlueskySimulator) -> list[str]:
        """The app password, and every access and refresh JWT the simulator issued."""
        return [*super().secrets(sim), *sim.access, *sim.refresh]

    def expected(self, scene: Scene) -> Expected:
        return store_rows("bluesky", bluesky_expected(scene.until, source=scene.world))

    def change(self, scene: Scene, sim: BlueskySimulator) -> None:
        scene.until = scene.world.end
        sim.clock.set(scene.until)


class TestBlueskyConformance(ConformanceSuite):
    harness = BlueskyHarness()

    def test_the_same_faults_are_survived_with_a_saved_session(self, tmp_path: Path, world: Scene, sim: BlueskySimulator) -> None:
        """The steady state: the session saved by an earlier run is reused, so the suite's faults
        (429s with Retry-After, 5xx, a reset, a truncated body, then 5 % at random) hit the data
        requests; the run must still equal the ground truth."""
        self.assert_ok(self.sync(tmp_path / "login.db", sim)[0])
        logins = sim.logins
        self.harness.inject_faults(sim)
        run, problems = self.sync(tmp_path / "kpi.db", sim)
        sim.faults.clear()
        self.assert_ok(run)
        assert not problems, "\n".join(problems[:10])
        assert sim.logins == logins
        assert sim.request_count(status=429) >= 1 and sim.request_count(status=503) >= 1
        self.assert_matches(tmp_path / "kpi.db", world)

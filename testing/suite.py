"""The conformance suite: what every kpisync connector must do, checked against its simulator.

    from kpisync.testing import ConformanceSuite
    from .harness import AcmeHarness

    class TestAcmeConformance(ConformanceSuite):
        harness = AcmeHarness()

pytest collects the inherited tests:

* bad credentials → `kpisync pull` exits 3 with one clear line, fast, without the secret;
* a full sync equals the ground truth, and every record and state validates;
* a repeated sync is a no-op (≤ 1 request per stream unless the harness says why, 0 rows);
* incremental changes arrive;
* `kpisync pull` killed with SIGKILL at random points, then rerun, converges to the same store;
* 429 with Retry-After, 5xx, connection resets and truncated bodies are survived;
* no secret in the store, the logs or the output.
"""

from __future__ import annotations

import io
import json
import logging
import random
import signal
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ClassVar

import pytest

from kpisync.core.connector import Batch, Connector, Stream
from kpisync.core.httpclient import Runtime
from kpisync.core.models import RECORD_TYPES, Record
from kpisync.core.store import Store
from kpisync.core.sync import RunResult, sync_source

from .cli import cli_env, kpisync, start_pull
from .harness import Harness
from .store import mismatches, snapshot


class _Checked(Stream):
    """A stream whose batches are validated on their way to the engine."""

    def __init__(
        self, inner: Stream, problems: list[str], secrets: list[str], extra_types: tuple[type[Record], ...] = ()
    ) -> None:
        self.inner, self.problems, self.secrets = inner, problems, secrets
        self.types = (*RECORD_TYPES, *extra_types)
        self.name = inner.name  # type: ignore[misc]

    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        for batch in self.inner.read(state):
            for record in batch.records:
                self._check(record)
            try:
                text = json.dumps(batch.state) if batch.state is not None else ""
            except (TypeError, ValueError) as exc:
                self.problems.append(f"{self.name}: state is not JSON: {exc}")
                text = ""
            for secret in self.secrets:
                if secret in text or any(secret in n for n in batch.notices):
                    self.problems.append(f"{self.name}: a secret is in the stream state or a notice")
            yield batch

    def _check(self, record: Record) -> None:
        if type(record) not in self.types:
            self.problems.append(
                f"{self.name}: {type(record).__name__} is not a canonical record type (nor in the harness's record_types)"
            )
            return
        try:
            again = type(record).model_validate(record.model_dump(exclude=set(type(record).model_computed_fields)))
        except Exception as exc:  # noqa: BLE001 - any validation failure is a finding
            self.problems.append(f"{self.name}: {type(record).__name__} {record.external_id} is invalid: {exc}")
            return
        if again != record:
            self.problems.append(f"{self.name}: {type(record).__name__} {record.external_id} changes when re-validated")
        raw = json.dumps(record.raw, default=str) if record.raw else ""
        if any(secret in raw for secret in self.secrets):
            self.problems.append(f"{self.name}: a secret is in the raw payload of {record.external_id}")


class _CheckedConnector:
    """The connector as the engine sees it, with every stream wrapped in `_Checked`."""

    def __init__(
        self, inner: Connector, problems: list[str], secrets: list[str], extra_types: tuple[type[Record], ...] = ()
    ) -> None:
        self.inner, self.problems, self.secrets, self.extra_types = inner, problems, secrets, extra_types
        self.name, self.runtime = inner.name, inner.runtime

    def streams(self) -> list[Stream]:
        return [_Checked(s, self.problems, self.secrets, self.extra_types) for s in self.inner.streams()]

    def close(self) -> None:
        self.inner.close()


class ConformanceSuite:
    """Inherit and set `harness`; every test gets a fresh world and simulator."""

    harness: ClassVar[Harness]

    # -- fixtures --------------------------------------------------------------------------------
    @pytest.fixture()
    def world(self) -> Any:
        return self.harness.world()

    @pytest.fixture()
    def sim(self, world: Any) -> Iterator[Any]:
        server = self.harness.simulator(world)
        with server:
            yield server
        assert server.errors == [], server.errors[-1]

    # -- helpers -----------------------------------------------------------------------------------
    def sync(self, db: Path, sim: Any, *, full_refresh: bool = False) -> tuple[RunResult, list[str]]:
        """One in-process sync with every batch validated; returns the run and the findings."""
        h = self.harness
        config = h.connector_class.config_model(**h.settings(sim))
        connector = h.connector_class(config, Runtime(time_scale=h.time_scale))
        problems: list[str] = []
        checked = _CheckedConnector(connector, problems, h.secrets(sim), h.record_types)
        with Store(db) as store:
            run = sync_source(store, h.source, checked, full_refresh=full_refresh)  # type: ignore[arg-type]
        return run, problems

    def assert_matches(self, db: Path, world: Any) -> None:
        problems = mismatches(db, self.harness.source, self.harness.expected(world), self.harness.scope(world))
        assert not problems, "store differs from the ground truth:\n" + "\n".join(problems)

    @staticmethod
    def assert_ok(run: RunResult) -> None:
        failed = {s.name: s.error for s in run.streams if s.status != "success"}
        assert run.status == "success", f"sync {run.status}: {run.error} {failed}"

    # -- the suite ---------------------------------------------------------------------------------
    def test_bad_credentials_fail_fast_with_one_clear_line(self, tmp_path: Path, sim: Any) -> None:
        h = self.harness
        bad = h.bad_settings(sim)
        started = time.monotonic()
        result = kpisync("pull", h.source, env=cli_env(h, bad, tmp_path / "kpi.db", tmp_path / "home"), cwd=tmp_path)
        elapsed = time.monotonic() - started
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 3, (result.returncode, result.stderr)
        assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
        assert "authentication failed" in lines[0] or "refused" in lines[0], lines[0]
        assert "Traceback" not in result.stderr
        for value in h.connector_class.config_model(**bad).secret_values():
            assert value not in result.stdout + result.stderr
        assert elapsed < 15, f"a refused login took {elapsed:.1f} s"

    def test_full_sync_equals_the_ground_truth_and_records_validate(self, tmp_path: Path, world: Any, sim: Any) -> None:
        run, problems = self.sync(tmp_path / "kpi.db", sim)
        self.assert_ok(run)
        assert run.records > 0
        assert not problems, "\n".join(problems[:10])
        self.assert_matches(tmp_path / "kpi.db", world)

    def test_a_repeated_sync_is_a_no_op(self, tmp_path: Path, sim: Any) -> None:
        db = tmp_path / "kpi.db"
        self.assert_ok(self.sync(db, sim)[0])
        before = snapshot(db)
        run, _ = self.sync(db, sim)
        self.assert_ok(run)
        assert run.rows_written == 0, {s.name: s.rows_written for s in run.streams if s.rows_written}
        over = {
            s.name: s.requests for s in run.streams if s.requests > self.harness.noop_requests.get(s.name, 1)
        }
        assert not over, f"requests of a sync with nothing new, per stream: {over}"
        assert snapshot(db) == before

    def test_incremental_changes_arrive(self, tmp_path: Path, world: Any, sim: Any) -> None:
        db = tmp_path / "kpi.db"
        self.assert_ok(self.sync(db, sim)[0])
        self.harness.change(world, sim)
        run, problems = self.sync(db, sim)
        self.assert_ok(run)
        assert run.rows_written > 0
        assert not problems, "\n".join(problems[:10])
        self.assert_matches(db, world)

    def test_kill_at_random_points_then_rerun_converges(self, tmp_path: Path, world: Any, sim: Any) -> None:
        h = self.harness
        reference, killed = tmp_path / "reference.db", tmp_path / "killed.db"
        before = sim.request_count()
        self.assert_ok(self.sync(reference, sim)[0])
        full = sim.request_count() - before
        env = cli_env(h, h.settings(sim), killed, tmp_path / "home")
        rng = random.Random(h.seed)
        kills = 0
        for _ in range(h.kills):
            target = sim.request_count() + rng.randint(1, max(1, full - 1))
            proc = start_pull(h, env, tmp_path)
            deadline = time.monotonic() + 60
            while proc.poll() is None and sim.request_count() < target and time.monotonic() < deadline:
                time.sleep(0.002)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                kills += 1
            proc.wait(timeout=30)
        assert kills, "every pull finished before it could be killed"
        final = kpisync("pull", h.source, env=env, cwd=tmp_path)
        assert final.returncode == 0, final.stderr
        assert snapshot(killed) == snapshot(reference)
        self.assert_matches(killed, world)

    def test_429s_5xx_resets_and_truncated_bodies_are_survived(self, tmp_path: Path, world: Any, sim: Any) -> None:
        self.harness.inject_faults(sim)
        run, _ = self.sync(tmp_path / "kpi.db", sim)
        sim.faults.clear()
        self.assert_ok(run)
        assert sim.request_count(status=429) >= 1 and sim.request_count(status=503) >= 1
        self.assert_matches(tmp_path / "kpi.db", world)

    def test_no_secret_in_the_store_the_logs_or_the_output(self, tmp_path: Path, sim: Any) -> None:
        h = self.harness
        db = tmp_path / "kpi.db"
        sim.faults.fail_next(2, 503)
        with _captured_logs() as logs:
            run, problems = self.sync(tmp_path / "inprocess.db", sim)
        self.assert_ok(run)
        assert not problems, "\n".join(problems[:10])
        sim.faults.fail_next(2, 500)
        result = kpisync("pull", h.source, "--json", env=cli_env(h, h.settings(sim), db, tmp_path / "home"), cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        secrets = h.secrets(sim)
        assert secrets, "the harness names no secret to look for"
        texts = {"stdout": result.stdout, "stderr": result.stderr, "logs": logs.getvalue()}
        files = [p for p in tmp_path.rglob("*") if p.is_file()]
        for secret in secrets:
            for where, text in texts.items():
                assert secret not in text, f"a secret is in the {where}"
            for path in files:
                assert secret.encode() not in path.read_bytes(), f"a secret is in {path.relative_to(tmp_path)}"


@contextmanager
def _captured_logs() -> Iterator[io.StringIO]:
    """Everything kpisync logs (DEBUG and up) and every warning of other loggers."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setLevel(logging.DEBUG)
    ours, root = logging.getLogger("kpisync"), logging.getLogger()
    old_level = ours.level
    ours.setLevel(logging.DEBUG)
    ours.addHandler(handler)
    root.addHandler(handler)
    try:
        yield buffer
    finally:
        ours.removeHandler(handler)
        root.removeHandler(handler)
        ours.setLevel(old_level)

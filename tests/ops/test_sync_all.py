"""`kpisync sync` against Zendesk simulators: every source, one down, concurrent runs, SIGTERM,
and what a sync leaves behind (no secret anywhere).

Three sources: `zendesk` and `zendesk_eu` (a second account of the same connector, its own
world) and `zendesk_down`, a simulator in an outage that answers every request with 503.
"""

from __future__ import annotations

import base64
import json
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from kpisync.core.store import Store

from .conftest import cli, count, kpisync, rows, start_kpisync, with_file_keyring, write_config

EMAIL = "ops@acme.test"
TOKEN_A, TOKEN_B, TOKEN_DOWN = "tokA-9f8e7d6c5b4a", "tokB-0a1b2c3d4e5f", "tokC-5e4d3c2b1a09"
WRONG = "tokW-wrong-1234567"
EXPORT = "/api/v2/incremental/tickets/cursor.json"
SLA_EXPORT = "/api/v2/incremental/ticket_metric_events.json"


class Sims:
    """Simulators of three Zendesk accounts and the config pointing at them."""

    def __init__(self, worlds: Any, stack: ExitStack) -> None:
        from kpisync.fixtures.zendesk_sim import ZendeskSimulator

        self.world_a, self.world_b = worlds(1), worlds(2, days=12)
        unlimited = {"incremental_limit_per_min": 100_000, "account_limit_per_min": 100_000}
        self.a = stack.enter_context(ZendeskSimulator(self.world_a, email=EMAIL, api_token=TOKEN_A, **unlimited))
        self.b = stack.enter_context(ZendeskSimulator(self.world_b, email=EMAIL, api_token=TOKEN_B, **unlimited))
        self.down = stack.enter_context(ZendeskSimulator(worlds(3, days=5), email=EMAIL, api_token=TOKEN_DOWN, **unlimited))
        self.down.faults.random(1.0, statuses=(503,))  # an outage: every request is a 503

    def config(self, path: Path, **extra: dict[str, Any]) -> Path:
        sources = {
            "zendesk": {"base_url": self.a.url, "email": EMAIL, "api_token": "env:ZD_TOKEN"},
            "zendesk_eu": {"connector": "zendesk", "base_url": self.b.url, "email": EMAIL},  # token: environment
            "zendesk_down": {"connector": "zendesk", "base_url": self.down.url, "email": EMAIL, "api_token": "env:ZD_DOWN_TOKEN"},
        }
        sources.update(extra)
        return write_config(path, sources)

    @staticmethod
    def env(env: dict[str, str]) -> dict[str, str]:
        return dict(env, ZD_TOKEN=TOKEN_A, KPISYNC_ZENDESK_EU_API_TOKEN=TOKEN_B, ZD_DOWN_TOKEN=TOKEN_DOWN)


@pytest.fixture()
def sims(small_worlds: Any) -> Iterator[Sims]:
    with ExitStack() as stack:
        yield Sims(small_worlds, stack)


def ticket_ids(db: Path, source: str) -> set[str]:
    return {row[0] for row in sqlite3.connect(db).execute("SELECT external_id FROM tickets WHERE source = ?", (source,))}


def world_ticket_ids(world: Any) -> set[str]:
    return {str(ticket.id) for ticket in world.tickets}


def test_one_source_down_does_not_stop_the_others(sims: Sims, tmp_path: Path, env: dict[str, str]) -> None:
    sims.config(tmp_path / "kpisync.toml")
    env = sims.env(env)
    db = tmp_path / "s.db"
    done = kpisync("sync", "--db", str(db), "--json", env=env, cwd=tmp_path)
    assert done.returncode == 7, done.stderr  # partial
    result = json.loads(done.stdout)
    assert result["exit_code"] == 7
    status = {o["source"]: o["status"] for o in result["sources"]}
    assert status == {"zendesk": "success", "zendesk_eu": "success", "zendesk_down": "failed"}
    [down] = [o for o in result["sources"] if o["source"] == "zendesk_down"]
    assert down["error"] == "zendesk: GET /api/v2/users/me.json failed after 8 attempts: HTTP 503"
    assert len(sims.down.requests) == 8  # retried with backoff, then only this source failed
    assert ticket_ids(db, "zendesk") == world_ticket_ids(sims.world_a)
    assert ticket_ids(db, "zendesk_eu") == world_ticket_ids(sims.world_b)
    assert count(db, "tickets", "zendesk_down") == 0

    stale = kpisync("status", "--db", str(db), "--max-lag", "1h", "--json", env=env, cwd=tmp_path)
    assert stale.returncode == 1
    assert stale.stderr.strip() == "stale: zendesk_down has never synced successfully (max lag 1h)"
    by_source = {info["source"]: info for info in json.loads(stale.stdout)}
    assert by_source["zendesk_down"]["last_error"]["error"] == down["error"]

    # the outage ends: the next run lands the missing source and re-reads nothing old elsewhere
    sims.down.faults.clear()
    again = kpisync("sync", "--db", str(db), "--json", env=env, cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    runs = {o["source"]: o["run"] for o in json.loads(again.stdout)["sources"]}
    assert runs["zendesk"]["rows_written"] == 0 and runs["zendesk_eu"]["rows_written"] == 0
    assert ticket_ids(db, "zendesk_down") == world_ticket_ids(sims.down.world)
    assert kpisync("status", "--db", str(db), "--max-lag", "1h", env=env, cwd=tmp_path).returncode == 0


def test_unreachable_source_and_bad_credentials_are_per_source(sims: Sims, tmp_path: Path, env: dict[str, str]) -> None:
    from .conftest import closed_port

    sims.config(
        tmp_path / "kpisync.toml",
        zendesk_eu={"connector": "zendesk", "base_url": sims.b.url, "email": EMAIL, "api_token": "env:WRONG"},
        zendesk_down={"connector": "zendesk", "base_url": f"http://127.0.0.1:{closed_port()}", "email": EMAIL, "api_token": "env:ZD_DOWN_TOKEN"},
    )
    env = dict(sims.env(env), WRONG=WRONG)
    del env["KPISYNC_ZENDESK_EU_API_TOKEN"]  # the environment would win over the file's env:WRONG
    done = cli("sync", "--db", str(tmp_path / "s.db"), env=env, cwd=tmp_path)
    assert done.returncode == 7
    assert "zendesk_eu: failed: zendesk: authentication failed (HTTP 401)" in done.stderr
    assert "zendesk_down: failed: zendesk: cannot reach http://127.0.0.1:" in done.stderr
    assert "sync finished: 1 of 3 sources synced (zendesk_eu failed, zendesk_down failed)" in done.stderr
    assert WRONG not in done.stdout + done.stderr


class Gate:
    """Holds the first ticket-export request a simulator receives until `open()`: the sync
    making it keeps its lock on the source for as long as the test needs, whatever the load."""

    def __init__(self, sim: Any) -> None:
        self.sim, self.answer = sim, sim.handle
        self.reached, self.released = threading.Event(), threading.Event()
        sim.handle = self.handle

    def handle(self, request: Any) -> Any:
        if request.path == EXPORT and not self.reached.is_set():
            self.reached.set()
            self.released.wait(60)
        return self.answer(request)

    def open(self) -> None:
        self.released.set()
        self.sim.handle = self.answer


def test_two_concurrent_syncs_never_share_a_source(sims: Sims, tmp_path: Path, env: dict[str, str]) -> None:
    """Same store, same sources: the second run skips what the first holds; nothing is corrupted."""
    sims.config(tmp_path / "kpisync.toml")
    (tmp_path / "kpisync.toml").write_text((tmp_path / "kpisync.toml").read_text().split("[sources.zendesk_down]")[0])
    env = sims.env(env)
    db = tmp_path / "s.db"
    gate = Gate(sims.a)
    first = start_kpisync("sync", "--db", str(db), env=env, cwd=tmp_path)
    assert gate.reached.wait(30)  # the first run is inside `zendesk`, holding its lock
    second = kpisync("sync", "--db", str(db), "--json", env=env, cwd=tmp_path)
    gate.open()
    _, err = first.communicate(timeout=60)
    assert first.returncode == 0, err

    result = json.loads(second.stdout)
    assert {o["source"]: o["status"] for o in result["sources"]} == {"zendesk": "locked", "zendesk_eu": "success"}
    assert second.returncode == 7  # partial
    assert result["sources"][0]["error"] == (
        f"another sync of 'zendesk' into s.db is running (pid {first.pid}); try again when it has finished (or use --wait)"
    )
    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert conn.execute("SELECT count(*) FROM sync_runs WHERE status = 'running'").fetchone()[0] == 0
    conn.close()
    assert ticket_ids(db, "zendesk") == world_ticket_ids(sims.world_a)
    assert ticket_ids(db, "zendesk_eu") == world_ticket_ids(sims.world_b)

    # with --wait, an overlapping run waits for the source instead of skipping it
    gate = Gate(sims.a)
    third = start_kpisync("sync", "--db", str(db), "--source", "zendesk", "--full-refresh", env=env, cwd=tmp_path)
    assert gate.reached.wait(30)
    waiting = start_kpisync("sync", "--db", str(db), "--source", "zendesk", "--wait", env=env, cwd=tmp_path)
    assert waiting.stderr is not None and "sync started: zendesk" in waiting.stderr.readline()
    time.sleep(0.3)
    assert waiting.poll() is None  # blocked on the lock, not skipped
    gate.open()
    third.communicate(timeout=60)
    _, err = waiting.communicate(timeout=60)
    assert third.returncode == 0 and waiting.returncode == 0, err
    assert "another sync" not in err


def test_sigterm_mid_stream_then_rerun_converges_to_the_ground_truth(small_worlds: Any, tmp_path: Path, env: dict[str, str]) -> None:
    """SIGTERM lands while page 3 of the SLA-event export is being served. The batch in hand is
    committed with its cursor (pages already read ahead are dropped), the run ends as
    interrupted, and a rerun continues from exactly the page after the last committed batch to
    the same store an uninterrupted sync builds."""
    from kpisync.fixtures.zendesk_sim import ZendeskSimulator

    world = small_worlds(11, days=30, per_day=10)
    with ZendeskSimulator(world, email=EMAIL, api_token=TOKEN_A, incremental_limit_per_min=100_000, account_limit_per_min=100_000) as sim:
        write_config(tmp_path / "kpisync.toml", {"zendesk": {"base_url": sim.url, "email": EMAIL, "api_token": "env:ZD_TOKEN"}})
        env = dict(env, ZD_TOKEN=TOKEN_A)
        reference = tmp_path / "reference.db"
        assert kpisync("sync", "--db", str(reference), env=env, cwd=tmp_path).returncode == 0
        pages = [r.query["start_time"][0] for r in sim.requests if r.path == SLA_EXPORT]
        assert len(pages) == 4  # the export has four pages in this world

        db = tmp_path / "s.db"
        sim.requests.clear()
        process = start_kpisync("sync", "--db", str(db), env=env, cwd=tmp_path)
        answer = sim.handle
        seen = []

        def terminate_on_page_3(request: Any) -> Any:
            if request.path == SLA_EXPORT:
                seen.append(request.query["start_time"][0])
                if len(seen) == 3:
                    process.send_signal(signal.SIGTERM)
            return answer(request)

        sim.handle = terminate_on_page_3  # type: ignore[method-assign]
        _, err = process.communicate(timeout=60)
        sim.handle = answer  # type: ignore[method-assign]
        assert process.returncode == 130, err
        assert "error: interrupted; rerun to continue" in err
        assert seen == pages[: len(seen)] and len(seen) >= 3
        with Store(db) as store:
            [run] = store.query("SELECT status, error, streams FROM sync_runs")
            assert (run["status"], run["error"]) == ("interrupted", "interrupted; rerun to continue")
            streams = {s["name"]: s for s in json.loads(run["streams"])}
            committed = streams["sla_events"]["batches"]
            assert streams["sla_events"]["status"] == "interrupted" and 1 <= committed <= 3
            assert 0 < store.count("sla_events") < count(reference, "sla_events")

        sim.requests.clear()
        rerun = kpisync("sync", "--db", str(db), env=env, cwd=tmp_path)
        assert rerun.returncode == 0, rerun.stderr
        assert [r.query["start_time"][0] for r in sim.requests if r.path == SLA_EXPORT] == pages[committed:]
    assert ticket_ids(db, "zendesk") == world_ticket_ids(world)
    assert count(db, "messages") == world.counts()["comments"]
    for table in Store.canonical_tables():
        assert rows(db, table) == rows(reference, table), table


def test_json_logs_carry_run_id_source_stream_and_counts(sims: Sims, tmp_path: Path, env: dict[str, str]) -> None:
    sims.config(tmp_path / "kpisync.toml")
    sims.a.faults.fail_next(1, status=429, headers={"Retry-After": "30"}, path="/incremental/users")
    done = cli("sync", "--db", str(tmp_path / "s.db"), "--log-format", "json", "--source", "zendesk", env=sims.env(env), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == ""  # json logs: nothing for people on stdout
    lines = [json.loads(line) for line in done.stderr.splitlines()]
    assert len({line["run_id"] for line in lines}) == 1
    streams = [line for line in lines if "stream" in line]
    assert {line["stream"] for line in streams} >= {"users", "tickets", "ticket_events"}
    for line in streams:
        assert line["source"] == "zendesk" and line["status"] == "success"
        assert {"requests", "records", "written", "waited", "seconds", "ts", "level"} <= set(line)
    tickets = next(line for line in streams if line["stream"] == "tickets")
    assert tickets["records"] == len(sims.world_a.tickets) and tickets["requests"] >= 1
    [wait] = [line for line in lines if line["message"].startswith("waiting") and line.get("reason", "").startswith("retrying")]
    assert (wait["source"], wait["wait"], wait["message"]) == ("zendesk", 30, "waiting 30.0s (retrying after an error)")
    users = next(line for line in streams if line["stream"] == "users")
    assert users["waited"] >= 30 and users["requests"] >= 2  # the 429, then the retry
    finished = lines[-1]
    assert finished["message"] == "sync finished: 1 of 1 sources synced" and finished["exit_code"] == 0


def test_no_secret_in_anything_a_sync_leaves_behind(sims: Sims, tmp_path: Path, env: dict[str, str]) -> None:
    keyring_file = tmp_path / "keyring.json"
    env = with_file_keyring(sims.env(env), keyring_file)
    keyring_file.write_text(json.dumps({"kpisync/zendesk_eu.api_token": TOKEN_B}))
    env.pop("KPISYNC_ZENDESK_EU_API_TOKEN")  # zendesk_eu's token comes from the keyring
    project = tmp_path / "project"
    project.mkdir()
    sims.config(project / "kpisync.toml", zendesk_bad={"connector": "zendesk", "base_url": sims.a.url, "email": EMAIL, "api_token": "env:WRONG"})
    env["WRONG"] = WRONG
    db = project / "s.db"
    Store(db).close()
    reader = sqlite3.connect(db)  # an open reader keeps the -wal file (and what was written to it)
    reader.execute("SELECT count(*) FROM sync_runs").fetchone()
    outputs = []
    for args in (["sync"], ["sync", "--log-format", "json", "--full-refresh"], ["status", "--json"], ["status"], ["config", "check"]):
        done = kpisync(*args, "--db", str(db), env=env, cwd=project) if args[0] != "config" else kpisync(*args, env=env, cwd=project)
        outputs += [done.stdout, done.stderr]
    assert any("authentication failed (HTTP 401)" in text for text in outputs)  # the failing path ran too
    assert (project / "s.db-wal").exists()
    secrets = [TOKEN_A, TOKEN_B, TOKEN_DOWN, WRONG]
    secrets += [base64.b64encode(f"{EMAIL}/token:{s}".encode()).decode() for s in list(secrets)]
    files = sorted(p for p in project.iterdir() if p.is_file())
    assert {p.name for p in files} >= {"s.db", "s.db-wal", "s.db-shm", "kpisync.toml", "s.db.zendesk.lock"}
    for secret in secrets:
        for file in files:
            assert secret.encode() not in file.read_bytes(), (secret, file.name)
        for text in outputs:
            assert secret not in text
    reader.close()

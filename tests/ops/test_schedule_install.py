"""`kpisync schedule install|list|remove` write valid cron/systemd files into a temp folder only;
`run_every` keeps a fixed rate on a scaled clock."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import threading
import time
from pathlib import Path

import pytest

from kpisync.core.errors import ConfigError
from kpisync.core.schedule import parse_duration, run_every

from .conftest import cli, kpisync_executable, write_config


@pytest.fixture()
def project(tmp_path: Path) -> Path:
    folder = tmp_path / "proj"
    folder.mkdir()
    write_config(folder / "kpisync.toml", {"zendesk": {"subdomain": "acme", "email": "ops@acme.test", "api_token": "env:ZD_TOKEN"}})
    return folder


def test_cron_install_writes_one_valid_line_and_replaces_it(project: Path, tmp_path: Path, env: dict[str, str]) -> None:
    target = tmp_path / "sched"
    done = cli("schedule", "install", "--every", "15m", "--kind", "cron", "--target-dir", str(target), "--db", "data/kpisync.db", env=env, cwd=project)
    assert done.returncode == 0, done.stderr
    assert "every 15m via cron" in done.stdout and "not installed" in done.stdout
    lines = (target / "crontab").read_text().splitlines()
    assert lines[0].startswith("# kpisync:default every 15m")
    fields = lines[1].split(" ", 5)
    assert fields[:5] == ["*/15", "*", "*", "*", "*"]
    words = shlex.split(fields[5])
    # cd <project> && <kpisync> sync --db <abs> --config <abs> --log-format text >> <log> 2>&1
    assert words[:3] == ["cd", str(project), "&&"]
    assert words[3:12] == [
        kpisync_executable(), "sync", "--db", str(project / "data" / "kpisync.db"),
        "--config", str(project / "kpisync.toml"), "--log-format", "text", ">>",
    ]  # fmt: skip
    assert words[12:] == [str(project / "data" / "kpisync-sync.log"), "2>&1"]
    assert "%" not in lines[1]

    again = cli("schedule", "install", "--every", "1h", "--kind", "cron", "--target-dir", str(target), env=env, cwd=project)
    assert again.returncode == 0, again.stderr
    lines = (target / "crontab").read_text().splitlines()
    assert len(lines) == 2 and lines[1].startswith("0 * * * * cd ")
    assert not (Path(env["HOME"]) / ".config" / "systemd").exists()


def test_parallel_goes_into_the_installed_command_and_zero_is_refused(project: Path, tmp_path: Path, env: dict[str, str]) -> None:
    target = tmp_path / "sched"
    done = cli("schedule", "install", "--kind", "cron", "--target-dir", str(target), "--parallel", "2", env=env, cwd=project)
    assert done.returncode == 0, done.stderr
    words = shlex.split((target / "crontab").read_text().splitlines()[1].split(" ", 5)[5])
    assert words[words.index("--parallel") + 1] == "2"
    refused = cli("schedule", "run", "--every", "15m", "--parallel", "0", env=env, cwd=project)
    assert refused.returncode == 2 and "--parallel 0: give 1" in refused.stderr


def test_list_and_remove_by_name(project: Path, tmp_path: Path, env: dict[str, str]) -> None:
    target = tmp_path / "sched"
    env = dict(env, KPISYNC_SCHEDULE_DIR=str(target))  # the env var works like --target-dir
    (target).mkdir()
    (target / "crontab").write_text("MAILTO=ops@acme.test\n0 3 * * * /usr/bin/other-job\n")
    assert cli("schedule", "install", "--every", "30m", "--kind", "cron", env=env, cwd=project).returncode == 0
    assert cli("schedule", "install", "--every", "1d", "--kind", "systemd", "--name", "nightly", env=env, cwd=project).returncode == 0

    listed = cli("schedule", "list", "--json", env=env, cwd=project)
    entries = {(e["name"], e["kind"], e["every"]) for e in json.loads(listed.stdout)}
    assert entries == {("default", "cron", "30m"), ("nightly", "systemd", "1d")}

    removed = cli("schedule", "remove", env=env, cwd=project)
    assert removed.returncode == 0 and "removed schedule 'default'" in removed.stdout
    assert (target / "crontab").read_text() == "MAILTO=ops@acme.test\n0 3 * * * /usr/bin/other-job\n"
    assert cli("schedule", "remove", "--name", "nightly", env=env, cwd=project).returncode == 0
    assert sorted(p.name for p in target.iterdir()) == ["crontab"]
    missing = cli("schedule", "remove", "--name", "nightly", env=env, cwd=project)
    assert missing.returncode == 2 and "no kpisync schedule named 'nightly'" in missing.stderr
    assert "no kpisync schedules installed" in cli("schedule", "list", env=env, cwd=project).stdout


def test_systemd_units_are_valid_and_hold_no_secret(project: Path, tmp_path: Path, env: dict[str, str]) -> None:
    target = tmp_path / "units"
    secrets = project / "secrets.env"
    secrets.write_text("ZD_TOKEN=tok-never-in-a-unit\n")
    secrets.chmod(0o600)
    done = cli(
        "schedule", "install", "--every", "15m", "--kind", "systemd", "--target-dir", str(target), "--env-file", "secrets.env",
        env=env, cwd=project,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "systemctl --user enable --now kpisync-default.timer" in done.stdout
    service = (target / "kpisync-default.service").read_text()
    timer = (target / "kpisync-default.timer").read_text()
    assert "Type=oneshot" in service
    assert f"WorkingDirectory={project}" in service
    assert f"EnvironmentFile={secrets}" in service
    assert f"ExecStart={kpisync_executable()} sync --db {project / 'kpisync.db'} --config {project / 'kpisync.toml'} --log-format text" in service
    assert "OnCalendar=*-*-* *:00/15:00" in timer and "Persistent=true" in timer
    assert "Unit=kpisync-default.service" in timer and "WantedBy=timers.target" in timer
    assert "tok-never-in-a-unit" not in service + timer
    if shutil.which("systemd-analyze"):
        calendar = subprocess.run(["systemd-analyze", "calendar", "*-*-* *:00/15:00"], capture_output=True, text=True)
        assert calendar.returncode == 0 and "Normalized form: *-*-* *:00/15:00" in calendar.stdout
        verify = subprocess.run(
            ["systemd-analyze", "verify", "--man=no", str(target / "kpisync-default.timer")], capture_output=True, text=True, env=env
        )
        problems = [line for line in verify.stderr.splitlines() if "kpisync-default" in line]
        assert problems == [], verify.stderr


def test_uneven_interval_cron_refuses_systemd_uses_active_sec(project: Path, tmp_path: Path, env: dict[str, str]) -> None:
    cron = cli("schedule", "install", "--every", "7m", "--kind", "cron", "--target-dir", str(tmp_path / "c"), env=env, cwd=project)
    assert cron.returncode == 2
    assert cron.stderr.strip() == (
        "error: cron cannot run every 7m evenly; use a divisor of an hour (1m … 30m), of a day (1h … 12h), 1d, or --kind systemd"
    )
    units = tmp_path / "u"
    done = cli("schedule", "install", "--every", "7m", "--kind", "systemd", "--target-dir", str(units), env=env, cwd=project)
    assert done.returncode == 0, done.stderr
    timer = (units / "kpisync-default.timer").read_text()
    assert "OnUnitActiveSec=420s" in timer and "OnBootSec=1min" in timer and "OnCalendar" not in timer


def test_install_needs_a_config_file(tmp_path: Path, env: dict[str, str]) -> None:
    done = cli("schedule", "install", "--kind", "cron", "--target-dir", str(tmp_path / "s"), env=env, cwd=tmp_path)
    assert done.returncode == 2 and "config file kpisync.toml does not exist" in done.stderr


@pytest.mark.parametrize(
    ("text", "seconds"), [("15m", 900), ("1h30m", 5400), ("90s", 90), ("1d", 86400), ("2h", 7200), ("0.5s", 0.5)]
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["15", "m", "-5m", "0m", "15 minutes", ""])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_duration(text)


def test_run_every_keeps_a_fixed_rate_and_skips_missed_slots() -> None:
    """Every 900 s; run 2 overruns its slot by 100 s, so run 3 starts at once, run 4 on the grid."""
    clock = {"t": 0.0}
    durations = {1: 100.0, 2: 1000.0, 3: 0.0, 4: 0.0}
    starts: list[float] = []

    class ScaledStop(threading.Event):
        def wait(self, timeout: float | None = None) -> bool:
            clock["t"] += (timeout or 0.0) * 60  # time_scale 60: real seconds -> clock seconds
            return self.is_set()

    def tick(number: int) -> None:
        starts.append(clock["t"])
        clock["t"] += durations[number]

    runs = run_every(900, tick, now=lambda: clock["t"], time_scale=60, stop=ScaledStop(), max_runs=4)
    assert runs == 4
    assert starts == [0.0, 900.0, 1900.0, 2800.0]


def test_run_every_stops_when_asked_between_runs() -> None:
    stop = threading.Event()
    ticks: list[int] = []

    def tick(number: int) -> None:
        ticks.append(number)
        if number == 2:
            threading.Timer(0.05, stop.set).start()

    started = time.monotonic()
    runs = run_every(360, tick, now=lambda: time.monotonic() * 3600, time_scale=3600, stop=stop)
    assert runs == 2 and ticks == [1, 2]  # slot 3 would have come 0.1 s later: the stop ended the wait
    assert time.monotonic() - started < 30

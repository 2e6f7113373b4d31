"""`kpisync schedule install|list|remove|run`: unattended `kpisync sync` runs.

`install` writes a crontab entry or a systemd user timer + service that runs `kpisync sync`
with absolute paths to the store and config. With `--target-dir DIR` (or $KPISYNC_SCHEDULE_DIR)
the files are written into DIR and nothing else on the machine changes — no `crontab`, no
`systemctl`: useful to review them first, for configuration management, and for tests.
`run` is a foreground scheduler for containers, where neither cron nor systemd runs.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import typer
from rich.console import Console
from rich.table import Table

from kpisync.core import logs
from kpisync.core.config import DEFAULT_CONFIG, load_config_file, resolve_db
from kpisync.core.errors import ConfigError, KpisyncError
from kpisync.core.httpclient import Runtime
from kpisync.core.schedule import (
    cron_block,
    cron_command,
    cron_entries,
    cron_without,
    format_duration,
    parse_duration,
    run_every,
    systemd_units,
)

from .app import ConfigOption, DbOption, JsonOption, app
from .common import stop_on_signals
from .sync_cmd import (
    LogFormatOption,
    ParallelOption,
    SyncOptions,
    check_parallel,
    exit_code,
    lock_wait_seconds,
    run_sync,
    selected_sources,
)

schedule_app = typer.Typer(help="Run `kpisync sync` unattended: cron, a systemd user timer, or a foreground loop.", no_args_is_help=True)
app.add_typer(schedule_app, name="schedule")

KINDS = ("auto", "cron", "systemd")
TargetDirOption = typer.Option(
    None,
    "--target-dir",
    envvar="KPISYNC_SCHEDULE_DIR",
    help="Write the crontab file / systemd units into this folder instead of installing them.",
    show_default=False,
)
NameOption = typer.Option("default", "--name", help="Schedule name (several schedules can coexist, e.g. per store).")


@schedule_app.command("install")
def install(
    every: str = typer.Option("15m", "--every", help="Interval: 5m, 15m, 1h, 1d, ..."),
    kind: str = typer.Option("auto", "--kind", help="cron, systemd, or auto (systemd when a user manager runs, else cron)."),
    name: str = NameOption,
    db: Optional[str] = DbOption,
    config: Optional[str] = ConfigOption,
    env_file: Optional[str] = typer.Option(None, "--env-file", help="A file of KEY=value lines (your secrets, mode 600) loaded before each run.", show_default=False),
    log_file: Optional[str] = typer.Option(None, "--log-file", help="Append the run's output here (cron default: kpisync-sync.log next to the store; systemd: the journal).", show_default=False),
    parallel: Optional[int] = ParallelOption,
    log_format: str = LogFormatOption,
    target_dir: Optional[str] = TargetDirOption,
) -> None:
    """Run `kpisync sync` every INTERVAL from cron or a systemd user timer."""
    seconds = parse_duration(every)
    check_parallel(parallel)
    _check_name(name)
    kind = _resolve_kind(kind, target_dir)
    store = resolve_db(db).absolute()
    config_file = _config_path(config)
    argv = [_kpisync_executable(), "sync", "--db", str(store), "--config", str(config_file), "--log-format", log_format]
    if parallel is not None:
        argv += ["--parallel", str(parallel)]
    workdir = str(config_file.parent)
    env = str(Path(env_file).absolute()) if env_file else None
    if env and not Path(env).exists():
        raise ConfigError(f"environment file {env} does not exist")
    if kind == "cron":
        log = str(Path(log_file).absolute()) if log_file else str(store.with_name("kpisync-sync.log"))
        block = cron_block(name, seconds, cron_command(argv, workdir, log, env))
        text = cron_without(_read_crontab(target_dir), name)
        _write_crontab(target_dir, text + "\n".join(block) + "\n")
        where = f"{Path(target_dir) / 'crontab'} (not installed: --target-dir)" if target_dir else "your crontab"
        print(f"schedule '{name}': `kpisync sync` every {format_duration(seconds)} via cron, in {where}; output goes to {log}")
        return
    units = systemd_units(name, seconds, argv, workdir, env)
    if log_file:
        log = str(Path(log_file).absolute())
        service = units[f"kpisync-{name}.service"].rstrip("\n")
        units[f"kpisync-{name}.service"] = service + f"\nStandardOutput=append:{log}\nStandardError=append:{log}\n"
    folder = Path(target_dir) if target_dir else _systemd_user_dir()
    folder.mkdir(parents=True, exist_ok=True)
    for file_name, text in units.items():
        (folder / file_name).write_text(text, encoding="utf-8")
    timer = f"kpisync-{name}.timer"
    if target_dir:
        print(
            f"schedule '{name}': wrote {folder / timer} and its .service (not installed: --target-dir). "
            f"To activate: copy both to ~/.config/systemd/user/ and run `systemctl --user daemon-reload && systemctl --user enable --now {timer}`"
        )
        return
    _systemctl("daemon-reload")
    _systemctl("enable", "--now", timer)
    print(
        f"schedule '{name}': `kpisync sync` every {format_duration(seconds)} via systemd ({folder / timer}); "
        f"logs: journalctl --user -u kpisync-{name}.service; to run while logged out: loginctl enable-linger"
    )


@schedule_app.command("list")
def list_schedules(target_dir: Optional[str] = TargetDirOption, as_json: bool = JsonOption) -> None:
    """Schedules installed by `kpisync schedule install` (cron and systemd)."""
    rows = _installed(target_dir)
    if as_json:
        print(json.dumps(rows, indent=2))
        return
    if not rows:
        print("no kpisync schedules installed (`kpisync schedule install --every 15m` adds one)")
        return
    table = Table(box=None, header_style="bold", pad_edge=False)
    for column in ("name", "kind", "every", "where", "command"):
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(row["name"], row["kind"], row["every"], row["where"], row["command"])
    Console(width=200).print(table)


@schedule_app.command("remove")
def remove(name: str = NameOption, target_dir: Optional[str] = TargetDirOption) -> None:
    """Remove schedule NAME (its crontab entry and/or systemd units)."""
    found = [row for row in _installed(target_dir) if row["name"] == name]
    if not found:
        raise ConfigError(f"no kpisync schedule named '{name}' (see `kpisync schedule list`)")
    for row in found:
        if row["kind"] == "cron":
            _write_crontab(target_dir, cron_without(_read_crontab(target_dir), name))
        else:
            folder = Path(row["where"]).parent
            if not target_dir:
                _systemctl("disable", "--now", f"kpisync-{name}.timer")
            for suffix in (".timer", ".service"):
                (folder / f"kpisync-{name}{suffix}").unlink(missing_ok=True)
            if not target_dir:
                _systemctl("daemon-reload")
        print(f"removed schedule '{name}' ({row['kind']}, {row['where']})")


@schedule_app.command("run")
def run(
    every: str = typer.Option("15m", "--every", help="Interval between the starts of two syncs."),
    db: Optional[str] = DbOption,
    config: Optional[str] = ConfigOption,
    source: Optional[list[str]] = typer.Option(None, "--source", "-s", help="Only these sources (repeatable)."),
    wait: bool = typer.Option(False, "--wait", help="Wait for another running sync of a source instead of skipping it."),
    wait_timeout: Optional[str] = typer.Option(None, "--wait-timeout", help="With --wait: give up after this long.", show_default=False),
    max_runs: Optional[int] = typer.Option(None, "--max-runs", help="Stop after this many syncs (default: run until SIGTERM/SIGINT).", show_default=False),
    parallel: Optional[int] = ParallelOption,
    log_format: str = LogFormatOption,
) -> None:
    """Foreground scheduler for containers: sync now, then every INTERVAL, until SIGTERM."""
    logs.setup_logging(log_format)
    seconds = parse_duration(every)
    check_parallel(parallel)
    options = SyncOptions(sources=source, lock_wait=lock_wait_seconds(wait, wait_timeout), parallel=parallel)
    selected_sources(load_config_file(config), source)  # a broken config fails now, not at the first tick
    runtime = Runtime(on_wait=logs.WaitLogger())

    def tick(number: int) -> None:
        try:
            outcomes = run_sync(db, config, options, runtime)
            logs.event(f"scheduled sync {number} done", logging.DEBUG, exit_code=exit_code(outcomes))
        except KpisyncError as exc:  # e.g. the config file was edited into something invalid
            logs.event(f"scheduled sync {number} failed: {exc}", logging.ERROR)

    def idle(wait_seconds: float) -> None:
        logs.event(f"next sync in {format_duration(wait_seconds)}")

    logs.event(f"scheduler started: `kpisync sync` every {format_duration(seconds)} (pid {os.getpid()})")
    with stop_on_signals(runtime):
        runs = run_every(
            seconds, tick, now=runtime.now, time_scale=runtime.time_scale, stop=runtime.stop, max_runs=max_runs, on_idle=idle
        )
    reason = "stop requested" if runtime.stop.is_set() else "--max-runs reached"
    logs.event(f"scheduler stopped after {runs} sync(s): {reason}")


# -- helpers ------------------------------------------------------------------------------------
def _check_name(name: str) -> None:
    if not name or not all(c.isalnum() or c in "-_" for c in name):
        raise ConfigError(f"invalid schedule name '{name}': use letters, digits, - and _")


def _resolve_kind(kind: str, target_dir: str | None) -> str:
    if kind not in KINDS:
        raise ConfigError(f"unknown --kind '{kind}' (use {', '.join(KINDS)})")
    if kind != "auto":
        return kind
    if Path("/run/systemd/system").is_dir() and shutil.which("systemctl") and os.environ.get("XDG_RUNTIME_DIR"):
        return "systemd"
    if shutil.which("crontab") or target_dir:
        return "cron"
    raise ConfigError(
        "neither a systemd user manager nor cron was found; in a container run `kpisync schedule run --every 15m` "
        "as the main process, or use --kind with --target-dir to write the files"
    )


def _config_path(config: str | None) -> Path:
    """The config file the scheduled runs will read, as an absolute path; it must exist and parse."""
    path = Path(config or DEFAULT_CONFIG)
    if not path.exists():
        raise ConfigError(f"config file {path} does not exist (run `kpisync init`, or pass --config)")
    load_config_file(path)
    return path.absolute()


def _kpisync_executable() -> str:
    """The kpisync script of this installation (the venv's, when run from one)."""
    beside = Path(sys.executable).parent / "kpisync"
    if beside.exists():
        return str(beside)
    found = shutil.which("kpisync")
    if found:
        return str(Path(found).absolute())
    raise ConfigError("cannot find the kpisync executable to schedule; is kpisync installed (pip install)?")


def _read_crontab(target_dir: str | None) -> str:
    if target_dir:
        file = Path(target_dir) / "crontab"
        return file.read_text(encoding="utf-8") if file.exists() else ""
    if not shutil.which("crontab"):
        return ""
    done = subprocess.run(["crontab", "-l"], capture_output=True, text=True)
    return done.stdout if done.returncode == 0 else ""  # exit 1: "no crontab for user"


def _write_crontab(target_dir: str | None, text: str) -> None:
    if target_dir:
        folder = Path(target_dir)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "crontab").write_text(text, encoding="utf-8")
        return
    if not shutil.which("crontab"):
        raise ConfigError("the `crontab` command is not installed; use --kind systemd or `kpisync schedule run`")
    done = subprocess.run(["crontab", "-"], input=text, capture_output=True, text=True)
    if done.returncode != 0:
        raise ConfigError(f"crontab refused the new table: {done.stderr.strip()}")


def _systemd_user_dir() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "systemd" / "user"


def _systemctl(*args: str) -> None:
    command = ["systemctl", "--user", *args]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ConfigError(f"`{' '.join(command)}` failed ({exc}); run it yourself") from None
    if done.returncode != 0:
        raise ConfigError(f"`{' '.join(command)}` failed: {done.stderr.strip() or done.stdout.strip()}; run it yourself")


def _installed(target_dir: str | None) -> list[dict[str, str]]:
    """Every kpisync schedule found in the crontab and the systemd unit folder."""
    rows = []
    where = str(Path(target_dir) / "crontab") if target_dir else "crontab"
    for entry in cron_entries(_read_crontab(target_dir)):
        rows.append({"name": entry.name, "kind": "cron", "every": entry.every, "where": where, "command": entry.line})
    folder = Path(target_dir) if target_dir else _systemd_user_dir()
    for timer in sorted(folder.glob("kpisync-*.timer")) if folder.is_dir() else []:
        name = timer.name[len("kpisync-"):-len(".timer")]
        description = _unit_value(timer, "Description")
        service = timer.with_suffix(".service")
        command = _unit_value(service, "ExecStart") if service.exists() else "(service file missing)"
        every = description.rsplit("every ", 1)[-1] if "every " in description else "?"
        rows.append({"name": name, "kind": "systemd", "every": every, "where": str(timer), "command": command})
    return rows


def _unit_value(file: Path, key: str) -> str:
    for line in file.read_text(encoding="utf-8").splitlines():
        if line.startswith(key + "="):
            return line[len(key) + 1:]
    return ""

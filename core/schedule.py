"""Unattended runs: interval parsing, cron lines, systemd user units, and a foreground loop.

`kpisync schedule install` writes one of two things, both running `kpisync sync`:

- a crontab entry, preceded by a marker comment so `schedule list/remove` can find it again;
  cron has no overlap protection of its own, the per-source locks of the sync give it one
  (crontab(5): five time fields, then a command run by /bin/sh, where an unescaped `%` would
  start the command's stdin — so it is escaped);
- a systemd user service (Type=oneshot) and timer. systemd.timer(5): a timer never starts its
  unit again while it is still active, `OnCalendar=` + `Persistent=true` catches up a run
  missed while the machine was off; intervals a calendar cannot express evenly use
  `OnUnitActiveSec=` (+ `OnBootSec=`, which fires at once when already in the past).

Nothing here writes secrets: the units reference an optional environment file the user keeps.
`run_every` is the loop of `kpisync schedule run`, for containers where neither cron nor
systemd exists; it sleeps on the runtime's scaled clock so tests can run many ticks quickly.
"""

from __future__ import annotations

import re
import shlex
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from .errors import ConfigError

MARKER = "# kpisync:"
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*([smhd])")


def parse_duration(text: str) -> float:
    """Seconds of "15m", "1h", "90s", "1d", "1h30m" (one or more number+unit parts)."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ConfigError(f"invalid duration '{text}' (examples: 90s, 15m, 1h, 1h30m, 1d)")
    seconds = sum(float(number) * _UNIT[unit] for number, unit in parts)
    if seconds <= 0:
        raise ConfigError(f"invalid duration '{text}': must be more than zero")
    return seconds


def format_duration(seconds: float) -> str:
    """The short form back: 900 -> "15m", 5400 -> "1h30m", 45.5 -> "45.5s"."""
    seconds = round(seconds, 1)
    if seconds < 60:
        return f"{seconds:g}s"
    out, rest = "", int(seconds)
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            out += f"{rest // size}{unit}"
            rest %= size
    return out


# -- cron ---------------------------------------------------------------------------------------
def cron_schedule(every: float) -> str:
    """The five time fields of an even interval; ConfigError when cron cannot express it."""
    every = int(every)
    if every % 60 or every < 60:
        raise ConfigError("cron runs at most once a minute and in whole minutes; use --every 1m or more")
    minutes = every // 60
    if minutes < 60 and 60 % minutes == 0:
        return "* * * * *" if minutes == 1 else f"*/{minutes} * * * *"
    hours, rest = divmod(minutes, 60)
    if not rest and hours < 24 and 24 % hours == 0:
        return "0 * * * *" if hours == 1 else f"0 */{hours} * * *"
    if minutes == 24 * 60:
        return "0 0 * * *"
    raise ConfigError(
        f"cron cannot run every {format_duration(every)} evenly; use a divisor of an hour "
        "(1m … 30m), of a day (1h … 12h), 1d, or --kind systemd"
    )


def cron_command(argv: Sequence[str], workdir: str, log_file: str | None, env_file: str | None) -> str:
    """The shell command of a crontab line: cd, optional env file, kpisync sync, log redirect."""
    parts = [f"cd {shlex.quote(workdir)}"]
    if env_file:
        parts.append(f"set -a && . {shlex.quote(env_file)} && set +a")
    command = " ".join(shlex.quote(arg) for arg in argv)
    if log_file:
        command += f" >> {shlex.quote(log_file)} 2>&1"
    parts.append(command)
    return " && ".join(parts).replace("%", "\\%")


def cron_block(name: str, every: float, command: str) -> list[str]:
    """Marker comment + job line."""
    return [f"{MARKER}{name} every {format_duration(every)} (managed by `kpisync schedule`)", f"{cron_schedule(every)} {command}"]


@dataclass
class CronEntry:
    name: str
    every: str
    line: str


def cron_entries(crontab: str) -> list[CronEntry]:
    """kpisync's entries of a crontab text."""
    lines = crontab.splitlines()
    found = []
    for index, line in enumerate(lines):
        if line.startswith(MARKER) and index + 1 < len(lines):
            name, _, rest = line[len(MARKER):].partition(" ")
            every = rest.split(" ")[1] if rest.startswith("every ") else "?"
            found.append(CronEntry(name=name, every=every, line=lines[index + 1]))
    return found


def cron_without(crontab: str, name: str) -> str:
    """The crontab text with the entry `name` (marker and job line) removed."""
    lines, out, skip = crontab.splitlines(), [], False
    for line in lines:
        if skip:
            skip = False
            continue
        if line.startswith(MARKER) and line[len(MARKER):].partition(" ")[0] == name:
            skip = True
            continue
        out.append(line)
    return "\n".join(out) + ("\n" if out else "")


# -- systemd ------------------------------------------------------------------------------------
def systemd_calendar(every: float) -> str | None:
    """An OnCalendar= expression for an even interval, or None (then OnUnitActiveSec= is used)."""
    try:
        cron_schedule(every)
    except ConfigError:
        return None
    minutes = int(every) // 60
    if minutes == 1:
        return "*-*-* *:*:00"
    if minutes < 60:
        return f"*-*-* *:00/{minutes}:00"
    if minutes == 60:
        return "*-*-* *:00:00"
    if minutes < 24 * 60:
        return f"*-*-* 00/{minutes // 60}:00:00"
    return "*-*-* 00:00:00"


def _systemd_quote(arg: str) -> str:
    """One ExecStart= word: `%` and `$` escaped, quoted when it holds spaces or quotes."""
    arg = arg.replace("%", "%%").replace("$", "$$")
    if re.search(r"[\s\"'\\;]", arg):
        return '"' + arg.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return arg


def systemd_units(
    name: str, every: float, argv: Sequence[str], workdir: str, env_file: str | None
) -> dict[str, str]:
    """{file name: text} of the service and timer of schedule `name`."""
    unit = f"kpisync-{name}"
    service = [
        "[Unit]",
        f"Description=kpisync sync ({name}), every {format_duration(every)}",
        "Wants=network-online.target",
        "After=network-online.target",
        "",
        "[Service]",
        "Type=oneshot",
        f"WorkingDirectory={_systemd_quote(workdir)}",
    ]
    if env_file:
        service.append(f"EnvironmentFile={_systemd_quote(env_file)}")
    service += [
        f"ExecStart={' '.join(_systemd_quote(arg) for arg in argv)}",
        # SIGTERM makes the sync commit its batch and exit 130; that is a clean stop here.
        "SuccessExitStatus=130",
        "TimeoutStopSec=120",
        "",
    ]
    calendar = systemd_calendar(every)
    timer = ["[Unit]", f"Description=Run kpisync sync ({name}) every {format_duration(every)}", "", "[Timer]"]
    if calendar:
        timer += [f"OnCalendar={calendar}", "Persistent=true"]
    else:
        timer += ["OnBootSec=1min", f"OnUnitActiveSec={int(every)}s"]
    timer += [f"Unit={unit}.service", "", "[Install]", "WantedBy=timers.target", ""]
    return {f"{unit}.service": "\n".join(service), f"{unit}.timer": "\n".join(timer)}


# -- the foreground loop -----------------------------------------------------------------------
def run_every(
    every: float,
    tick: Callable[[int], None],
    *,
    now: Callable[[], float],
    time_scale: float,
    stop: threading.Event,
    max_runs: int | None = None,
    on_idle: Callable[[float], None] | None = None,
) -> int:
    """Call `tick(n)` now and then every `every` clock seconds until `stop` or `max_runs`.

    Ticks are fixed-rate; a run that overruns its slot makes the next one start at once, and
    the slots it covered are skipped, never queued. Returns the number of runs.
    """
    runs = 0
    next_at = now()
    while not stop.is_set():
        runs += 1
        tick(runs)
        if stop.is_set() or (max_runs is not None and runs >= max_runs):
            break
        current = now()
        next_at = max(next_at + every, current)  # a run that overran its slot: the next starts at once
        if on_idle is not None:
            on_idle(next_at - current)
        stop.wait(max(0.0, next_at - current) / time_scale)
    return runs

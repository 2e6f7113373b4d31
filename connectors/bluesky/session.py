"""Where a Bluesky login session lives between runs.

createSession is limited to about 100 calls a day per account (bsky-docs issue #183: the
entryway enforces 100/day although the rate-limits page says 300), so logging in on every
scheduled sync would lock the account out by noon. The session's tokens (accessJwt, refreshJwt)
are kept and reused instead — but never in the store (its tables and `sync_state` are readable
by anyone with the file, and `kpisync status` prints stream state) and never in logs.

Backends: the OS keyring (service "kpisync", user "bluesky-session:<pds host>:<identifier>") when
one is available, else a JSON file created with mode 0600 (default: next to the store,
``<KPISYNC_DB or ./kpisync.db>.bluesky-session.json``).
"""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from kpisync.core.config import KEYRING_SERVICE, resolve_db

SessionBackend = Literal["auto", "keyring", "file"]


@dataclass(frozen=True)
class Session:
    access_jwt: str
    refresh_jwt: str
    did: str
    handle: str


class SessionStore:
    """Load, save and forget the session of one account at one PDS."""

    def __init__(self, key: str, backend: SessionBackend = "auto", file: str | Path | None = None) -> None:
        self.key = key
        self.file = Path(file) if file else Path(f"{resolve_db(None)}.bluesky-session.json")
        self.backend = _keyring_backend() if backend == "auto" else backend

    @property
    def where(self) -> str:
        return "the OS keyring" if self.backend == "keyring" else str(self.file)

    def load(self) -> Session | None:
        text = self._read()
        if not text:
            return None
        try:
            data = json.loads(text)
            return Session(data["access_jwt"], data["refresh_jwt"], data["did"], data["handle"])
        except (ValueError, KeyError, TypeError):
            return None

    def save(self, session: Session) -> None:
        self._write(json.dumps(asdict(session)))

    def clear(self) -> None:
        self._write(None)

    # -- backends ------------------------------------------------------------------------------
    def _read(self) -> str | None:
        if self.backend == "keyring":
            import keyring

            return keyring.get_password(KEYRING_SERVICE, f"bluesky-session:{self.key}")
        try:
            sessions = json.loads(self.file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        value = sessions.get(self.key) if isinstance(sessions, dict) else None
        return json.dumps(value) if value else None

    def _write(self, text: str | None) -> None:
        if self.backend == "keyring":
            import keyring
            from keyring.errors import PasswordDeleteError

            user = f"bluesky-session:{self.key}"
            if text is None:
                try:
                    keyring.delete_password(KEYRING_SERVICE, user)
                except PasswordDeleteError:
                    pass
            else:
                keyring.set_password(KEYRING_SERVICE, user, text)
            return
        try:
            sessions = json.loads(self.file.read_text(encoding="utf-8"))
            if not isinstance(sessions, dict):
                sessions = {}
        except (OSError, ValueError):
            sessions = {}
        if text is None:
            sessions.pop(self.key, None)
        else:
            sessions[self.key] = json.loads(text)
        _write_private(self.file, json.dumps(sessions, indent=1))


def _write_private(path: Path, text: str) -> None:
    """Atomically replace `path` with a file only its owner can read (mode 0600 from creation)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mkstemp creates 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
        os.chmod(tmp, 0o600)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _keyring_backend() -> SessionBackend:
    """"keyring" when a real keyring backend is installed, else "file" (headless servers)."""
    try:
        import keyring
        from keyring.backends import fail

        backend = keyring.get_keyring()
        if isinstance(backend, fail.Keyring) or getattr(backend, "priority", 0) <= 0:
            return "file"
        return "keyring"
    except Exception:  # a broken keyring install must not stop a sync
        return "file"

"""A file-backed keyring for tests: PYTHON_KEYRING_BACKEND=file_keyring.FileKeyring.

Stores passwords as JSON in $KPISYNC_TEST_KEYRING_FILE, so a `kpisync` subprocess and the test
see the same "OS keyring" without touching the real one.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError


class FileKeyring(KeyringBackend):
    priority = 1  # type: ignore[assignment]

    @staticmethod
    def _file() -> Path:
        return Path(os.environ["KPISYNC_TEST_KEYRING_FILE"])

    def _load(self) -> dict[str, str]:
        file = self._file()
        return json.loads(file.read_text()) if file.exists() else {}

    def get_password(self, service: str, username: str) -> str | None:
        return self._load().get(f"{service}/{username}")

    def set_password(self, service: str, username: str, password: str) -> None:
        data = self._load()
        data[f"{service}/{username}"] = password
        self._file().write_text(json.dumps(data))

    def delete_password(self, service: str, username: str) -> None:
        data = self._load()
        if data.pop(f"{service}/{username}", None) is None:
            raise PasswordDeleteError(username)
        self._file().write_text(json.dumps(data))

"""Errors a user sees as one line.

Everything the CLI reports without a traceback derives from `KpisyncError`: its `str()` is the
whole message, already free of secrets.
"""

from __future__ import annotations


class KpisyncError(Exception):
    """A failure the user can act on; `exit_code` is what the CLI returns."""

    exit_code = 2


class ConfigError(KpisyncError):
    """A missing or invalid setting."""


class AuthError(KpisyncError):
    """The API refused the credentials (401/403)."""

    exit_code = 3


class ApiError(KpisyncError):
    """The API kept failing, or answered with something we cannot use."""

    exit_code = 4

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class MalformedPayload(ApiError):
    """A response that is not the JSON shape the vendor documents."""


class StoreError(KpisyncError):
    """The SQLite store could not be opened or written (full disk, read-only, corrupt)."""

    exit_code = 5


class LockedError(KpisyncError):
    """Another sync of the same source into the same store is running."""

    exit_code = 6


class Interrupted(KpisyncError):
    """SIGTERM/SIGINT: the current batch was committed; a rerun continues."""

    exit_code = 130

"""The connector contract: what a connector gives the sync engine.

A connector declares a pydantic config (secrets as `SecretStr`), checks its credentials with one
cheap request, and offers streams. A stream reads from a saved state (its cursor, or None on the
first run) and yields `Batch`es: canonical records plus the state *after* them. The engine
writes each batch and its state in one transaction, so a connector never writes to the store
and never has to think about crashes: resuming from the last committed state is always right,
as long as the state only moves past records that are in the same or an earlier batch.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, SecretStr

from .httpclient import Runtime
from .models import Record, UtcDatetime


class ConnectorConfig(BaseModel):
    """Settings every connector accepts; subclasses add their own fields."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = None
    start_date: UtcDatetime | None = None

    def secret_values(self) -> list[str]:
        """Plain values of every secret field, for redaction."""
        values = []
        for name in type(self).model_fields:
            value = getattr(self, name)
            if isinstance(value, SecretStr):
                values.append(value.get_secret_value())
        return [v for v in values if v]


@dataclass
class Batch:
    """Records and the stream state after them. `state=None` keeps the previous state."""

    records: Sequence[Record]
    state: dict[str, Any] | None = None
    #: Things the user should know that are not failures ("CSAT not on this plan").
    notices: list[str] = field(default_factory=list)


class Stream(ABC):
    """One incremental (or small full-refresh) read of an API resource."""

    name: ClassVar[str]

    @abstractmethod
    def read(self, state: dict[str, Any] | None) -> Iterator[Batch]:
        """Yield batches from `state` (None: from the beginning / the configured start date)."""


class Connector(ABC):
    """Base class of every connector, built in or third-party."""

    name: ClassVar[str]
    title: ClassVar[str]
    kind: ClassVar[str] = "helpdesk"  # helpdesk, social, shop
    config_model: ClassVar[type[ConnectorConfig]] = ConnectorConfig
    description: ClassVar[str] = ""

    def __init__(self, config: ConnectorConfig, runtime: Runtime) -> None:
        self.config = config
        self.runtime = runtime

    @abstractmethod
    def check(self) -> None:
        """Verify credentials and reachability with one cheap request; raise KpisyncError."""

    @abstractmethod
    def streams(self) -> list[Stream]:
        """The streams in the order they should run (dimensions first)."""

    def close(self) -> None:
        """Release sessions."""

    @classmethod
    def env_prefix(cls, source: str | None = None) -> str:
        return f"KPISYNC_{(source or cls.name).upper()}_"

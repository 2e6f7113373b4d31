"""What a connector tells the conformance suite: how to build its world, simulator and settings.

Subclass `Harness` next to your connector's tests (the scaffold of `kpisync new-connector`
writes one) and fill in the methods; `ConformanceSuite` does the rest.
"""

from __future__ import annotations

from typing import Any, ClassVar

from pydantic import SecretStr

from kpisync.core.connector import Connector
from kpisync.core.models import Record

#: {table: {external_id: {column: value}}} — exactly the rows the store must hold.
Expected = dict[str, dict[str, dict[str, Any]]]


class Harness:
    """Ground truth, simulator and settings of one connector under test."""

    #: Source name the suite syncs under; also the entry-point name the CLI is run with.
    source: ClassVar[str]
    connector_class: ClassVar[type[Connector]]
    #: Client and simulator clock: simulated seconds per real second (Retry-After 60 = 60/scale s).
    time_scale: ClassVar[float] = 1000.0
    #: Requests a stream may make on a sync where nothing changed (default 1), with the reason.
    noop_requests: ClassVar[dict[str, int]] = {}
    #: How many times the kill test SIGKILLs a `kpisync pull` before the final run.
    kills: ClassVar[int] = 3
    seed: ClassVar[int] = 20240611
    #: Record types the connector writes beyond the canonical ones (each stored in a table of its
    #: own migration, e.g. Helprace's Tombstone); they are validated like canonical records.
    record_types: ClassVar[tuple[type[Record], ...]] = ()

    # -- required -------------------------------------------------------------------------------
    def world(self) -> Any:
        """A fresh, small ground truth (tests mutate it): tens of tickets, not thousands."""
        raise NotImplementedError

    def simulator(self, world: Any) -> Any:
        """A not-yet-started `kpisync.fixtures.simserver.SimServer` serving `world`, on a clock
        scaled by `time_scale`."""
        raise NotImplementedError

    def settings(self, sim: Any) -> dict[str, Any]:
        """Config field values that reach the simulator (base_url and good credentials)."""
        raise NotImplementedError

    def bad_settings(self, sim: Any) -> dict[str, Any]:
        """The same with wrong credentials."""
        raise NotImplementedError

    def expected(self, world: Any) -> Expected:
        """The rows a full sync of `world` must leave in the store (written from the world with
        the vendor's rules spelled out, not from the simulator's rendering)."""
        raise NotImplementedError

    def change(self, world: Any, sim: Any) -> None:
        """Make changes in the world an incremental sync must bring in (new ticket, reply,
        status change, rating, deletion...)."""
        raise NotImplementedError

    # -- optional -------------------------------------------------------------------------------
    def scope(self, world: Any) -> dict[str, str]:
        """SQL conditions per table limiting the comparison (e.g. messages of live tickets)."""
        return {}

    def secrets(self, sim: Any) -> list[str]:
        """Values that must never reach the store, logs or output (default: the SecretStr
        settings, and whatever tokens the simulator issued)."""
        config = self.connector_class.config_model(**self.settings(sim))
        values = config.secret_values()
        values += [str(t) for t in getattr(sim, "issued_tokens", [])]
        return [v for v in values if len(v) >= 6]

    def inject_faults(self, sim: Any) -> None:
        """429s with Retry-After, 5xx, connection resets and truncated bodies: five in a row on
        the first request (within every client's retry budget), then 5 % of all requests."""
        sim.faults.fail_next(2, 429, headers={"Retry-After": "5"})
        sim.faults.fail_next(1, 503)
        sim.faults.reset_next(1)
        sim.faults.truncate_next(1)
        sim.faults.random(0.05, seed=self.seed, kinds=("status", "reset", "truncate"), statuses=(500, 502, 503, 504))


def env_value(value: Any) -> str:
    """A setting as an environment variable (lists comma-separated, like core/config.py reads)."""
    if isinstance(value, SecretStr):
        return value.get_secret_value()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(env_value(v) for v in value)
    return str(value)

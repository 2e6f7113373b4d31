"""kpisync.testing: the conformance suite every connector runs against its simulator.

    from kpisync.testing import ConformanceSuite, Harness

Write a `Harness` (world, simulator, settings, expected rows, changes) and a test class that
inherits `ConformanceSuite` with `harness = YourHarness()`; pytest collects the inherited tests.
Lives in the top-level folder testing/ of the kpisync repository, installed as `kpisync.testing`.
"""

from .cli import cli_env, kpisync
from .harness import Expected, Harness, env_value
from .store import mismatches, snapshot
from .suite import ConformanceSuite

__all__ = ["ConformanceSuite", "Expected", "Harness", "cli_env", "env_value", "kpisync", "mismatches", "snapshot"]

"""`python -m kpisync.cli` runs the same entry point as the `kpisync` command."""

from .main import run

run()

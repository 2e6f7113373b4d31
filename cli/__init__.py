"""kpisync.cli."""

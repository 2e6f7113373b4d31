"""kpisync.core."""

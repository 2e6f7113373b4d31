"""kpisync.connectors."""

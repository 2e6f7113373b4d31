"""Versioned SQL migrations of the store, applied in file-name order."""

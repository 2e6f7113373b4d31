"""Helprace connector (entry point `helprace`)."""

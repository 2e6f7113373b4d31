"""Helprace connector (entry point `helprace`)."""

from .connector import HelpraceConfig, HelpraceConnector

__all__ = ["HelpraceConfig", "HelpraceConnector"]

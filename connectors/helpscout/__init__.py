"""Help Scout connector (entry point `helpscout`), built only with kpisync.core.sdk."""

from .connector import HelpScoutConfig, HelpScoutConnector

__all__ = ["HelpScoutConfig", "HelpScoutConnector"]

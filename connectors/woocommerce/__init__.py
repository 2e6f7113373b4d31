"""WooCommerce connector (entry point `woocommerce`): orders via the REST API v3."""

from .connector import WooCommerceConfig, WooCommerceConnector

__all__ = ["WooCommerceConfig", "WooCommerceConnector"]

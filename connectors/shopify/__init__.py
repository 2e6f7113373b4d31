"""Shopify connector (entry point `shopify`): orders via the GraphQL Admin API, REST as a fallback."""

from .connector import ShopifyConfig, ShopifyConnector

__all__ = ["ShopifyConfig", "ShopifyConnector"]

"""Serving: the routing table, fallback under failure, graceful shutdown."""

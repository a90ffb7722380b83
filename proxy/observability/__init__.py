"""Metrics, logs and the bounded model labels they use; knows nothing of HTTP requests."""

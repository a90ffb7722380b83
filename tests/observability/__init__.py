"""Metrics, the access log, the Grafana dashboard."""

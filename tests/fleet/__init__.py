"""Replicas sharing a real Redis, and a fleet behind a real nginx."""

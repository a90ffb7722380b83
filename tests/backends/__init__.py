"""Backends: what upstream answers mean, and faults injected on the wire."""

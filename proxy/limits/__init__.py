"""Per-key limits (requests and tokens per minute, concurrency) and usage accounting."""

"""The exact-match answer cache: off unless a route or a key turns it on (docs/cache.md)."""

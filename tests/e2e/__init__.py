"""End to end against the real local model server."""

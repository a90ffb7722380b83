"""The Octomil contract under /api/v1."""

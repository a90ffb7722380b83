"""The OpenAI-compatible surface under /v1, with the official client."""

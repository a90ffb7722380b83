"""The OpenAI API under /v1: handlers, request models and error shape."""

"""The OpenAPI 3.1 description of every endpoint, served at /api/v1/openapi.json."""

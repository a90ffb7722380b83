"""Client surfaces: the OpenAPI description, the playground (and in a real browser), the probes."""

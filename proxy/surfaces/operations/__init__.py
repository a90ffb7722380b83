"""What operators and orchestrators call: /livez, /readyz, /metrics."""

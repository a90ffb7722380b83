"""OpenTelemetry traces: off unless an OTLP endpoint is configured (docs/tracing.md)."""

"""Where spans are exported from, and the export queue's bounds (proxy/settings/tracing.py)."""

from __future__ import annotations

from proxy.settings.tracing import tracing_config
from tests.support.gateway_process import assert_refused_naming, run_to_exit

ENDPOINT = {"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}


def test_spans_are_exported_from_a_process_unless_a_thread_is_asked_for() -> None:
    problems: list[str] = []
    default = tracing_config(ENDPOINT, problems)
    thread = tracing_config({**ENDPOINT, "PROXY_TRACE_EXPORT": " Thread "}, problems)
    assert problems == []
    assert default is not None and default.export_process
    assert (default.queue_size, default.batch_size) == (2048, 512)  # the SDK's defaults
    assert thread is not None and not thread.export_process


def test_the_queue_bounds_are_the_sdks_variables() -> None:
    problems: list[str] = []
    config = tracing_config({**ENDPOINT, "OTEL_BSP_MAX_QUEUE_SIZE": "100", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "10"},
                            problems)
    assert problems == []
    assert config is not None and (config.queue_size, config.batch_size) == (100, 10)


def test_bad_export_settings_are_named() -> None:
    problems: list[str] = []
    tracing_config({**ENDPOINT, "PROXY_TRACE_EXPORT": "sidecar", "OTEL_BSP_MAX_QUEUE_SIZE": "0",
                    "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "2.5"}, problems)
    assert problems == [
        "PROXY_TRACE_EXPORT=sidecar is not process or thread",
        "OTEL_BSP_MAX_QUEUE_SIZE=0 must be a whole number of spans, 1 or more",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=2.5 must be a whole number of spans, 1 or more",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=2.5 must not be over OTEL_BSP_MAX_QUEUE_SIZE=0",
    ]
    problems = []
    tracing_config({**ENDPOINT, "OTEL_BSP_MAX_QUEUE_SIZE": "10", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "11"}, problems)
    assert problems == ["OTEL_BSP_MAX_EXPORT_BATCH_SIZE=11 must not be over OTEL_BSP_MAX_QUEUE_SIZE=10"]


def test_an_unknown_export_place_stops_start_up() -> None:
    result = run_to_exit(PROXY_API_TOKENS="t0k3n-for-tracing", OLLAMA_BASE_URL="http://127.0.0.1:11434",
                         PROXY_TRACE_EXPORT="sidecar", **ENDPOINT)
    assert_refused_naming(result, "PROXY_TRACE_EXPORT")


def test_numbers_that_are_not_finite_are_named_not_a_crash() -> None:
    problems: list[str] = []
    config = tracing_config({**ENDPOINT, "OTEL_BSP_MAX_QUEUE_SIZE": "inf", "OTEL_BSP_MAX_EXPORT_BATCH_SIZE": "nan",
                             "OTEL_EXPORTER_OTLP_TIMEOUT": "nan", "OTEL_BSP_SCHEDULE_DELAY": "1e400"}, problems)
    assert problems == [
        "OTEL_EXPORTER_OTLP_TIMEOUT=nan is not a finite number",
        "OTEL_BSP_SCHEDULE_DELAY=1e400 is not a finite number",
        "OTEL_BSP_MAX_QUEUE_SIZE=inf is not a finite number",
        "OTEL_BSP_MAX_EXPORT_BATCH_SIZE=nan is not a finite number",
    ]
    assert config is not None and (config.queue_size, config.batch_size) == (2048, 512)


def test_an_endless_queue_stops_start_up_naming_it() -> None:
    result = run_to_exit(PROXY_API_TOKENS="t0k3n-for-tracing", OLLAMA_BASE_URL="http://127.0.0.1:11434",
                         OTEL_BSP_MAX_QUEUE_SIZE="inf", **ENDPOINT)
    assert_refused_naming(result, "OTEL_BSP_MAX_QUEUE_SIZE=inf is not a finite number")
    assert "Traceback" not in result.stderr

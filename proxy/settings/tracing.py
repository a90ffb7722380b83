"""What the standard OTEL_* variables say, as one checked value.

settings/config.py reads the variables (it is the only module that reads the environment) and
hands their raw text here. The SDK is then built from this value alone, with every
setting passed explicitly, so nothing it reads on its own can disagree with it.

Tracing is on when an OTLP endpoint is set (OTEL_EXPORTER_OTLP_TRACES_ENDPOINT, or
OTEL_EXPORTER_OTLP_ENDPOINT with /v1/traces appended, as the specification says), unless
OTEL_SDK_DISABLED=true or OTEL_TRACES_EXPORTER=none.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from urllib.parse import unquote

import attrs
from attrs import frozen
from yarl import URL

SAMPLERS = (
    "parentbased_always_on", "parentbased_always_off", "parentbased_traceidratio",
    "always_on", "always_off", "traceidratio",
)
DEFAULT_SERVICE_NAME = "octomil-gateway"


@frozen
class TracingConfig:
    endpoint: URL
    headers: tuple[tuple[str, str], ...] = attrs.field(default=(), repr=False)  # often an API key
    service_name: str = DEFAULT_SERVICE_NAME
    resource_attributes: tuple[tuple[str, str], ...] = ()
    sampler: str = "parentbased_always_on"
    sampler_ratio: float = 1.0
    export_timeout: float = 10.0  # seconds
    export_every: float = 5.0  # seconds between exports of what is queued
    # The GenAI conventions' opt-in: prompts and answers as span events.
    capture_content: bool = False
    # PROXY_TRACE_EXPORT: the exporter in a child process (the default) or in a thread of the gateway.
    export_process: bool = True
    # OTEL_BSP_MAX_QUEUE_SIZE, OTEL_BSP_MAX_EXPORT_BATCH_SIZE: spans waiting to be exported, and
    # spans per export (the gateway's queue to its exporter process has the same bound).
    queue_size: int = 2048
    batch_size: int = 512


def tracing_config(raw: Mapping[str, str], problems: list[str]) -> TracingConfig | None:
    """The config from the variables' raw text (absent ones missing from `raw`); None when off.

    Problems are appended to `problems`, naming the variable, as for every other setting.
    """
    disabled = raw.get("OTEL_SDK_DISABLED", "").strip().lower() == "true"
    exporter = raw.get("OTEL_TRACES_EXPORTER", "otlp").strip().lower() or "otlp"
    if exporter not in ("otlp", "none"):
        problems.append(f"OTEL_TRACES_EXPORTER={exporter}: only otlp (over HTTP) or none is supported")
    endpoint = _endpoint(raw, problems)
    if disabled or exporter == "none" or endpoint is None:
        return None
    sampler = raw.get("OTEL_TRACES_SAMPLER", SAMPLERS[0]).strip().lower() or SAMPLERS[0]
    if sampler not in SAMPLERS:
        problems.append(f"OTEL_TRACES_SAMPLER={sampler} is not one of {', '.join(SAMPLERS)}")
    ratio = _number(raw, "OTEL_TRACES_SAMPLER_ARG", 1.0, problems)
    if not 0.0 <= ratio <= 1.0:
        problems.append(f"OTEL_TRACES_SAMPLER_ARG={ratio:g} must be between 0 and 1")
    timeout_ms = _number(raw, "OTEL_EXPORTER_OTLP_TIMEOUT", 10000.0, problems)
    if timeout_ms <= 0:
        problems.append("OTEL_EXPORTER_OTLP_TIMEOUT must be greater than 0 (milliseconds)")
    every_ms = _number(raw, "OTEL_BSP_SCHEDULE_DELAY", 5000.0, problems)
    if every_ms <= 0:
        problems.append("OTEL_BSP_SCHEDULE_DELAY must be greater than 0 (milliseconds)")
    headers = _pairs(raw.get("OTEL_EXPORTER_OTLP_HEADERS", ""), "OTEL_EXPORTER_OTLP_HEADERS", problems)
    headers += _pairs(raw.get("OTEL_EXPORTER_OTLP_TRACES_HEADERS", ""), "OTEL_EXPORTER_OTLP_TRACES_HEADERS", problems)
    resource = _pairs(raw.get("OTEL_RESOURCE_ATTRIBUTES", ""), "OTEL_RESOURCE_ATTRIBUTES", problems)
    named = dict(resource).get("service.name")
    service = raw.get("OTEL_SERVICE_NAME", "").strip() or named or DEFAULT_SERVICE_NAME
    capture = raw.get("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "").strip().lower()
    if capture not in ("", "true", "false"):
        problems.append(f"OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT={capture} is not true or false")
    export = raw.get("PROXY_TRACE_EXPORT", "process").strip().lower() or "process"
    if export not in ("process", "thread"):
        problems.append(f"PROXY_TRACE_EXPORT={export} is not process or thread")
    queue_size, batch_size = _queue_sizes(raw, problems)
    return TracingConfig(
        endpoint=endpoint, headers=headers, service_name=service,
        resource_attributes=tuple((k, v) for k, v in resource if k != "service.name"),
        sampler=sampler, sampler_ratio=ratio, export_timeout=max(timeout_ms, 1.0) / 1000,
        capture_content=capture == "true", export_every=max(every_ms, 1.0) / 1000, export_process=export != "thread",
        queue_size=queue_size, batch_size=batch_size,
    )


def _endpoint(raw: Mapping[str, str], problems: list[str]) -> URL | None:
    signal = raw.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "").strip()
    base = raw.get("OTEL_EXPORTER_OTLP_ENDPOINT", "").strip()
    name, text = ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", signal) if signal else ("OTEL_EXPORTER_OTLP_ENDPOINT", base)
    if not text:
        return None
    try:
        url = URL(text)
    except ValueError:
        url = URL()
    if url.scheme not in ("http", "https") or not url.host:
        problems.append(f"{name}: {text.split('@')[-1]!r} is not an http(s) URL with a host")
        return None
    # The signal's own variable is used as given; the base one gets the traces path.
    return url if signal else url.joinpath("v1/traces")


def _pairs(text: str, name: str, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """`key=value,key2=value2` with percent-encoded values (the W3C baggage format)."""
    pairs = []
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            # The key only: a value may be a secret.
            problems.append(f"{name}: {key.strip()[:40]!r} is not a key=value pair")
            continue
        pairs.append((key.strip(), unquote(value.strip())))
    return tuple(pairs)


def _queue_sizes(raw: Mapping[str, str], problems: list[str]) -> tuple[int, int]:
    queue = _number(raw, "OTEL_BSP_MAX_QUEUE_SIZE", 2048, problems)
    batch = _number(raw, "OTEL_BSP_MAX_EXPORT_BATCH_SIZE", 512, problems)
    for name, number in (("OTEL_BSP_MAX_QUEUE_SIZE", queue), ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", batch)):
        if number < 1 or number != int(number):
            problems.append(f"{name}={number:g} must be a whole number of spans, 1 or more")
    if batch > queue:
        problems.append(f"OTEL_BSP_MAX_EXPORT_BATCH_SIZE={batch:g} must not be over OTEL_BSP_MAX_QUEUE_SIZE={queue:g}")
    return max(int(queue), 1), max(min(int(batch), int(queue)), 1)


def _number(raw: Mapping[str, str], name: str, default: float, problems: list[str]) -> float:
    text = raw.get(name, "").strip()
    if not text:
        return default
    try:
        number = float(text)
    except ValueError:
        problems.append(f"{name}={text} is not a number")
        return default
    if not math.isfinite(number):  # "inf", "nan", "1e400": no count of spans or milliseconds
        problems.append(f"{name}={text} is not a finite number")
        return default
    return number

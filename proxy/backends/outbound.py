"""What the upstream learns of the request it serves: its X-Request-ID and its W3C trace context.

The request's headers for upstreams sit in a ContextVar set once per request by the
serving layer (serving/service.py), so the upstream code (backends/upstream.py) adds them
to whatever it sends, batch items and stream requests included (their tasks inherit the
context), without every layer in between passing them along. Health probes run outside any request and send none.

With tracing off, a caller's `traceparent`/`tracestate` go on unchanged: the upstream's
spans still join the caller's trace. With tracing on, each upstream attempt is a span of
its own and the upstream gets that span as its parent (proxy/tracing/spans.py).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from contextvars import ContextVar

OUTBOUND: ContextVar[Mapping[str, str] | None] = ContextVar("outbound_headers", default=None)

# W3C Trace Context, version 00 and the forward-compatible form of later versions.
_TRACEPARENT = re.compile(r"[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}(-[0-9a-f-]*)?")
# At most 32 list members of printable ASCII; longer ones are dropped, as the spec allows.
_TRACESTATE = re.compile(r"[\x20-\x7e]{1,512}")


def caller_trace_context(traceparent: str | None, tracestate: str | None) -> dict[str, str]:
    """The caller's `traceparent` and `tracestate`, when well-formed; a hostile value is dropped."""
    if not traceparent or not _TRACEPARENT.fullmatch(traceparent):
        return {}
    context = {"traceparent": traceparent}
    if tracestate and _TRACESTATE.fullmatch(tracestate):
        context["tracestate"] = tracestate
    return context


def forward(request_id: str, traceparent: str | None, tracestate: str | None) -> None:
    """Send `request_id` and the caller's trace context to every upstream this request reaches
    (from this task, and the tasks it starts)."""
    outbound = {"X-Request-ID": request_id}
    if traceparent:
        outbound.update(caller_trace_context(traceparent, tracestate))
    OUTBOUND.set(outbound)

"""A single-shot chat answer assembled from the upstream's stream.

An upstream asked for one JSON answer (Ollama's and OpenAI's `"stream": false`) sends
nothing until the model has finished: a long answer is indistinguishable from a dead
upstream until then, and could only be bounded by a cap on the whole call. Read as a
stream, the same answer shows its progress, so a single-shot call is bounded like a
stream (connect, headers, first token, silence between chunks) and capped as a whole only
by PROXY_MAX_REQUEST_SECONDS, far above any silence. It costs a few parsed lines per
answer instead of one object, measured in docs/PERFORMANCE.md.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator

from proxy.errors import BadUpstreamResponse, UpstreamTimeout
from proxy.llm import ChatResult, StreamEnd, StreamItem
from proxy.settings.config import Timeouts


async def assemble(
    items: AsyncGenerator[StreamItem, None], timeouts: Timeouts, backend: str, *, cold: bool,
) -> ChatResult:
    """Tokens joined into one answer, within the first-token budget and the whole-call cap.

    One timer serves both: it fires at the first-token deadline until a token arrives,
    then it is moved to the whole call's. The silences in between are the upstream
    session's read timer (PROXY_IDLE_TIMEOUT), translated where the stream is read.
    """
    loop = asyncio.get_running_loop()
    started = loop.time()
    first_within = timeouts.cold_start if cold else timeouts.first_token
    first_setting = "PROXY_COLD_START_TIMEOUT" if cold else "PROXY_FIRST_TOKEN_TIMEOUT"
    tokens: list[str] = []
    try:
        async with contextlib.aclosing(items), asyncio.timeout_at(started + min(first_within, timeouts.total)) as timer:
            async for item in items:
                if isinstance(item, StreamEnd):
                    return ChatResult(output="".join(tokens), usage=item.usage, finish_reason=item.finish_reason)
                if not tokens:
                    timer.reschedule(started + timeouts.total)
                tokens.append(item)
    except TimeoutError as exc:
        if tokens or timeouts.total <= first_within:
            raise UpstreamTimeout(f"no complete answer within {timeouts.total:g} s (PROXY_MAX_REQUEST_SECONDS)",
                                  backend=backend) from exc
        raise UpstreamTimeout(f"no first token within {first_within:g} s ({first_setting})", backend=backend) from exc
    raise BadUpstreamResponse("the answer ended without its final message", backend=backend)

"""An OpenAI-wire upstream that sends each streamed token only when the test lets it.

The first token goes out at once; every later one waits for `next_token()`. A test that
calls it only after its client has received the previous token proves that each token
crossed every hop on its own: anything on the way that held tokens back (a buffering
proxy, a compressing one) would leave the client waiting for a token the upstream never
sends, and the test would hang, not pass.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from attrs import define, field

from tests.support.upstreams.openai import _chunk, _event
from tests.support.upstreams.recorder import Recorder


@define
class GatedOpenAI:
    tokens: list[str] = field(factory=lambda: [f" t{i}" for i in range(5)])
    recorder: Recorder = field(factory=Recorder)
    _turns: asyncio.Semaphore = field(factory=lambda: asyncio.Semaphore(0))
    _gated: bool = True

    def next_token(self) -> None:
        """Let the stream send its next token."""
        self._turns.release()

    def ungate(self) -> None:
        """Send every token at once from now on: for single shots, which the gateway reads
        from the upstream as a stream."""
        self._gated = False

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.recorder.middleware()])
        app.router.add_post("/v1/chat/completions", self.chat)
        app.router.add_get("/v1/models", self.models)
        return app

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = body["model"]
        if not body.get("stream"):
            return web.json_response({
                "id": "chatcmpl-gated", "object": "chat.completion", "created": 1700000000, "model": model,
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "".join(self.tokens)},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": len(self.tokens),
                          "total_tokens": 3 + len(self.tokens)},
            })
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i, token in enumerate(self.tokens):
            if i and self._gated:
                await self._turns.acquire()
            await response.write(_event(_chunk(model, {"content": token})))
        await response.write(_event(_chunk(model, {}, "stop")))
        await response.write(_event(b"[DONE]"))
        return response

    async def models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "gated", "object": "model", "owned_by": "test"}]})

"""The floor: the least an aiohttp gateway can do for the two calls `make bench` measures.

    python -m bench.floor --port 9200 --upstream http://127.0.0.1:9100 --token bench-token

POST /api/v1/inference: check the bearer token, parse the contract's body, forward it to
Ollama's /api/chat (stream false) over one pooled session, answer the contract's JSON.
POST /api/v1/inference/stream: the same, relaying Ollama's NDJSON lines as SSE events.
Nothing else: no validation beyond what parsing needs, no fallback, limits, metrics or
logs. It is the same stack as the gateway (aiohttp on uvloop, orjson), so the gap
between the two is what the gateway's own work costs, not the stack's.
"""

from __future__ import annotations

import argparse
import hmac
import time
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import orjson
import uvloop
from aiohttp import web

SESSION = web.AppKey("session", aiohttp.ClientSession)
_JSON = {"Content-Type": "application/json"}


class Floor:
    def __init__(self, upstream: str, token: str) -> None:
        self.chat_url = upstream.rstrip("/") + "/api/chat"
        self.expected = f"Bearer {token}".encode()

    async def session(self, app: web.Application) -> AsyncIterator[None]:
        app[SESSION] = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=256))
        yield
        await app[SESSION].close()

    def _upstream_body(self, request_body: bytes, stream: bool) -> tuple[str, bytes]:
        body = orjson.loads(request_body)
        model = body["model_id"]
        wire: dict[str, Any] = {"model": model, "messages": [{"role": "user", "content": body["input_data"]}],
                                "stream": stream}
        max_tokens = (body.get("parameters") or {}).get("max_tokens")
        if max_tokens:
            wire["options"] = {"num_predict": max_tokens}
        return model, orjson.dumps(wire)

    def _authorized(self, request: web.Request) -> bool:
        return hmac.compare_digest(request.headers.get("Authorization", "").encode(), self.expected)

    async def inference(self, request: web.Request) -> web.Response:
        if not self._authorized(request):
            return web.Response(status=401)
        started = time.perf_counter()
        model, wire = self._upstream_body(await request.read(), stream=False)
        async with request.app[SESSION].post(self.chat_url, data=wire, headers=_JSON) as upstream:
            answer = orjson.loads(await upstream.read())
        out = {"output": answer["message"]["content"], "latency_ms": (time.perf_counter() - started) * 1000,
               "provider": "ollama", "model_id": model}
        return web.Response(body=orjson.dumps(out), content_type="application/json")

    async def stream(self, request: web.Request) -> web.StreamResponse:
        if not self._authorized(request):
            return web.Response(status=401)
        _, wire = self._upstream_body(await request.read(), stream=True)
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        async with request.app[SESSION].post(self.chat_url, data=wire, headers=_JSON) as upstream:
            await response.prepare(request)
            async for line in upstream.content:
                message = orjson.loads(line)
                done = message.get("done", False)
                event = {"token": "" if done else message["message"]["content"], "done": done, "provider": "ollama"}
                await response.write(b"data: " + orjson.dumps(event) + b"\n\n")
        return response


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--upstream", required=True, help="the Ollama (emulator) base URL")
    parser.add_argument("--token", required=True)
    args = parser.parse_args()
    floor = Floor(args.upstream, args.token)
    app = web.Application()
    app.cleanup_ctx.append(floor.session)
    app.router.add_post("/api/v1/inference", floor.inference)
    app.router.add_post("/api/v1/inference/stream", floor.stream)
    web.run_app(app, host="127.0.0.1", port=args.port, access_log=None, print=None, backlog=4096,
                loop=uvloop.new_event_loop())


if __name__ == "__main__":
    main()

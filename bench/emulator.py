"""A fast upstream emulator speaking Ollama's and OpenAI's wire formats, for benchmarks.

    python -m bench.emulator --port 9100 [--tokens 32] [--token-delay 0] [--latency 0] [--fail-rate 0]

Ollama: POST /api/chat (NDJSON stream or one object), POST /api/embed, GET /api/version, GET /api/ps.
OpenAI: POST /v1/chat/completions (SSE chunks ending in [DONE], usage when asked),
POST /v1/embeddings, GET /v1/models. OTLP: POST /v1/traces (spans accepted, not kept).
Every answer is encoded once at start-up, so the emulator spends its time on HTTP, not
on building JSON. Per request, the JSON body may
override `tokens` ("max_tokens" / "options.num_predict"); the rest is fixed per process:
`latency` seconds before any answer, `token_delay` seconds between streamed tokens, and
`fail_rate` of requests answered 503.
"""

from __future__ import annotations

import argparse
import asyncio
import random

import orjson
from aiohttp import web

OLLAMA_VERSION = b'{"version":"0.13.5"}'


def ollama_line(token: str, model: str = "bench") -> bytes:
    return orjson.dumps({
        "model": model, "created_at": "2026-01-28T18:34:16.110694939Z",
        "message": {"role": "assistant", "content": token}, "done": False,
    }) + b"\n"


def ollama_final(count: int, model: str = "bench") -> bytes:
    return orjson.dumps({
        "model": model, "created_at": "2026-01-28T18:34:16.177747459Z",
        "message": {"role": "assistant", "content": ""}, "done": True, "done_reason": "stop",
        "total_duration": 667241489, "load_duration": 1000, "prompt_eval_count": 12,
        "prompt_eval_duration": 33919315, "eval_count": count, "eval_duration": 48387027,
    }) + b"\n"


def openai_chunk(delta: dict[str, str], finish: str | None = None) -> bytes:
    return b"data: " + orjson.dumps({
        "id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 1700000000, "model": "bench",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }) + b"\n\n"


class Emulator:
    def __init__(self, tokens: int, token_delay: float, latency: float, fail_rate: float) -> None:
        self.tokens = tokens
        self.token_delay = token_delay
        self.latency = latency
        self.fail_rate = fail_rate
        self.token = " tok"
        self.ollama_token = ollama_line(self.token)
        self.openai_token = openai_chunk({"content": self.token})
        self.vector = [0.125] * 768
        self._bodies: dict[tuple[str, int], bytes] = {}

    def app(self) -> web.Application:
        app = web.Application()
        app.router.add_post("/api/chat", self.ollama_chat)
        app.router.add_post("/api/embed", self.ollama_embed)
        app.router.add_get("/api/version", self.ollama_version)
        app.router.add_get("/api/ps", self.ollama_ps)
        app.router.add_post("/v1/chat/completions", self.openai_chat)
        app.router.add_post("/v1/embeddings", self.openai_embed)
        app.router.add_get("/v1/models", self.openai_models)
        # Stands in for an OTLP/HTTP collector too: takes the spans, answers an empty
        # ExportTraceServiceResponse (zero bytes of protobuf).
        app.router.add_post("/v1/traces", self.otlp_traces)
        return app

    async def otlp_traces(self, request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=b"", content_type="application/x-protobuf")

    def _count(self, body: dict) -> int:
        wanted = body.get("max_tokens") or (body.get("options") or {}).get("num_predict")
        return int(wanted) if wanted else self.tokens

    async def _prelude(self) -> web.Response | None:
        if self.latency:
            await asyncio.sleep(self.latency)
        if self.fail_rate and random.random() < self.fail_rate:  # noqa: S311 (not cryptography)
            return web.Response(status=503, body=b'{"error":"server busy, please try again."}',
                                content_type="application/json")
        return None

    def _single(self, kind: str, count: int) -> bytes:
        key = (kind, count)
        if key not in self._bodies:
            text = self.token * count
            if kind == "ollama":
                self._bodies[key] = orjson.dumps({
                    "model": "bench", "message": {"role": "assistant", "content": text}, "done": True,
                    "done_reason": "stop", "prompt_eval_count": 12, "eval_count": count,
                })
            else:
                self._bodies[key] = orjson.dumps({
                    "id": "chatcmpl-bench", "object": "chat.completion", "created": 1700000000, "model": "bench",
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 12, "completion_tokens": count, "total_tokens": 12 + count},
                })
        return self._bodies[key]

    async def _stream(self, request: web.Request, content_type: str, token: bytes, count: int,
                      head: bytes, tail: bytes) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        if head:
            await response.write(head)
        for i in range(count):
            if self.token_delay and i:
                await asyncio.sleep(self.token_delay)
            await response.write(token)
        await response.write(tail)
        return response

    async def ollama_chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        if (failed := await self._prelude()) is not None:
            return failed
        count = self._count(body)
        if body.get("stream", True) is False:
            return web.Response(body=self._single("ollama", count), content_type="application/json")
        return await self._stream(request, "application/x-ndjson", self.ollama_token, count, b"", ollama_final(count))

    async def openai_chat(self, request: web.Request) -> web.StreamResponse:
        body = orjson.loads(await request.read())
        if (failed := await self._prelude()) is not None:
            return failed
        count = self._count(body)
        if not body.get("stream"):
            return web.Response(body=self._single("openai", count), content_type="application/json")
        usage = b"data: " + orjson.dumps({
            "id": "chatcmpl-bench", "object": "chat.completion.chunk", "choices": [],
            "usage": {"prompt_tokens": 12, "completion_tokens": count, "total_tokens": 12 + count},
        }) + b"\n\n"
        tail = openai_chunk({}, "stop") + usage + b"data: [DONE]\n\n"
        head = openai_chunk({"role": "assistant", "content": ""})
        return await self._stream(request, "text/event-stream", self.openai_token, count, head, tail)

    async def ollama_embed(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.Response(body=orjson.dumps({
            "model": "bench", "embeddings": [self.vector] * len(texts), "prompt_eval_count": len(texts),
        }), content_type="application/json")

    async def openai_embed(self, request: web.Request) -> web.Response:
        body = orjson.loads(await request.read())
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        return web.Response(body=orjson.dumps({
            "object": "list", "model": "bench",
            "data": [{"object": "embedding", "index": i, "embedding": self.vector} for i in range(len(texts))],
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }), content_type="application/json")

    async def ollama_version(self, request: web.Request) -> web.Response:
        return web.Response(body=OLLAMA_VERSION, content_type="application/json")

    async def ollama_ps(self, request: web.Request) -> web.Response:
        """Every model is loaded: no request waits for a cold start."""
        return web.Response(body=b'{"models":[{"name":"bench:latest","model":"bench:latest"}]}',
                            content_type="application/json")

    async def openai_models(self, request: web.Request) -> web.Response:
        return web.Response(body=b'{"object":"list","data":[{"id":"bench","object":"model"}]}',
                            content_type="application/json")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=9100)
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--token-delay", type=float, default=0.0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--fail-rate", type=float, default=0.0)
    args = parser.parse_args()
    emulator = Emulator(args.tokens, args.token_delay, args.latency, args.fail_rate)
    try:
        import uvloop
        loop = uvloop.new_event_loop()
    except ImportError:
        loop = asyncio.new_event_loop()
    web.run_app(emulator.app(), host=args.host, port=args.port, access_log=None, print=None,
                backlog=4096, loop=loop)


if __name__ == "__main__":
    main()

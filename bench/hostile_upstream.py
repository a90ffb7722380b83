"""An upstream that attacks the gateway, one attack per model name, on Ollama's wire
(and OpenAI's error shape under /v1), with the emulator's Ollama lines for its good ones.
bench/hostile.py measures what each attack costs a gateway process;
tests/backends/test_hostile_upstreams.py checks what the client sees, with every request
recorded by a middleware of its own (`app(middlewares=...)`). It lives here, not under
tests/, so that the benchmark does not depend on the tests.

  gzip-bomb          (single shot) 200 with `Content-Encoding: gzip`: about 1 KB per MiB on
                     the wire, `bomb_mib` MiB of zeros once inflated, with an honest
                     Content-Length (of the compressed bytes)
  gzip-bomb-stream   a stream whose gzip body inflates to one "line" of `bomb_mib` MiB
                     of zeros
  gzip-error         a 500 whose gzip body inflates to `error_bomb_mib` MiB
  over-cap           (single shot) 200 with `over_cap_mib` MiB of plain JSON-looking bytes
  broken-chunk       a stream: one good token, then an invalid chunk size, then the close
  redirect           307 to `redirect_to` (another server, which records what reaches it)
  secret-error       a 500 whose plain-text body holds a password and an internal address
  secret-error-json  a 500 in Ollama's error shape, with a secret in a field beside `error`
  ok                 a short complete answer (stream or single shot)

POST /v1/chat/completions answers 500 in OpenAI's error shape, a secret beside `message`.
"""

from __future__ import annotations

import asyncio
import functools
import struct
import zlib
from collections.abc import Iterable

from aiohttp import web
from aiohttp.typedefs import Middleware
from attrs import define

from bench.emulator import ollama_final, ollama_line

SECRET = "db password=hunter2 at 10.0.0.5"
MIB = 1 << 20


@functools.cache
def gzip_of_zeros(mib: int) -> bytes:
    """A gzip member that inflates to `mib` MiB of zeros, made without compressing them all:
    deflate blocks ended by a full flush do not depend on what came before, so the block
    of one MiB is repeated (header and trailer per RFC 1952)."""
    zeros = bytes(MIB)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    end = deflate.flush(zlib.Z_FINISH)
    crc = 0
    for _ in range(mib):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"
    return header + block * mib + end + struct.pack("<II", crc, (mib * MIB) & 0xFFFFFFFF)


@define
class HostileUpstream:
    bomb_mib: int = 1024
    error_bomb_mib: int = 60
    over_cap_mib: int = 70
    redirect_to: str = ""

    def app(self, middlewares: Iterable[Middleware] = ()) -> web.Application:
        app = web.Application(middlewares=middlewares)
        app.router.add_post("/api/chat", self.chat)
        app.router.add_post("/api/embed", self.chat)
        app.router.add_get("/api/version", self.version)
        app.router.add_get("/api/ps", self.ps)
        app.router.add_post("/v1/chat/completions", self.openai_error)
        app.router.add_get("/v1/models", self.openai_models)
        return app

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.13.5"})

    async def ps(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": "ok", "model": "ok"}]})

    async def openai_models(self, request: web.Request) -> web.Response:
        return web.json_response({"object": "list", "data": [{"id": "ok", "object": "model"}]})

    async def openai_error(self, request: web.Request) -> web.Response:
        body = {"error": {"message": "the model crashed", "type": "server_error", "debug": SECRET}}
        return web.json_response(body, status=500)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model = body["model"]
        if model == "redirect":
            raise web.HTTPTemporaryRedirect(self.redirect_to)
        if model == "secret-error":
            return web.Response(status=500, text=f"Traceback: connect({SECRET}) failed")
        if model == "secret-error-json":
            return web.json_response({"error": "the model crashed", "detail": SECRET}, status=500)
        if model == "gzip-error":
            return self._gzipped(gzip_of_zeros(self.error_bomb_mib), status=500)
        if model == "gzip-bomb":
            return self._gzipped(gzip_of_zeros(self.bomb_mib), status=200)
        if model == "over-cap":
            return await self._over_cap(request)
        if not body.get("stream", True):
            return web.json_response({
                "model": model, "message": {"role": "assistant", "content": "fine"}, "done": True,
                "done_reason": "stop", "prompt_eval_count": 12, "eval_count": 1,
            })
        return await self._stream(request, model)

    @staticmethod
    def _gzipped(payload: bytes, status: int) -> web.Response:
        # Set by hand, so aiohttp sends the bytes as they are.
        return web.Response(status=status, body=payload,
                            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})

    async def _over_cap(self, request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        await response.write(b'{"model": "over-cap", "message": {"content": "')
        block = b"a" * MIB
        for _ in range(self.over_cap_mib):
            await response.write(block)
        await response.write(b'"}, "done": true}')
        await response.write_eof()
        return response

    async def _stream(self, request: web.Request, model: str) -> web.StreamResponse:
        headers = {"Content-Type": "application/x-ndjson"}
        if model == "gzip-bomb-stream":
            headers["Content-Encoding"] = "gzip"
        response = web.StreamResponse(headers=headers)
        await response.prepare(request)
        if model == "gzip-bomb-stream":
            await response.write(gzip_of_zeros(self.bomb_mib))
            await response.write_eof()
            return response
        await response.write(ollama_line("one", model))
        if model == "broken-chunk":
            await asyncio.sleep(0.05)  # the good token goes out on its own
            assert request.transport is not None
            # Not a hexadecimal chunk size: the framing is broken, then the connection ends.
            transport = request.transport
            transport.write(b"zz-not-a-size\r\nbroken\r\n")
            await asyncio.sleep(0.05)
            transport.close()  # if the client has not closed it already
            return response
        await response.write(ollama_final(1, model))
        await response.write_eof()
        return response


"""An Ollama-wire upstream that misbehaves on purpose, one way per model name.

Its good lines have the shape of real Ollama `/api/chat` NDJSON (see the `chat_stream`
transcript in tests/support/data/ollama_transcripts.json), or of `/api/generate`'s
(`generate_stream`) when asked there; the faults are what a real server or
the network does to them:

  ok                a short complete stream (or one JSON object with "stream": false)
  hang-headers      never answers: no status line, no headers
  hang-after-2      two tokens, then silence
  late-hang-after-2 `trickle_delay` seconds of silence, two tokens, then silence
  die-after-2       two tokens, then the connection is reset (no final chunk)
  malformed-first   a line that is not JSON, before any token
  malformed-after-2 two tokens, then a line that is not JSON
  endless-line      one token, then 4 MiB without a newline, then silence
  split-lines       three tokens and the end, the lines cut and glued as TCP may deliver
                    them: the first in three pieces, the next two in one write, the
                    final line without its newline
  think-forever     headers and lines with empty content, but never a token
  slow-body         (single shot) headers and half an answer, then silence
  trickle           `trickle_tokens` tokens, `trickle_delay` seconds apart, then the end
  slow-first        nothing at all for `trickle_delay` seconds (as Ollama loading a model:
                    no headers until it is loaded), then a short complete stream

GET /api/ps lists the models in `loaded`, like Ollama's list of models in memory: by
default every model above, so that only a test about cold starts sees one.
  status-NNN        that status, with an Ollama error body

Every request is recorded, and so is whether its handler was cancelled (the gateway
hung up on it): that is how the tests see the upstream's side.
"""

from __future__ import annotations

import asyncio

import orjson
from aiohttp import web
from attrs import define, field

from tests.support.upstreams.recorder import Recorder


def token_line(model: str, token: str, *, generate: bool = False) -> bytes:
    """A line of /api/chat's stream, or of /api/generate's (`response`, as generate_stream)."""
    text = {"response": token} if generate else {"message": {"role": "assistant", "content": token}}
    return orjson.dumps({"model": model, "created_at": "2026-01-28T18:34:16.110694939Z", **text, "done": False}) + b"\n"


def final_line(model: str, eval_count: int, *, generate: bool = False) -> bytes:
    text = ({"response": ""} if generate else {"message": {"role": "assistant", "content": ""}})
    return orjson.dumps({
        "model": model, "created_at": "2026-01-28T18:34:16.177747459Z", **text, "done": True, "done_reason": "stop",
        **({"context": [105, 2364, 107]} if generate else {}),
        "total_duration": 667241489, "load_duration": 539660381, "prompt_eval_count": 12,
        "prompt_eval_duration": 33919315, "eval_count": eval_count, "eval_duration": 48387027,
    }) + b"\n"


MODELS = (
    "ok", "hang-headers", "hang-after-2", "late-hang-after-2", "die-after-2", "malformed-first",
    "malformed-after-2", "endless-line", "think-forever", "trickle", "slow-first", "slow-body",
)


async def forever() -> None:
    await asyncio.Event().wait()


@define
class FaultyOllama:
    recorder: Recorder = field(factory=Recorder)
    trickle_tokens: int = 20
    trickle_delay: float = 0.05
    loaded: set[str] = field(factory=lambda: set(MODELS))

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.recorder.middleware()])
        app.router.add_post("/api/chat", self.chat)
        app.router.add_post("/api/generate", self.chat)  # the same faults, in /api/generate's lines
        app.router.add_get("/api/version", self.version)
        app.router.add_get("/api/ps", self.ps)
        return app

    async def ps(self, request: web.Request) -> web.Response:
        return web.json_response({"models": [{"name": name, "model": name} for name in sorted(self.loaded)]})

    async def version(self, request: web.Request) -> web.Response:
        return web.json_response({"version": "0.13.5"})

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        model: str = body["model"]
        if model == "hang-headers":
            await forever()
        if model.startswith("status-"):
            status = int(model.removeprefix("status-"))
            return web.json_response({"error": f"simulated {status}"}, status=status)
        if not body.get("stream", True):
            if model == "ok":
                return web.json_response({
                    "model": model, "message": {"role": "assistant", "content": "fine"}, "done": True,
                    "done_reason": "stop", "prompt_eval_count": 12, "eval_count": 1,
                })
            if model == "slow-body":
                response = web.StreamResponse(headers={"Content-Type": "application/json"})
                await response.prepare(request)
                await response.write(b'{"model": "slow-body", "message": {"role": "assistant", "content": "hal')
                await forever()
            if model.startswith(("hang", "late-hang", "think", "trickle")):
                await forever()
            return web.json_response({"error": f"model '{model}' not found"}, status=404)
        if model == "slow-first":
            await asyncio.sleep(self.trickle_delay)
        response = web.StreamResponse(headers={"Content-Type": "application/x-ndjson"})
        await response.prepare(request)
        await self._stream(request, response, model)
        return response

    async def _stream(self, request: web.Request, response: web.StreamResponse, model: str) -> None:
        write = response.write
        generate = request.path == "/api/generate"

        def line(text: str) -> bytes:
            return token_line(model, text, generate=generate)

        def final(eval_count: int) -> bytes:
            return final_line(model, eval_count, generate=generate)

        if model in ("ok", "slow-first"):
            for token in ("all", " good"):
                await write(line(token))
            await write(final(2))
        elif model == "hang-after-2":
            await write(line("one"))
            await write(line(" two"))
            await forever()
        elif model == "late-hang-after-2":
            await asyncio.sleep(self.trickle_delay)
            await write(line("one"))
            await write(line(" two"))
            await forever()
        elif model == "die-after-2":
            await write(line("one"))
            await write(line(" two"))
            await asyncio.sleep(0.01)  # let both reach the gateway before the reset
            assert request.transport is not None
            request.transport.abort()
        elif model == "malformed-first":
            await write(b'{"model": "malformed-first", "message": {"content": \n')
        elif model == "malformed-after-2":
            await write(line("one"))
            await write(line(" two"))
            await write(b"<html>502 Bad Gateway</html>\n")
        elif model == "endless-line":
            await write(line("one"))
            await write(b"x" * (4 << 20))
            await forever()
        elif model == "split-lines":
            first = line("one")
            for piece in (first[:7], first[7:30], first[30:]):
                await write(piece)
                await asyncio.sleep(0.01)  # each piece its own read at the gateway
            await write(line(" two") + line(" three"))
            await asyncio.sleep(0.01)
            await write(final(3).rstrip(b"\n"))
        elif model == "think-forever":
            while True:
                await write(line(""))
                await asyncio.sleep(0.02)
        elif model == "trickle":
            for i in range(self.trickle_tokens):
                await asyncio.sleep(self.trickle_delay)
                await write(line(f" t{i}"))
            await write(final(self.trickle_tokens))
        else:  # too late for a 404 status: Ollama reports it as an error line
            await write(orjson.dumps({"error": f"model '{model}' not found"}) + b"\n")

"""Ollama test server: the recorded-traffic replay server, served in-process.

`ollama_replay_server.py` is carried unchanged (see tests/support/data/README.md); this module only
builds its app for `aiohttp_server` and adds a recorder in front of it. Which transcript
answers is chosen by the request, as on the real server's recordings: a model name
starting with "missing" gets Ollama's 404, "busy" its 503 (queue full),
"midstream-error" a stream that breaks after a few tokens, "context-overflow" its 400.
Chats with tools, a format, images or thinking, a suffix a model cannot insert, and
/api/show, are answered by
ollama_features.py in Ollama's documented wire, since no recording has them.
"""

from __future__ import annotations

import asyncio
import warnings

import orjson
from aiohttp import web

from tests.support.paths import DATA
from tests.support.upstreams import ollama_features
from tests.support.upstreams import ollama_replay_server as replay
from tests.support.upstreams.ollama_docs import add_documented_routes
from tests.support.upstreams.recorder import Recorder

TRANSCRIPTS = orjson.loads((DATA / "ollama_transcripts.json").read_bytes())


def transcript(name: str) -> dict:
    return next(t for t in TRANSCRIPTS if t["name"] == name)


def ollama_app(
    recorder: Recorder, *, delay: float = 0.0, pull_gate: asyncio.Semaphore | None = None,
) -> web.Application:
    app = web.Application(middlewares=[recorder.middleware()])
    with warnings.catch_warnings():
        # The replay server keeps its state under plain string keys.
        warnings.simplefilter("ignore", web.NotAppKeyWarning)
        app["transcripts"] = TRANSCRIPTS
        app["delay"] = delay
        app["live_date"] = False
    app.on_response_prepare.append(replay.go_header_order)
    app.router.add_post("/api/show", ollama_features.show)
    app.router.add_post("/api/chat", ollama_features.chat)
    app.router.add_post("/api/generate", ollama_features.generate)
    # What the recordings lack, from Ollama's API reference (ollama_docs.py); the rest replayed.
    add_documented_routes(app, pull_gate)
    app.router.add_route("*", "/{tail:.*}", replay.replay)
    return app

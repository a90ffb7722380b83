"""An upstream that answers exactly what a test scripts: status, content type and body chunks.

For the odd answers real servers (or proxies in front of them) send now and then: JSON of
the wrong shape, error bodies split over several chunks, `event: error` frames, bodies
that never end. `answers[path]` is used for every request to `path`.
"""

from __future__ import annotations

import asyncio

from aiohttp import web
from attrs import define, field

from tests.support.upstreams.recorder import Recorder


@define
class Answer:
    status: int = 200
    content_type: str = "application/json"
    chunks: list[bytes] = field(factory=list)
    gap: float = 0.0  # seconds between chunks
    end_after: float = 0.0  # seconds between the last chunk and the end of the body


@define
class ScriptedUpstream:
    answers: dict[str, Answer] = field(factory=dict)
    recorder: Recorder = field(factory=Recorder)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.recorder.middleware()])
        app.router.add_route("*", "/{tail:.*}", self.answer)
        return app

    async def answer(self, request: web.Request) -> web.StreamResponse:
        answer = self.answers.get(request.path, Answer(status=404, chunks=[b'{"error":"not scripted"}']))
        response = web.StreamResponse(status=answer.status, headers={"Content-Type": answer.content_type})
        response.enable_chunked_encoding()
        await response.prepare(request)
        for i, chunk in enumerate(answer.chunks):
            if i and answer.gap:
                await asyncio.sleep(answer.gap)
            await response.write(chunk)
        if answer.end_after:
            await asyncio.sleep(answer.end_after)
        return response

"""Where the hostile upstream (bench/hostile_upstream.py) redirects to: it only records what
reaches it, and answers with the secret, so a gateway that followed the redirect shows it."""

from __future__ import annotations

from aiohttp import web
from attrs import define, field

from bench.hostile_upstream import SECRET
from tests.support.upstreams.recorder import Recorder


@define
class RedirectTarget:
    recorder: Recorder = field(factory=Recorder)

    def app(self) -> web.Application:
        app = web.Application(middlewares=[self.recorder.middleware()])
        app.router.add_route("*", "/{tail:.*}", self.anything)
        return app

    async def anything(self, request: web.Request) -> web.Response:
        return web.Response(status=500, text=f"the redirect target saw the prompt; {SECRET}")

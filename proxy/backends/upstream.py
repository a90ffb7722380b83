"""HTTP plumbing every backend shares: sessions, timers, bounded reads, and error translation.

`Upstream.request` is the boundary where aiohttp and asyncio failures become the gateway's
`UpstreamError`s: it wraps the call *and* the reading of the body, so a failure in the
middle of a stream is typed like one before it.
"""

from __future__ import annotations

import asyncio
import base64
import time
import weakref
from collections.abc import AsyncIterator, Callable, Mapping
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Any

import aiohttp
import orjson
from aiohttp.http_exceptions import HttpProcessingError
from attrs import define, field
from yarl import URL

from proxy.backends.bounded_reads import (
    MAX_ANSWER_BODY,
    MAX_ERROR_BODY,
    EndsWhenCut,
    await_body_end,
    log_error_body,
    read_capped,
)
from proxy.backends.outbound import OUTBOUND
from proxy.backends.wire import StreamSilent
from proxy.errors import BadUpstreamResponse, UpstreamError, UpstreamTimeout, UpstreamUnavailable
from proxy.llm import Probe
from proxy.settings.config import Timeouts

_JSON_HEADERS = {"Content-Type": "application/json"}

ErrorClassifier = Callable[[int, bytes, str], UpstreamError]


# Whether the connection of the request being sent in this task was used before.
_REUSED: ContextVar[bool] = ContextVar("reused", default=False)


class _ReuseAwareConnector(aiohttp.TCPConnector):
    """A pool that notes, for the request being sent, whether its connection is a reused one.

    The stale keep-alive race only hits reused connections, and only those may be retried:
    a fresh connection that drops may have delivered the request. (aiohttp's own tracing
    could tell the same, at several times the cost per request.)
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._used: weakref.WeakSet[Any] = weakref.WeakSet()

    async def connect(self, req: Any, traces: Any, timeout: aiohttp.ClientTimeout) -> Any:  # noqa: ASYNC109 (aiohttp's signature)
        connection = await super().connect(req, traces, timeout)
        protocol = connection.protocol
        _REUSED.set(protocol in self._used)
        if protocol is not None:
            self._used.add(protocol)
        return connection


@define
class Upstream:
    """One upstream base URL: its sessions, its timers and its error translation."""

    name: str
    base_url: URL
    classify: ErrorClassifier
    _session: aiohttp.ClientSession
    # Connections that are never reused: the one retry after a stale pooled connection,
    # and health probes, which must not queue behind a busy pool.
    _fresh_session: aiohttp.ClientSession
    _timeouts: Timeouts
    _call_timeout: aiohttp.ClientTimeout
    _stream_timeout: aiohttp.ClientTimeout
    _cold_stream_timeout: aiohttp.ClientTimeout
    _probe_timeout: aiohttp.ClientTimeout
    _errors: ErrorTranslation
    _urls: dict[str, URL] = field(factory=dict)
    _display_url: str = field(init=False)

    def __attrs_post_init__(self) -> None:
        # Built once: a traced request reads it on every attempt (serving/attempt_spans.py).
        self._display_url = str(self.base_url.with_query(None).with_fragment(None))

    @classmethod
    def open(
        cls, name: str, base_url: URL, classify: ErrorClassifier, *, timeouts: Timeouts, pool_size: int,
        keepalive: float, probe_timeout: float, headers: dict[str, str] | None = None,
    ) -> Upstream:
        # Credentials in the URL become a Basic auth header (unless an API key already
        # sets Authorization); the URL kept for display and requests carries none.
        headers = dict(headers or {})
        if base_url.user and "Authorization" not in headers:
            userinfo = f"{base_url.user}:{base_url.password or ''}".encode()
            headers["Authorization"] = "Basic " + base64.b64encode(userinfo).decode()

        def session(connector: aiohttp.TCPConnector) -> aiohttp.ClientSession:
            return aiohttp.ClientSession(connector=connector, headers=headers, raise_for_status=False)

        return cls(
            name=name, base_url=base_url.with_user(None), classify=classify, timeouts=timeouts,
            # Idle connections are retired after `keepalive` seconds, before a typical
            # upstream (uvicorn: 5 s) closes them under us.
            session=session(_ReuseAwareConnector(limit=pool_size, keepalive_timeout=keepalive)),
            fresh_session=session(aiohttp.TCPConnector(limit=pool_size, force_close=True)),
            # A call answered in one piece (embeddings, lists) waits for it as silence, and is
            # capped as a whole. (Single-shot chats are streams, see assemble.py.)
            call_timeout=aiohttp.ClientTimeout(
                total=timeouts.total, sock_connect=timeouts.connect, sock_read=timeouts.idle),
            # A stream is never capped as a whole, only its silences: sock_read bounds
            # every wait for bytes, the wait for headers included.
            stream_timeout=aiohttp.ClientTimeout(total=None, sock_connect=timeouts.connect, sock_read=timeouts.idle),
            cold_stream_timeout=aiohttp.ClientTimeout(
                total=None, sock_connect=timeouts.connect, sock_read=max(timeouts.idle, timeouts.cold_start)),
            probe_timeout=aiohttp.ClientTimeout(total=probe_timeout),
            errors=ErrorTranslation(name, timeouts),  # stateless: one per upstream, built once
        )

    def first_token_budget(self, *, cold: bool) -> float:
        """How long a stream may take to its first item: longer when the model loads first."""
        return self._timeouts.cold_start if cold else self._timeouts.first_token

    @property
    def display_url(self) -> str:
        """Scheme, host, port and path only: a query string or fragment may hold a credential
        (`?key=...`), and health answers and errors show this URL."""
        return self._display_url

    @property
    def timeouts(self) -> Timeouts:
        return self._timeouts

    def url(self, path: str) -> URL:
        # Joined once per path, not per request.
        if path not in self._urls:
            self._urls[path] = self.base_url.joinpath(path.lstrip("/"))
        return self._urls[path]

    @asynccontextmanager
    async def request(
        self, method: str, path: str, *, json: Any = None, streaming: bool = False, cold: bool = False,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A response with a 2xx status; any other status raises its UpstreamError.

        Everything done with the response inside the `async with` is translated too.
        """
        with self.translate_errors():
            response = await self._send(method, self.url(path), json, streaming, cold)
            async with response:
                if response.status >= 300:
                    # A 3xx too: redirects are never followed (they would re-send the prompt
                    # to wherever the upstream points).
                    body = await read_capped(response, MAX_ERROR_BODY, self.name, truncate=True)
                    log_error_body(self.name, response.status, body)
                    raise self.classify(response.status, body, self.name)
                if not streaming:
                    yield response
                    return
                with EndsWhenCut(response):
                    try:
                        yield response
                    except GeneratorExit:  # its reader stopped at the answer's last line
                        await await_body_end(response.content)
                        raise
                    await await_body_end(response.content)

    def read_budgets(self, *, cold: bool = False) -> tuple[float, float | None]:
        """The longest wait for the next bytes of a stream (wire.py keeps this timer itself),
        and for its first bytes when that differs: a model being loaded (`cold`) sends
        nothing until it is; once its first token has come, the usual idle budget applies."""
        idle, cold_start = self._timeouts.idle, self._timeouts.cold_start
        return idle, (cold_start if cold and cold_start > idle else None)

    @asynccontextmanager
    async def exchange(
        self, method: str, path: str, *, data: bytes | AsyncIterator[bytes] | None, content_type: str | None,
    ) -> AsyncIterator[aiohttp.ClientResponse]:
        """A response whatever its status, for relaying as it is (model management): only
        the stream timers apply (connect, and the idle timer on every wait for bytes), since
        a pull may run for an hour and a blob upload may be gigabytes."""
        headers = {"Content-Type": content_type} if content_type else None
        with self.translate_errors():
            async with self._session.request(
                method, self.url(path), data=data, headers=headers, timeout=self._stream_timeout,
                allow_redirects=False,  # as every upstream call: never re-sent where a redirect points
            ) as response:
                yield response

    async def read_json(self, response: aiohttp.ClientResponse) -> Any:
        """The whole answer as JSON, refusing one larger than MAX_ANSWER_BODY."""
        return orjson.loads(await self.read_body(response))

    async def read_body(self, response: aiohttp.ClientResponse) -> bytes:
        """The whole answer, refusing one larger than MAX_ANSWER_BODY."""
        return await read_capped(response, MAX_ANSWER_BODY, self.name)

    async def _send(self, method: str, url: URL, json: Any, streaming: bool, cold: bool) -> aiohttp.ClientResponse:
        """Send, and wait for the response headers within the headers timer.

        A cold stream (the upstream loads the model first, and sends its headers only
        then) waits up to the cold-start budget instead of the headers and idle timers.
        """
        timeout = self._call_timeout
        if streaming:
            timeout = self._cold_stream_timeout if cold else self._stream_timeout
        headers_within = max(self._timeouts.headers, self._timeouts.cold_start) if cold else self._timeouts.headers
        # orjson, not aiohttp's json=: several times faster on the hot path.
        body = None if json is None else orjson.dumps(json)
        try:
            if timeout.sock_read is not None and headers_within >= timeout.sock_read:
                # The read timer already bounds the wait for headers: no second timer.
                return await self._send_once(method, url, body, timeout)
            async with asyncio.timeout(headers_within):
                return await self._send_once(method, url, body, timeout)
        except TimeoutError as exc:
            if isinstance(exc, aiohttp.ConnectionTimeoutError):
                raise  # translated: the connect timer
            within = min(headers_within, timeout.sock_read or headers_within)
            setting = "PROXY_COLD_START_TIMEOUT" if cold else "PROXY_HEADERS_TIMEOUT"
            raise UpstreamTimeout(f"no response headers within {within:g} s ({setting})", backend=self.name) from exc

    async def _send_once(
        self, method: str, url: URL, body: bytes | None, limits: aiohttp.ClientTimeout,
    ) -> aiohttp.ClientResponse:
        headers: Mapping[str, str] | None = _JSON_HEADERS if body is not None else None
        outbound = OUTBOUND.get()  # the request's id and trace context, when inside a request
        if outbound is not None:
            headers = {**headers, **outbound} if headers else outbound
        _REUSED.set(False)
        try:
            return await self._session.request(
                method, url, data=body, headers=headers, timeout=limits, allow_redirects=False)
        except aiohttp.ClientConnectorError:
            raise
        except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError):
            if not _REUSED.get():
                raise
            # A pooled connection that the upstream closed while it sat idle fails as it
            # is reused, before any answer: the classic keep-alive race. Sent once more,
            # on a connection of its own. (A fresh connection that drops is not retried:
            # the upstream may have started on the request.)
            return await self._fresh_session.request(
                method, url, data=body, headers=headers, timeout=limits, allow_redirects=False)

    async def probe(self, path: str) -> Probe:
        """GET `path` on a connection of its own; healthy when it answers 2xx in time."""
        started = time.perf_counter()
        try:
            with self.translate_errors():
                try:
                    async with self._fresh_session.get(
                            self.url(path), timeout=self._probe_timeout, allow_redirects=False) as response:
                        body = await read_capped(response, MAX_ERROR_BODY, self.name, truncate=True)
                except TimeoutError as exc:
                    raise UpstreamTimeout(
                        f"no answer to the health probe within {self._probe_timeout.total:g} s", backend=self.name
                    ) from exc
                if response.status >= 300:
                    raise self.classify(response.status, body, self.name)
        except UpstreamError as exc:
            return Probe(healthy=False, latency_ms=_ms_since(started), error=exc.message)
        return Probe(healthy=True, latency_ms=_ms_since(started))

    def translate_errors(self) -> ErrorTranslation:
        """aiohttp/asyncio exceptions -> UpstreamError, naming this backend."""
        return self._errors

    async def aclose(self) -> None:
        await self._session.close()
        await self._fresh_session.close()


@define
class ErrorTranslation:
    """The table from aiohttp/asyncio exceptions to the gateway's UpstreamErrors.

    A plain context manager class rather than @contextmanager: it runs around every
    upstream call and stream, and a generator-based one costs several times more.
    """

    backend: str
    timeouts: Timeouts

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, _tb: object) -> None:
        if exc is None or isinstance(exc, UpstreamError) or not isinstance(exc, Exception):
            return  # success, already translated, or cancellation: passes through unchanged
        translated = self.translate(exc)
        if translated is None:
            return
        try:
            raise translated from exc
        finally:
            # The raised error's traceback holds this frame, and this frame held the error:
            # a reference cycle, which the tuned collector (see __main__) may not visit for
            # a long time, keeping alive all that `exc`'s traceback holds (a body being read).
            del translated, exc

    def translate(self, exc: Exception) -> UpstreamError | None:
        """The UpstreamError for `exc`; None for an error that is not the upstream's (a bug)."""
        name, t = self.backend, self.timeouts
        if isinstance(exc, aiohttp.ConnectionTimeoutError):
            return UpstreamTimeout(f"no connection within {t.connect:g} s (PROXY_CONNECT_TIMEOUT)", backend=name)
        if isinstance(exc, aiohttp.SocketTimeoutError):
            return UpstreamTimeout(f"upstream silent for {t.idle:g} s (PROXY_IDLE_TIMEOUT)", backend=name)
        if isinstance(exc, StreamSilent):
            # A model Ollama has to load is given the cold-start budget until its first bytes (read_budgets).
            setting = "PROXY_IDLE_TIMEOUT" if exc.seconds <= t.idle else "PROXY_COLD_START_TIMEOUT, for a model loading"
            return UpstreamTimeout(f"upstream silent for {exc.seconds:g} s ({setting})", backend=name)
        if isinstance(exc, TimeoutError):  # the whole-call cap
            return UpstreamTimeout(f"no complete answer within {t.total:g} s (PROXY_MAX_REQUEST_SECONDS)",
                                   backend=name)
        if isinstance(exc, aiohttp.ClientConnectorError):
            return UpstreamUnavailable(f"cannot connect: {exc.os_error or exc}", backend=name)
        if isinstance(exc, aiohttp.ClientPayloadError):
            return BadUpstreamResponse(f"the answer was cut off: {exc}", backend=name)
        if isinstance(exc, aiohttp.ClientResponseError):
            return BadUpstreamResponse(f"malformed response: {exc.message}", backend=name)
        if isinstance(exc, aiohttp.ClientError | ConnectionError):
            return UpstreamUnavailable(f"connection lost: {exc or type(exc).__name__}", backend=name)
        if isinstance(exc, ValueError | HttpProcessingError):  # bad JSON, a line over MAX_LINE, a huge event
            return BadUpstreamResponse(f"unreadable response: {exc}", backend=name)
        return None


def _ms_since(started: float) -> float:
    return round((time.perf_counter() - started) * 1000, 3)

"""Reading upstream bodies within bounds.

Every cap counts the bytes as read, after aiohttp has undone any Content-Encoding (1 MB of
gzip can be 1 GB of zeros), and is kept while reading; an error body is read only to its
cap and its start goes to the server log, never to clients; a stream whose connection is
lost before the body's end ends at once.
"""

from __future__ import annotations

import asyncio
import logging

import aiohttp

from proxy.errors import BadUpstreamResponse

log = logging.getLogger("proxy")

# Error bodies are read for their message only; a huge one is not worth holding.
MAX_ERROR_BODY = 64 * 1024
# A whole single-shot answer (embeddings of many long texts are the largest).
MAX_ANSWER_BODY = 64 * 1024 * 1024
# How much of an error body the server log keeps.
LOGGED_ERROR_BODY = 500


async def read_capped(response: aiohttp.ClientResponse, limit: int, backend: str, *, truncate: bool = False) -> bytes:
    """The whole body, read to its end (not just the first chunk), up to `limit` bytes.

    Past the limit: the first `limit` bytes with `truncate`, else a BadUpstreamResponse.
    The count is of the bytes as read, after aiohttp has undone any Content-Encoding,
    and it is kept while reading: the Content-Length of a compressed answer says nothing
    of its inflated size (1 MB of gzip can be 1 GB of zeros), so it is never trusted.
    aiohttp inflates a bounded amount per read, so memory stays near `limit`.
    """
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.content.iter_any():
        chunks.append(chunk)
        size += len(chunk)
        # While inflated bytes are at hand, each read returns at once without yielding to
        # the event loop: a 64 MB answer would hold it for its whole length (~1 s).
        await asyncio.sleep(0)
        if size > limit:
            response.close()  # the rest is never read; the connection is not reused
            if truncate:
                break
            # Dropped before raising: the error's traceback holds this frame.
            chunks.clear()
            raise BadUpstreamResponse(f"answer larger than {limit} bytes", backend=backend)
    body = b"".join(chunks)
    return body[:limit] if size > limit else body


def log_error_body(backend: str, status: int, body: bytes) -> None:
    """The start of an upstream's error body, for the operator only: clients get the part
    the backend's classifier knows (its error message), never the rest, which may hold
    anything (internal addresses, a database password)."""
    if body:
        log.warning("upstream %s answered HTTP %d; body starts %r", backend, status, body[:LOGGED_ERROR_BODY])


class EndsWhenCut:
    """A stream whose connection is lost before the body's end ends at once
    (`with EndsWhenCut(response):` around its reading).

    aiohttp (3.14) closes the connection when an answer's framing is broken (an invalid
    chunk size) but never tells the reader, which would wait forever: the connection's
    end is watched here instead, and ends the body there. The backend's reader then
    reports a stream that ended before its final message (an error set on the reader
    instead would sit in a reference cycle with the reader's frames). A plain class
    rather than @contextmanager: it runs around every stream and single shot.
    """

    __slots__ = ("_closed", "_content")

    def __init__(self, response: aiohttp.ClientResponse) -> None:
        self._content = response.content
        protocol = response.connection.protocol if response.connection is not None else None
        self._closed = protocol.closed if protocol is not None else None

    def __enter__(self) -> None:
        if self._closed is None:  # lost already
            self._cut()
        else:
            self._closed.add_done_callback(self._cut)

    def __exit__(self, *_: object) -> None:
        # The connection may serve other requests after this one: leave nothing on it.
        if self._closed is not None:
            self._closed.remove_done_callback(self._cut)

    def _cut(self, _: object = None) -> None:
        if not self._content.is_eof():
            self._content.feed_eof()


# How long a finished answer's connection waits for the end of its body before it is
# closed instead of pooled: an upstream sends that end right after its last line, so only
# a broken one is still silent after this.
BODY_END_WITHIN = 0.25


async def await_body_end(content: aiohttp.StreamReader) -> None:
    """Wait, briefly, for the end of a body whose reader has what it wanted.

    A chunked body ends with an empty chunk that often arrives a moment after the
    answer's last line. A response released before that end is read cannot go back to
    the pool (aiohttp closes its connection), so the next request would pay for a new
    connection. Only the end is waited for: a body with more to say (the reader left
    early, e.g. its client is gone) or one silent for BODY_END_WITHIN is left to close.
    """
    if content.is_eof():
        return
    try:
        async with asyncio.timeout(BODY_END_WITHIN):
            await content.readany()  # b"" at the end; anything else means the body goes on
    except (TimeoutError, aiohttp.ClientError):
        pass

"""Reading the gateway's Server-Sent Events as the contract frames them."""

from __future__ import annotations

import json

from aiohttp import ClientResponse


def events(raw: bytes) -> list[dict]:
    """The JSON of every `data:` event; asserts each event is exactly one data line."""
    assert raw.endswith(b"\n\n")
    parsed = []
    for block in raw[:-2].split(b"\n\n"):
        if block.startswith(b":"):
            continue
        assert block.startswith(b"data: ") and b"\n" not in block, block
        parsed.append(json.loads(block[len(b"data: "):]))
    return parsed


async def next_block(response: ClientResponse) -> bytes:
    """The next SSE block (event or comment), read as it arrives."""
    lines = []
    while (line := await response.content.readline()) != b"\n":
        assert line, "stream ended mid-event"
        lines.append(line)
    return b"".join(lines)

"""What a cache entry holds: a whole answer as the client got it, without any request text.

A stream's entry keeps its tokens as the upstream sent them, so a hit replays the same
event boundaries. Entries carry the provider that first served them, for the answer's
`provider` field. Serialized with orjson; a value that does not decode is a miss.
"""

from __future__ import annotations

from typing import Any

import orjson
from attrs import frozen

from proxy.llm import ChatResult, EmbedResult, StreamEnd, Usage


def _usage(raw: Any) -> Usage | None:
    return None if raw is None else Usage(prompt_tokens=int(raw[0]), completion_tokens=int(raw[1]))


def _raw_usage(usage: Usage | None) -> list[int] | None:
    return None if usage is None else [usage.prompt_tokens, usage.completion_tokens]


@frozen
class CachedEmbeddings:
    provider: str
    result: EmbedResult

    def to_bytes(self) -> bytes:
        return orjson.dumps({"p": self.provider, "v": self.result.vectors, "t": self.result.prompt_tokens})

    @classmethod
    def from_bytes(cls, raw: bytes) -> CachedEmbeddings | None:
        try:
            data = orjson.loads(raw)
            return cls(data["p"], EmbedResult(vectors=tuple(data["v"]), prompt_tokens=int(data["t"])))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
            return None


@frozen
class CachedChat:
    provider: str
    result: ChatResult

    def to_bytes(self) -> bytes:
        r = self.result
        return orjson.dumps({"p": self.provider, "o": r.output, "u": _raw_usage(r.usage), "f": r.finish_reason})

    @classmethod
    def from_bytes(cls, raw: bytes) -> CachedChat | None:
        try:
            data = orjson.loads(raw)
            return cls(data["p"], ChatResult(output=data["o"], usage=_usage(data["u"]), finish_reason=data["f"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
            return None


@frozen
class CachedStream:
    provider: str
    tokens: tuple[str, ...]
    end: StreamEnd

    def to_bytes(self) -> bytes:
        return orjson.dumps({"p": self.provider, "k": self.tokens, "u": _raw_usage(self.end.usage),
                             "f": self.end.finish_reason})

    @classmethod
    def from_bytes(cls, raw: bytes) -> CachedStream | None:
        try:
            data = orjson.loads(raw)
            tokens = tuple(data["k"])
            if not all(isinstance(t, str) for t in tokens):
                return None
            return cls(data["p"], tokens, StreamEnd(usage=_usage(data["u"]), finish_reason=data["f"]))
        except (orjson.JSONDecodeError, KeyError, TypeError, ValueError, IndexError):
            return None

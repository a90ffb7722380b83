"""What serving one request came to: who served it, when its first token left, what it cost.

Handlers fill it in as they learn it; the access log and the metrics read it when the
request ends. It holds names and numbers only, never a prompt or an answer.
"""

from __future__ import annotations

import time

from attrs import define, field

from proxy.llm import Usage


@define
class Outcome:
    model: str | None = None
    provider: str | None = None
    # perf_counter() when the first token was sent to the client (streams only).
    first_token_at: float | None = None
    # provider -> [prompt tokens, completion tokens]: a batch can be served by several.
    tokens: dict[str, list[int]] = field(factory=dict)
    # "hit" or "miss" when the answer cache applied to the request (serving/answer_cache.py).
    cache: str | None = None

    def served(self, provider: str, usage: Usage | None = None) -> None:
        if self.provider is None:
            self.provider = provider
        if usage is not None:
            counts = self.tokens.setdefault(provider, [0, 0])
            counts[0] += usage.prompt_tokens
            counts[1] += usage.completion_tokens

    def first_token_sent(self) -> None:
        if self.first_token_at is None:
            self.first_token_at = time.perf_counter()

    @property
    def tokens_in(self) -> int:
        return sum(counts[0] for counts in self.tokens.values())

    @property
    def tokens_out(self) -> int:
        return sum(counts[1] for counts in self.tokens.values())

"""Model names as metric labels and usage-accounting keys, bounded.

Clients choose model names. A name becomes a label (and a field in the fleet's usage hash
in Redis) only once a backend has really served it, and at most MAX_MODELS of them per
process; anything else is counted as "other". Without this, a client could mint a new
time series, and a new never-expiring Redis field, per request: a request refused before
any answer is still charged its prompt under its key, or an upstream that answers any
name (llama.cpp does) would serve every invented one.
"""

from __future__ import annotations

MAX_MODELS = 256
OTHER = "other"


class ModelLabels:
    def __init__(self, limit: int = MAX_MODELS) -> None:
        self.limit = limit
        self._known: set[str] = set()

    def label(self, model: str | None, *, served: bool) -> str:
        """`model` if it may be a label; `served`: a backend answered for it this time."""
        if not model:
            return "none"
        if model in self._known:
            return model
        if served and len(self._known) < self.limit:
            self._known.add(model)
            return model
        return OTHER


MODEL_LABELS = ModelLabels()

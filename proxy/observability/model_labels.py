"""Model names as metric labels and usage-accounting keys, bounded.

Clients choose model names. A name becomes a label (and a field in the fleet's usage hash
in Redis) only once a backend has really served it, and at most MAX_MODELS of them per
process; anything else is counted as "other". Without this, a client could mint a new
time series, and a new never-expiring Redis field, per request: a request refused before
any answer is still charged its prompt under its key, or an upstream that answers any
name (llama.cpp does) would serve every invented one.

Each key may bring at most MAX_MODELS_PER_KEY of the names: one tenant whose upstream
answers any name cannot fill the budget and leave every other tenant's new models
counted as "other". A name once known is every key's.
"""

from __future__ import annotations

MAX_MODELS = 256
MAX_MODELS_PER_KEY = 32
OTHER = "other"


class ModelLabels:
    def __init__(self, limit: int = MAX_MODELS, per_key: int = MAX_MODELS_PER_KEY) -> None:
        self.limit = limit
        self.per_key = per_key
        self._known: set[str] = set()
        self._brought: dict[str, int] = {}  # names each key made labels

    def label(self, model: str | None, *, served: bool, key: str = "") -> str:
        """`model` if it may be a label; `served`: a backend answered for it this time;
        `key`: the tenant asking, whose share of the budget a new name takes."""
        if not model:
            return "none"
        if model in self._known:
            return model
        brought = self._brought.get(key, 0)
        if served and len(self._known) < self.limit and brought < self.per_key:
            self._known.add(model)
            self._brought[key] = brought + 1
            return model
        return OTHER


MODEL_LABELS = ModelLabels()

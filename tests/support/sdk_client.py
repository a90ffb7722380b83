"""Drives the real Octomil Python SDK against a gateway; run in the SDK's own environment.

    python sdk_client.py BASE_URL TOKEN

Prints one JSON object: what `stream_predict` (string and messages forms) and `embed`
returned. The SDK fetches a model catalogue at import time from OCTOMIL_API_BASE, so that
is pointed at the gateway before the import (it answers 404; nothing leaves the machine).
"""

import json
import os
import sys

base, token = sys.argv[1], sys.argv[2]
api_base = base.rstrip("/") + "/api/v1"
os.environ["OCTOMIL_API_BASE"] = api_base

from octomil import OctomilClient, OrgApiKeyAuth  # noqa: E402

client = OctomilClient(auth=OrgApiKeyAuth(api_key=token, org_id="default", api_base=api_base))
try:
    streamed = [
        {"token": t.token, "done": t.done, "provider": t.provider, "latency_ms": t.latency_ms}
        for t in client.stream_predict("gemma3:1b", "What is 2+2?", parameters={"max_tokens": 16}, timeout=30)
    ]
    chat = "".join(
        t.token for t in client.stream_predict("gemma3:1b", [{"role": "user", "content": "What is 2+2?"}], timeout=30)
    )
    embedded = client.embed("nomic-embed-text", ["The quick brown fox", "Ollama makes it easy"], timeout=30)
    print(json.dumps({
        "streamed": streamed,
        "chat": chat,
        "embeddings": [len(v) for v in embedded.embeddings],
        "first_values": [v[:3] for v in embedded.embeddings],
        "usage": {"prompt_tokens": embedded.usage.prompt_tokens, "total_tokens": embedded.usage.total_tokens},
    }))
finally:
    client.close()

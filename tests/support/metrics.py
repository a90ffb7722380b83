"""Reading the gateway's /metrics as Prometheus does, for the tests that count what it counted."""

from __future__ import annotations

from aiohttp.test_utils import TestClient
from prometheus_client.parser import text_string_to_metric_families

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def parse(text: str) -> Samples:
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


async def scrape(gateway: TestClient) -> Samples:
    response = await gateway.get("/metrics", headers={})  # no token: Prometheus scrapes without one
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return parse(await response.text())


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, frozenset(labels.items())), 0.0)

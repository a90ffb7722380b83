"""deploy/grafana/octomil-gateway.json: an importable dashboard whose every query parses as PromQL
and asks only for the gateway's documented metrics and labels, each the way its type allows.

The metric names and labels below are the ones documented for GET /metrics
(docs/observability.md), and a real gateway's /metrics answer is held to them too.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import promql_parser as promql
import pytest
from attrs import define, field
from prometheus_client.parser import text_string_to_metric_families
from yarl import URL

from tests.support.app import GatewayFactory, RunningUpstream
from tests.support.paths import ROOT

DASHBOARD = ROOT / "deploy" / "grafana" / "octomil-gateway.json"

COUNTERS = {
    "gateway_requests_total": {"route", "method", "status", "provider"},
    "gateway_tokens_total": {"provider", "model", "direction"},
    "gateway_upstream_errors_total": {"backend", "reason"},
    "gateway_fallbacks_total": {"backend", "reason"},
}
HISTOGRAMS = {
    "gateway_request_duration_seconds": {"route", "provider"},
    "gateway_time_to_first_token_seconds": {"route", "provider"},
}
GAUGES = {
    "gateway_requests_in_flight": set(),
    "gateway_backend_up": {"backend", "provider"},
    "gateway_backend_breaker_state": {"backend"},
}
# Added by Prometheus to every series it scrapes.
TARGET_LABELS = {"instance", "job"}
# What Grafana puts in place of its variables before the query is sent.
GRAFANA_VARIABLES = {"$__rate_interval": "5m", "$__interval": "1m", "$instance": ".*"}


def labels_of(series: str) -> set[str]:
    """The labels a series of that name carries, or KeyError if it is not documented."""
    for name, labels in HISTOGRAMS.items():
        if series == f"{name}_bucket":
            return labels | {"le"} | TARGET_LABELS
        if series in (f"{name}_sum", f"{name}_count"):
            return labels | TARGET_LABELS
    return {**COUNTERS, **GAUGES}[series] | TARGET_LABELS


def documented_metric(series: str) -> str:
    return re.sub(r"_(bucket|sum|count)$", "", series) if series not in COUNTERS | GAUGES else series


# --- reading the dashboard ----------------------------------------------------------------------


def dashboard() -> dict[str, Any]:
    return json.loads(DASHBOARD.read_text())  # type: ignore[no-any-return]


def all_panels() -> Iterator[dict[str, Any]]:
    for panel in dashboard()["panels"]:
        yield panel
        yield from panel.get("panels", [])  # panels inside a collapsed row


def expressions() -> list[str]:
    return [target["expr"] for panel in all_panels() for target in panel.get("targets", [])]


def grafana_free(expr: str) -> str:
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(variable, value)
    assert "$" not in expr, f"an unknown Grafana variable in {expr}"
    return expr


@define
class Use:
    """How one query uses series: each selector, and each aggregation's grouping labels."""

    selectors: list[tuple[str, set[str], bool]] = field(factory=list)  # (series, matcher labels, ranged)
    groupings: list[tuple[set[str], set[str]]] = field(factory=list)  # (grouping labels, series below)
    quantiles_over: list[set[str]] = field(factory=list)  # grouping labels inside histogram_quantile
    ranged_by: list[tuple[str, str]] = field(factory=list)  # (function, series) for range functions


def series_below(node: Any) -> set[str]:
    found = Use()
    walk(node, found)
    return {name for name, _, _ in found.selectors}


def walk(node: Any, use: Use) -> None:  # one branch per PromQL node type
    if isinstance(node, promql.VectorSelector):
        use.selectors.append((node.name, {m.name for m in node.matchers.matchers}, False))
    elif isinstance(node, promql.MatrixSelector):
        selector = node.vector_selector
        use.selectors.append((selector.name, {m.name for m in selector.matchers.matchers}, True))
    elif isinstance(node, promql.AggregateExpr):
        if node.modifier is not None:
            use.groupings.append((set(node.modifier.labels), series_below(node.expr)))
        walk(node.expr, use)
    elif isinstance(node, promql.Call):
        if node.func.name == "histogram_quantile":
            inner = node.args[1]
            use.quantiles_over.append(set(inner.modifier.labels) if isinstance(inner, promql.AggregateExpr)
                                      and inner.modifier is not None else set())
        for arg in node.args:
            if isinstance(arg, promql.MatrixSelector):
                use.ranged_by.append((node.func.name, arg.vector_selector.name))
            walk(arg, use)
    elif isinstance(node, promql.BinaryExpr):
        walk(node.lhs, use)
        walk(node.rhs, use)
    elif isinstance(node, promql.ParenExpr | promql.UnaryExpr | promql.SubqueryExpr):
        walk(node.expr, use)


def uses() -> list[tuple[str, Use]]:
    found = []
    for expr in expressions():
        use = Use()
        walk(promql.parse(grafana_free(expr)), use)  # raises on anything that is not PromQL
        found.append((expr, use))
    return found


# --- the tests ----------------------------------------------------------------------------------


def test_every_query_asks_for_documented_series_and_labels_only() -> None:
    for expr, use in uses():
        assert use.selectors, expr
        for series, matched, _ in use.selectors:
            try:
                allowed = labels_of(series)
            except KeyError:
                pytest.fail(f"{series} is not a documented metric (in {expr})")
            assert matched <= allowed, f"{series} has no label(s) {matched - allowed} (in {expr})"
        for grouping, below in use.groupings:
            allowed = set().union(*(labels_of(s) for s in below))
            assert grouping <= allowed, f"grouping by {grouping - allowed}, which {below} do not carry (in {expr})"


def test_every_documented_metric_is_on_the_dashboard() -> None:
    shown = {documented_metric(series) for _, use in uses() for series, _, _ in use.selectors}
    assert shown == set(COUNTERS) | set(HISTOGRAMS) | set(GAUGES)


def test_traffic_panels_leave_out_scrapes_and_probes() -> None:
    """Prometheus's own scrapes and the kubelet's probes are steady traffic of their own:
    counted in, they would hide a quiet gateway's real request rate and dilute its error ratio."""
    traffic = re.compile(r"(gateway_requests_total|gateway_request_duration_seconds_bucket)\{([^}]*)\}")
    found = 0
    for expr, _ in uses():
        for _, matchers in traffic.findall(expr):
            found += 1
            assert 'route!~"/metrics|/livez|/readyz"' in matchers, expr
    assert found >= 9  # the request rate, error ratios, routes, providers and latency panels


def test_counters_and_histograms_are_read_as_rates_and_gauges_as_values() -> None:
    for expr, use in uses():
        for series, _, ranged in use.selectors:
            if series in GAUGES:
                assert not ranged, f"gauge {series} read over a range (in {expr})"
            else:  # a raw counter only ever grows, and restarts at zero: meaningless on a graph
                assert ranged, f"{series} not read through rate() (in {expr})"
        for function, series in use.ranged_by:
            assert function in {"rate", "increase"}, f"{function}({series}) (in {expr})"


def test_quantiles_come_from_buckets_aggregated_by_le() -> None:
    quantile_queries = [(expr, use) for expr, use in uses() if use.quantiles_over]
    assert quantile_queries
    for expr, use in quantile_queries:
        assert all("le" in grouping for grouping in use.quantiles_over), expr
        assert all(series.endswith("_bucket") for series, _, _ in use.selectors), expr


def test_the_dashboard_asks_for_its_prometheus_and_every_panel_uses_it() -> None:
    board = dashboard()
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert (variables["datasource"]["type"], variables["datasource"]["query"]) == ("datasource", "prometheus")
    for panel in all_panels():
        if panel["type"] == "row":
            continue
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], panel["title"]
        assert len({t["refId"] for t in panel["targets"]}) == len(panel["targets"]), panel["title"]
    instance = variables["instance"]
    assert instance["datasource"]["uid"] == "${datasource}"
    # Offered from a series every gateway exports from its start, before any request.
    series, label = re.fullmatch(r"label_values\((\w+), *(\w+)\)", instance["query"]["query"]).groups()
    assert series in GAUGES and not GAUGES[series]
    assert label in labels_of(series)


def test_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = list(all_panels())
    assert len({p["id"] for p in panels}) == len(panels)
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {(grid["x"] + dx, grid["y"] + dy) for dx in range(grid["w"]) for dy in range(grid["h"])}
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


async def test_the_documented_metrics_are_what_a_real_gateway_exports(
    make_gateway: GatewayFactory, openai: RunningUpstream, dead_url: URL,
) -> None:
    # Ollama unreachable, the OpenAI test server serving: one stream moves every metric.
    gateway = await make_gateway(ollama_base_url=dead_url, openai_endpoint=openai.url)
    response = await gateway.post("/api/v1/inference/stream", json={"model_id": "gpt-test", "input_data": "hi"})
    await response.read()
    scraped = await gateway.get("/metrics", headers={})
    exported = {family.name: family for family in text_string_to_metric_families(await scraped.text())}
    kinds = {**dict.fromkeys(COUNTERS, "counter"), **dict.fromkeys(HISTOGRAMS, "histogram"),
             **dict.fromkeys(GAUGES, "gauge")}
    for name, kind in kinds.items():
        family = exported.get(name.removesuffix("_total"))  # the parser names counters without _total
        assert family is not None, f"{name} is not exported"
        assert family.type == kind, name
        assert family.samples, name
        for sample in family.samples:
            assert set(sample.labels) == labels_of(sample.name) - TARGET_LABELS, sample

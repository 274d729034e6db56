"""docs/grafana/xmargin.json only queries metrics the code exports (API and daemon)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from aggregator.api.metrics import ApiMetrics
from aggregator.ops.metrics import DaemonMetrics
from chains.endpoints import EndpointHealth

DASHBOARD = Path(__file__).resolve().parents[3] / "docs" / "grafana" / "xmargin.json"
_SUFFIXES = {
    "counter": ("_total", "_created"),
    "gauge": ("",),
    "histogram": ("_bucket", "_count", "_sum", "_created"),
    "summary": ("", "_count", "_sum", "_created"),
    "info": ("_info",),
}
_KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "offset"}
_KEYWORDS |= {"and", "or", "unless", "inf", "nan"}
# Aggregation operators may be followed by a grouping clause instead of "(".
_KEYWORDS |= {"sum", "min", "max", "avg", "count", "group", "stddev", "stdvar", "topk"}
_KEYWORDS |= {"bottomk", "quantile", "count_values", "limitk", "limit_ratio"}


def exported_names(*registries: CollectorRegistry) -> set[str]:
    names: set[str] = set()
    for registry in registries:
        for family in registry.collect():
            names |= {family.name + suffix for suffix in _SUFFIXES[family.type]}
    return names


def metric_names(expr: str) -> set[str]:
    """The series names a PromQL expression selects: identifiers that are not functions,
    keywords, label names (inside braces or grouping clauses), numbers or durations."""
    expr = re.sub(r"\$\{?\w+\}?", "1m", expr)  # Grafana variables ($__rate_interval)
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # label values
    expr = re.sub(r"\{[^}]*\}", "", expr)  # label matchers
    expr = re.sub(r"\[[^\]]*\]", "", expr)  # ranges and subqueries
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", r"\1", expr)
    names = set()
    for match in re.finditer(r"(?<![\w.])[A-Za-z_:][\w:]*", expr):
        name = match.group(0)
        if name in _KEYWORDS or re.match(r"\s*\(", expr[match.end() :]):
            continue
        names.add(name)
    return names


def _panels(items: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for item in items:
        yield item
        yield from _panels(item.get("panels", []))


def test_parser_reads_names_out_of_promql() -> None:
    assert metric_names(
        'histogram_quantile(0.95, sum by (chain, le) (rate(a_bucket{x="y{z}"}[$__rate_interval])))'
        " / clamp_min(b_total offset 5m, 1e-9) > bool 2"
    ) == {"a_bucket", "b_total"}


def test_every_panel_queries_only_exported_metrics() -> None:
    daemon = DaemonMetrics()
    daemon.watch_endpoints(lambda: {"c": {"http://h": EndpointHealth("http://h")}})
    exported = exported_names(daemon.registry, ApiMetrics().registry)
    dashboard = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    used: set[str] = set()
    graphs = [p for p in _panels(dashboard["panels"]) if p["type"] != "row"]
    assert len(graphs) >= 15
    for panel in graphs:
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            names = metric_names(target["expr"])
            assert names, (panel["title"], target["expr"])
            unknown = names - exported
            assert not unknown, f"panel {panel['title']!r} uses unexported {sorted(unknown)}"
            used |= names
    # The list: each of these is on the dashboard.
    for wanted in (
        "xmargin_poll_duration_seconds_bucket",
        "xmargin_rpc_requests_total",
        "xmargin_rpc_errors_total",
        "xmargin_head_age_seconds",
        "xmargin_head_height",
        "xmargin_reorgs_total",
        "xmargin_users_by_status",
        "xmargin_publish_duration_seconds_bucket",
        "xmargin_published_users",
        "xmargin_alert_deliveries_total",
    ):
        assert wanted in used, wanted

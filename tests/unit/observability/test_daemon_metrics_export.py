"""The daemon's registry: per-endpoint requests and errors, head age, reorgs, statuses."""

from __future__ import annotations

import time

from prometheus_client import generate_latest

from aggregator.ops.metrics import DaemonMetrics, endpoint_labels
from chains.endpoints import EndpointHealth


def test_endpoint_counts_come_from_the_health_records_with_keys_stripped() -> None:
    primary = EndpointHealth("https://eth.example/v2/SECRETKEY")
    backup = EndpointHealth("https://eth.example/v3/OTHERKEY")
    for _ in range(5):
        primary.record_success(0.01)
    primary.record_failure("timeout", 2.0)
    backup.record_success(0.02)
    health = {"ethereum": {primary.url: primary, backup.url: backup}}
    metrics = DaemonMetrics()
    metrics.watch_endpoints(lambda: health)
    sample = metrics.registry.get_sample_value
    first = {"chain": "ethereum", "endpoint": "https://eth.example"}
    second = {"chain": "ethereum", "endpoint": "https://eth.example#2"}
    assert sample("xmargin_rpc_requests_total", first) == 6
    assert sample("xmargin_rpc_errors_total", first) == 1
    assert sample("xmargin_rpc_endpoint_healthy", first) == 0
    assert sample("xmargin_rpc_requests_total", second) == 1
    assert sample("xmargin_rpc_errors_total", second) == 0
    # Read at scrape time: later requests show without any call into the metrics.
    primary.record_success(0.01)
    assert sample("xmargin_rpc_requests_total", first) == 7
    assert sample("xmargin_rpc_endpoint_healthy", first) == 1
    assert b"KEY" not in generate_latest(metrics.registry)


def test_head_age_reorgs_and_users_per_status() -> None:
    metrics = DaemonMetrics()
    metrics.record_head_time("base", time.time() - 30)
    metrics.record_reorg("base")
    metrics.record_reorg("base", 2)
    metrics.record_status_counts({"healthy": 7, "margin_call": 2}, stale=1)
    sample = metrics.registry.get_sample_value
    age = sample("xmargin_head_age_seconds", {"chain": "base"})
    assert age is not None and 30 <= age < 35
    assert sample("xmargin_reorgs_total", {"chain": "base"}) == 3
    assert sample("xmargin_users_by_status", {"status": "healthy"}) == 7
    assert sample("xmargin_users_by_status", {"status": "margin_call"}) == 2
    assert sample("xmargin_users_by_status", {"status": "liquidatable"}) == 0
    assert sample("xmargin_users_stale") == 1


def test_endpoint_labels() -> None:
    assert endpoint_labels(["http://127.0.0.1:8545", "https://a.example/k?x=1"]) == {
        "http://127.0.0.1:8545": "http://127.0.0.1:8545",
        "https://a.example/k?x=1": "https://a.example",
    }

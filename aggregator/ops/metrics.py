"""The daemon's Prometheus metrics (polls, endpoints, heads, publishes, statuses, alerts), in a
registry of its own.

`xmargin run` records them from its jobs; when the API runs in the same process they are
exported on its `/metrics` beside the API's own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Mapping
from urllib.parse import urlsplit

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from aggregator.polling import ChainPollResult
from aggregator.publish import PublishReport
from chains.endpoints import EndpointHealth


class DaemonMetrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.poll_duration = Histogram(
            "xmargin_poll_duration_seconds",
            "Duration of one poll of a chain",
            ["chain"],
            buckets=(0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60),
            registry=self.registry,
        )
        self.polls = Counter(
            "xmargin_polls",
            "Polls by chain and outcome (ok, failed, skipped)",
            ["chain", "outcome"],
            registry=self.registry,
        )
        self.poll_requests = Counter(
            "xmargin_poll_requests",
            "RPC requests made by polls",
            ["chain"],
            registry=self.registry,
        )
        self.head_height = Gauge(
            "xmargin_head_height",
            "Block or slot of the newest good poll",
            ["chain"],
            registry=self.registry,
        )
        self.last_good_poll = Gauge(
            "xmargin_last_good_poll_timestamp_seconds",
            "Unix time of the newest good poll",
            ["chain"],
            registry=self.registry,
        )
        self.publish_duration = Histogram(
            "xmargin_publish_duration_seconds",
            "Duration of one publish pass",
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.published_users = Gauge(
            "xmargin_published_users",
            "Users valued by the last publish pass",
            registry=self.registry,
        )
        self.changed_users = Counter(
            "xmargin_status_changes",
            "Material status changes written (history rows)",
            registry=self.registry,
        )
        # --- issue 10: chains, statuses, alerts -------------------------------------------
        self.reorgs = Counter(
            "xmargin_reorgs_total",
            "Stored heads found orphaned (their hash no longer canonical)",
            ["chain"],
            registry=self.registry,
        )
        self.heads_refused = Counter(
            "xmargin_heads_refused",
            "Polls refused because the endpoint's head was lower than the stored one",
            ["chain", "endpoint"],
            registry=self.registry,
        )
        self.users_by_status = Gauge(
            "xmargin_users_by_status",
            "Users per published status after the last publish pass",
            ["status"],
            registry=self.registry,
        )
        self.stale_users = Gauge(
            "xmargin_users_stale",
            "Users whose last published status is stale",
            registry=self.registry,
        )
        self.alert_deliveries = Counter(
            "xmargin_alert_deliveries",
            "Webhook POSTs by webhook and outcome (delivered, failed)",
            ["webhook", "outcome"],
            registry=self.registry,
        )
        self.alert_delivery_duration = Histogram(
            "xmargin_alert_delivery_duration_seconds",
            "Duration of one webhook POST (bounded by alerts.timeout_seconds)",
            ["webhook"],
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
            registry=self.registry,
        )
        self.alerts_pending = Gauge(
            "xmargin_alerts_pending",
            "Alert events not yet acknowledged by their receiver",
            registry=self.registry,
        )
        self.alert_oldest_pending = Gauge(
            "xmargin_alert_oldest_pending_age_seconds",
            "Age of the oldest unacknowledged alert event (0 when none)",
            registry=self.registry,
        )
        self._head_times: dict[str, float] = {}
        self.registry.register(_HeadAgeCollector(self._head_times))

    def record_poll(self, result: ChainPollResult) -> None:
        outcome = "skipped" if result.skipped else "ok" if result.ok else "failed"
        self.polls.labels(result.chain, outcome).inc()
        if result.skipped:
            return
        self.poll_duration.labels(result.chain).observe(result.duration_ms / 1000)
        self.poll_requests.labels(result.chain).inc(result.request_count)
        if result.orphaned_heads:  # reorg safety (polling.py): heads this poll orphaned
            self.record_reorg(result.chain, result.orphaned_heads)
        if result.refused:
            self.heads_refused.labels(result.chain, result.endpoint or "").inc()
        if result.ok and result.height is not None:
            self.head_height.labels(result.chain).set(result.height)
            self.last_good_poll.labels(result.chain).set(time.time())

    def record_reorg(self, chain: str, heads: int = 1) -> None:
        """Count `heads` stored heads of `chain` found orphaned by a reorg."""
        self.reorgs.labels(chain).inc(heads)

    def record_head_time(self, chain: str, block_timestamp: float) -> None:
        """Remember the newest good head's block time; its age is computed at each scrape."""
        self._head_times[chain] = block_timestamp

    def record_status_counts(self, counts: Mapping[str, int], stale: int) -> None:
        """Users per status after a pass (statuses absent from `counts` are set to 0)."""
        for status in ("healthy", "warning", "margin_call", "liquidatable", *counts):
            self.users_by_status.labels(status).set(counts.get(status, 0))
        self.stale_users.set(stale)

    def record_delivery(self, webhook: str, delivered: bool, seconds: float) -> None:
        self.alert_deliveries.labels(webhook, "delivered" if delivered else "failed").inc()
        self.alert_delivery_duration.labels(webhook).observe(seconds)

    def record_alert_backlog(self, pending: int, oldest_pending_seconds: float | None) -> None:
        self.alerts_pending.set(pending)
        self.alert_oldest_pending.set(oldest_pending_seconds or 0)

    def watch_endpoints(
        self, endpoints: Callable[[], Mapping[str, Mapping[str, EndpointHealth]]]
    ) -> None:
        """Export requests and errors per chain and endpoint from the adapters' endpoint
        health records: `endpoints()` gives chain → URL → record, read at each scrape."""
        self.registry.register(_EndpointCollector(endpoints))

    def record_publish(self, report: PublishReport, seconds: float) -> None:
        if report.skipped:
            return
        self.publish_duration.observe(seconds)
        self.published_users.set(report.users)
        self.changed_users.inc(report.changed)


def endpoint_label(url: str) -> str:
    """An endpoint as a metric label or log field: scheme, host and port only. Provider URLs
    carry API keys in their path or query (`/v2/<key>`), which must never be exported."""
    parts = urlsplit(url)
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}" + (f":{parts.port}" if parts.port else "")


def endpoint_labels(urls: list[str]) -> dict[str, str]:
    """URL → label for one chain's endpoints; two on the same host get `#2`, `#3`..."""
    labels: dict[str, str] = {}
    seen: dict[str, int] = {}
    for url in urls:
        base = endpoint_label(url)
        seen[base] = seen.get(base, 0) + 1
        labels[url] = base if seen[base] == 1 else f"{base}#{seen[base]}"
    return labels


class _EndpointCollector(Collector):
    def __init__(self, endpoints: Callable[[], Mapping[str, Mapping[str, EndpointHealth]]]) -> None:
        self._endpoints = endpoints

    def collect(self) -> Iterator[Metric]:
        requests = CounterMetricFamily(
            "xmargin_rpc_requests",
            "RPC requests sent, by chain and endpoint (answered or not)",
            labels=["chain", "endpoint"],
        )
        errors = CounterMetricFamily(
            "xmargin_rpc_errors",
            "RPC requests that failed, by chain and endpoint",
            labels=["chain", "endpoint"],
        )
        healthy = GaugeMetricFamily(
            "xmargin_rpc_endpoint_healthy",
            "1 when the endpoint's last request succeeded (or none was sent)",
            labels=["chain", "endpoint"],
        )
        for chain, records in self._endpoints().items():
            labels = endpoint_labels(list(records))
            for url, record in records.items():
                label = [chain, labels[url]]
                requests.add_metric(label, record.successes + record.failures)
                errors.add_metric(label, record.failures)
                healthy.add_metric(label, 1 if record.healthy else 0)
        yield requests
        yield errors
        yield healthy

    def describe(self) -> Iterator[Metric]:
        return iter(())


class _HeadAgeCollector(Collector):
    def __init__(self, head_times: Mapping[str, float]) -> None:
        self._head_times = head_times

    def collect(self) -> Iterator[Metric]:
        age = GaugeMetricFamily(
            "xmargin_head_age_seconds",
            "Seconds since the block time of the newest good head, by chain",
            labels=["chain"],
        )
        now = time.time()
        for chain, block_timestamp in sorted(self._head_times.items()):
            age.add_metric([chain], max(0.0, now - block_timestamp))
        yield age

    def describe(self) -> Iterator[Metric]:
        return iter(())

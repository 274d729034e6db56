"""The API's Prometheus metrics, in a registry of its own (nothing global, nothing at import)."""

from __future__ import annotations

import time

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send


class ApiMetrics:
    """Request counts and latency per route, and the live stream's clients."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "xmargin_http_requests",
            "HTTP requests served, by route template, method and status code",
            ["route", "method", "status"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "xmargin_http_request_duration_seconds",
            "Time to serve an HTTP request (to the end of the response; streams excluded)",
            ["route", "method"],
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5),
            registry=self.registry,
        )
        self.stream_clients = Gauge(
            "xmargin_stream_clients",
            "Clients connected to GET /v1/stream",
            registry=self.registry,
        )
        self.stream_events = Counter(
            "xmargin_stream_events",
            "Status events queued to stream clients",
            registry=self.registry,
        )
        self.stream_dropped = Counter(
            "xmargin_stream_clients_dropped",
            "Stream clients dropped because they fell too far behind",
            registry=self.registry,
        )
        self.status_cache = Counter(
            "xmargin_status_cache_lookups",
            "Status reads served from the in-process cache (hit) or the database (miss)",
            ["result"],
            registry=self.registry,
        )


class MetricsMiddleware:
    """Counts and times every HTTP request by its route template (`/v1/users/{user}/margin`),
    so the label set stays bounded whatever paths clients send."""

    def __init__(self, app: ASGIApp, metrics: ApiMetrics) -> None:
        self.app = app
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = [500]

        async def send_wrapper(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            method = str(scope.get("method", ""))
            self.metrics.requests.labels(template, method, str(status[0])).inc()
            if template != "/v1/stream":
                self.metrics.latency.labels(template, method).observe(time.perf_counter() - started)

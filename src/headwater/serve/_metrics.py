"""The model server's Prometheus metrics: requests, latency, errors, per model version and
variant; recommendations shown and the interactions that follow them (click-through); shadow
comparisons. One registry per server, served at ``GET /metrics`` with headwater's own
(:func:`headwater.monitor.process_registry`)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

#: Latency buckets (seconds): fine below 10 ms, where a recommendation server lives.
BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.015, 0.025, 0.05, 0.1, 0.25,
           0.5, 1.0, 2.5)


class ServerMetrics:
    """The metrics of one server (its own registry, so several servers in a process coexist)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        labels = ["route", "model", "version", "variant"]
        self.requests = Counter("headwater_serve_requests", "Requests by route, model version, "
                                "variant and status code.", [*labels, "status"],
                                registry=self.registry)
        self.latency = Histogram("headwater_serve_request_seconds", "Request latency.", labels,
                                 buckets=BUCKETS, registry=self.registry)
        self.errors = Counter("headwater_serve_errors", "Requests answered 4xx or 5xx, by kind "
                              "(client or server).", [*labels, "kind"], registry=self.registry)
        self.shown = Counter("headwater_serve_recommendations_shown", "Recommendation lists "
                             "served, per model version and variant.",
                             ["model", "version", "variant"], registry=self.registry)
        self.followed = Counter("headwater_serve_recommendations_followed", "Interactions with "
                                "an item of the list the user was last shown (click-through = "
                                "followed / shown).", ["model", "version", "variant", "event"],
                                registry=self.registry)
        self.interactions = Counter("headwater_serve_interactions", "Interactions accepted.",
                                    ["event"], registry=self.registry)
        self.shadow = Histogram("headwater_serve_shadow_agreement", "Shadow model vs served "
                                "answer: share of the same items (recommendations) or the same "
                                "decision (predictions).", ["model", "version"],
                                buckets=(0.0, 0.2, 0.4, 0.6, 0.8, 0.9, 1.0),
                                registry=self.registry)
        self.shadow_latency = Histogram("headwater_serve_shadow_seconds", "Shadow scoring time.",
                                        ["model", "version"], buckets=BUCKETS,
                                        registry=self.registry)
        self.reloads = Counter("headwater_serve_reloads", "Hot reloads after an alias moved.",
                               ["model", "variant"], registry=self.registry)
        self.refreshes = Counter("headwater_serve_refreshes", "Periodic refreshes of a "
                                 "recommender from the interaction log.", ["model", "variant"],
                                 registry=self.registry)
        self.version = Gauge("headwater_serve_model_version", "The version each variant serves.",
                             ["model", "variant"], registry=self.registry)

"""Prometheus metrics of the daemon, on a registry of its own (so tests and embedding never collide).

Everything is initialised at start (so dashboards see zeros, not gaps): reconciles by result and their
duration, drift by reason, actions by op and outcome, queue depth, engine and map errors, image updates and
rollbacks.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.reconciles = Counter("reconciler_reconciles", "Reconciles by result.", ["result"], registry=r)
        self.reconcile_seconds = Histogram(
            "reconciler_reconcile_duration_seconds",
            "Duration of one reconcile.",
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.drift = Counter("reconciler_drift", "Drift found, by reason.", ["reason"], registry=r)
        self.actions = Counter(
            "reconciler_actions", "Actions executed, by op and outcome.", ["op", "outcome"], registry=r
        )
        self.queue_depth = Gauge("reconciler_queue_depth", "Keys waiting in the work queue.", registry=r)
        self.engine_errors = Counter("reconciler_engine_errors", "Failed engine calls and disconnects.", registry=r)
        self.map_errors = Counter("reconciler_map_errors", "Map files that failed to load.", registry=r)
        self.updates = Counter("reconciler_image_updates", "Containers recreated for a new image.", registry=r)
        self.rollbacks = Counter("reconciler_rollbacks", "Image updates rolled back.", registry=r)
        self.managed = Gauge("reconciler_managed_containers", "Containers in the loaded maps.", registry=r)
        self.engine_requests = Gauge("reconciler_engine_requests", "Engine API requests made so far.", registry=r)
        self.engine_up = Gauge("reconciler_engine_up", "1 while the engine's event stream is connected.", registry=r)
        self.notifications = Counter(
            "reconciler_notifications",
            "Notification messages by outcome (sent, failed, dropped).",
            ["outcome"],
            registry=r,
        )
        self.webhooks = Counter(
            "reconciler_webhook_requests",
            "Webhook requests (accepted, unsigned, bad_signature).",
            ["result"],
            registry=r,
        )
        self.git_fetches = Counter("reconciler_git_fetches", "git fetches by result.", ["result"], registry=r)
        self.git_commit = Gauge(
            "reconciler_git_commit", "1 for the git commit whose maps are in force.", ["commit"], registry=r
        )
        for result in ("accepted", "unsigned", "bad_signature"):
            self.webhooks.labels(result)
        for result in ("ok", "failed", "blocked"):
            self.reconciles.labels(result)
        for outcome in ("sent", "failed", "dropped"):
            self.notifications.labels(outcome)

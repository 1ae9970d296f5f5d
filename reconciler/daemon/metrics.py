"""Prometheus metrics of the daemon, on a registry of its own (so tests and embedding never collide).

Everything is initialised at start (so dashboards see zeros, not gaps): reconciles by result and their
duration, drift by reason, actions by op and outcome, queue depth, engine and map errors, image updates and
rollbacks. Every metric is labelled `client` (docker-map's client: one engine; `__default__` with one engine):
`Metrics` holds the families, `Metrics.client(name)` is one client's view of them with the same attribute
names, which is what a controller is given.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from reconciler.plan.naming import DEFAULT_CLIENT


class _Bound:
    """One family with its `client` label already given: `.labels(result)`, `.inc()`, `.set(…)`, …"""

    def __init__(self, family: Any, client: str) -> None:
        self.family, self.client = family, client

    def labels(self, *values: str) -> Any:
        return self.family.labels(self.client, *values)

    def inc(self, amount: float = 1) -> None:
        self.family.labels(self.client).inc(amount)

    def set(self, value: float) -> None:
        self.family.labels(self.client).set(value)

    def observe(self, value: float) -> None:
        self.family.labels(self.client).observe(value)

    def set_function(self, func: Callable[[], float]) -> None:
        self.family.labels(self.client).set_function(func)


class ClientMetrics:
    """One client's metrics (what a controller updates)."""

    def __init__(self, metrics: Metrics, client: str) -> None:
        self.registry = metrics.registry
        for name in metrics.FAMILIES:
            setattr(self, name, _Bound(getattr(metrics, name), client))
        for result in ("ok", "failed", "blocked"):
            self.reconciles.labels(result)
        for plain in ("reconcile_seconds", "queue_depth", "engine_errors", "map_errors", "updates", "rollbacks"):
            getattr(metrics, plain).labels(client)
        metrics.managed.labels(client)
        metrics.engine_up.labels(client)
        metrics.paused.labels(client)

    reconciles: _Bound
    reconcile_seconds: _Bound
    drift: _Bound
    actions: _Bound
    queue_depth: _Bound
    engine_errors: _Bound
    map_errors: _Bound
    updates: _Bound
    rollbacks: _Bound
    managed: _Bound
    engine_requests: _Bound
    engine_up: _Bound
    paused: _Bound
    maps_broken: _Bound


class Metrics:
    FAMILIES = (
        "reconciles",
        "reconcile_seconds",
        "drift",
        "actions",
        "queue_depth",
        "engine_errors",
        "map_errors",
        "updates",
        "rollbacks",
        "managed",
        "engine_requests",
        "engine_up",
        "paused",
        "maps_broken",
    )

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r, c = self.registry, ["client"]
        self.reconciles = Counter("reconciler_reconciles", "Reconciles by result.", [*c, "result"], registry=r)
        self.reconcile_seconds = Histogram(
            "reconciler_reconcile_duration_seconds",
            "Duration of one reconcile.",
            c,
            registry=r,
            buckets=(0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120),
        )
        self.drift = Counter("reconciler_drift", "Drift found, by reason.", [*c, "reason"], registry=r)
        self.actions = Counter(
            "reconciler_actions", "Actions executed, by op and outcome.", [*c, "op", "outcome"], registry=r
        )
        self.queue_depth = Gauge("reconciler_queue_depth", "Keys waiting in the work queue.", c, registry=r)
        self.engine_errors = Counter("reconciler_engine_errors", "Failed engine calls and disconnects.", c, registry=r)
        self.map_errors = Counter("reconciler_map_errors", "Map files that failed to load.", c, registry=r)
        self.updates = Counter("reconciler_image_updates", "Containers recreated for a new image.", c, registry=r)
        self.rollbacks = Counter("reconciler_rollbacks", "Image updates rolled back.", c, registry=r)
        self.managed = Gauge("reconciler_managed_containers", "Containers in the loaded maps.", c, registry=r)
        self.engine_requests = Gauge("reconciler_engine_requests", "Engine API requests made so far.", c, registry=r)
        self.engine_up = Gauge("reconciler_engine_up", "1 while the engine's event stream is connected.", c, registry=r)
        self.paused = Gauge("reconciler_paused_containers", "Containers a person paused (not healed).", c, registry=r)
        self.maps_broken = Gauge(
            "reconciler_maps_broken", "1 while a map file fails to load (per file).", [*c, "file"], registry=r
        )

    def client(self, name: str = DEFAULT_CLIENT) -> ClientMetrics:
        return ClientMetrics(self, name)

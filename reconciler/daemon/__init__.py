"""The long-running controller: work queue, reconcile loop over a cached engine view, signals, systemd
notify, health and metrics endpoints."""

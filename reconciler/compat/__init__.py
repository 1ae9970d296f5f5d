"""docker-map's Python API on reconciler's engine; import it from `reconciler.api`."""

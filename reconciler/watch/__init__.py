"""Noticing change: the map-file watcher and the Docker events stream. Both produce keys, never work."""

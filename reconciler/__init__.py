"""reconciler: keeps the containers on a Docker host exactly as docker-map container maps describe them.

Layout (observe → plan → execute, DESIGN §5): `model` (the map format), `plan` (desired state, drift,
actions; pure), `executor` (the only code that talks to the engine), `watch` and `daemon` (the long-running
controller), `cli` and `api` (the two front doors).
"""

__version__ = "0.1.0"

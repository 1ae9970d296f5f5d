"""The executor's defaults, in a module of their own so that the command line can show them as option
defaults without importing the executor (and with it the docker SDK) for commands that never use it."""

DEFAULT_CONCURRENCY = 8  # what a cold apply measures fastest at here (bench/cold_bench.py: 4, 8 and 16 tried)
DEFAULT_HEALTH_GATE = 60.0
MAX_PARALLEL = 64  # the most actions `apply -j` runs at once
# Connections kept to one engine: every action that may run at once, and observation's readers beside them
# (a connection is opened only when one is needed, so a large pool costs nothing until it is used).
POOL_SIZE = MAX_PARALLEL + 8

"""The executor's defaults, in a module of their own so that the command line can show them as option
defaults without importing the executor (and with it the docker SDK) for commands that never use it."""

DEFAULT_CONCURRENCY = 8  # what a cold apply measures fastest at here (bench/cold_bench.py: 4, 8 and 16 tried)
DEFAULT_HEALTH_GATE = 60.0

"""The executor's defaults, in a module of their own so that the command line can show them as option
defaults without importing the executor (and with it the docker SDK) for commands that never use it."""

DEFAULT_CONCURRENCY = 4
DEFAULT_HEALTH_GATE = 60.0

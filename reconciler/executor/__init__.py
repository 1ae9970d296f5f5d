"""Doing it: the only package that talks to the Docker engine (a typed port, idempotent actions, retries
with backoff for retryable errors only, a timeout on every call, bounded parallelism)."""

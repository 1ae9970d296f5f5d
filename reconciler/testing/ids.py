"""Engine ids for the fake: 64 hex digits, stable for the same parts (so two syntheses give equal JSON)."""

from __future__ import annotations

import hashlib


def hex_id(*parts: str) -> str:
    """A 64-hex-digit engine id, stable for the same parts."""
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()


def image_id(ref: str) -> str:
    return f"sha256:{hex_id('image', ref)}"


def container_id(name: str) -> str:
    return hex_id("container", name)

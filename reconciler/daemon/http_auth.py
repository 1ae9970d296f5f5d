"""Who may ask the status server what: the loopback rule, the bearer token, webhook signatures.

DESIGN §7: on a non-loopback address everything but `/healthz` and `/readyz` needs
`Authorization: Bearer <http_token>`, and the daemon refuses to start there without a token. Once a token
is configured it is required on loopback too (one rule, whatever the address). Tokens and signatures are
compared in constant time (`hmac.compare_digest`), and no function here puts a token into a message.

Pure functions (no sockets); `server.py` applies them to requests, `run.py` to the settings at start.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from pathlib import Path

from pydantic import SecretStr

OPEN_PATHS = frozenset({"/healthz", "/readyz"})
"""Answered without a token on any address: probes (load balancers, container HEALTHCHECKs) carry none."""


class HttpConfigError(ValueError):
    """The HTTP settings cannot be used safely (the daemon refuses to start); the message holds no secret."""


def is_loopback(host: str) -> bool:
    """True when `host` only ever reaches this machine: `localhost` or a loopback IP (127.0.0.0/8, ::1).

    Wildcards (`0.0.0.0`, `::`), other addresses and other names (which may resolve anywhere) are not.
    """
    host = host.strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped.is_loopback
    return address.is_loopback


def constant_time_equal(given: str | bytes, expected: str | bytes) -> bool:
    """Compare a secret with what a client sent without leaking, by timing, how much of it matched."""
    a = given.encode() if isinstance(given, str) else given
    b = expected.encode() if isinstance(expected, str) else expected
    return hmac.compare_digest(a, b)


def bearer_ok(authorization: bytes | None, token: bytes) -> bool:
    """Does an `Authorization` header value carry exactly this bearer token? (constant time in the token)"""
    if authorization is None:
        return False
    scheme, _, credentials = authorization.strip().partition(b" ")
    if scheme.lower() != b"bearer":
        return False
    return constant_time_equal(credentials.strip(), token)


def signature_ok(secret: bytes, body: bytes, header: bytes | str | None) -> bool:
    """Check a webhook's `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the body>` in constant time."""
    if header is None:
        return False
    value = header.encode() if isinstance(header, str) else header
    algorithm, _, digest = value.strip().partition(b"=")
    if algorithm != b"sha256":
        return False
    expected = hmac.new(secret, body, hashlib.sha256).hexdigest().encode()
    return constant_time_equal(digest.lower(), expected)


def resolve_token(token: SecretStr | None, token_file: Path | None) -> bytes | None:
    """The configured token: `http_token` itself, or the content of `http_token_file` (systemd credentials).

    Raises HttpConfigError (naming the file, never its content) when both are set, the file is unreadable,
    or the token is empty.
    """
    if token is not None and token_file is not None:
        raise HttpConfigError("set http_token or http_token_file, not both")
    if token_file is not None:
        try:
            text = token_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            raise HttpConfigError(
                f"cannot read http_token_file {str(token_file)!r}: {type(exc).__name__}: "
                f"{getattr(exc, 'strerror', None) or 'not UTF-8'}"
            ) from None
        value = text.strip()  # credentials files often end in a newline
        if not value:
            raise HttpConfigError(f"http_token_file {str(token_file)!r} is empty")
        return value.encode()
    if token is not None:
        value = token.get_secret_value().strip()
        if not value:
            raise HttpConfigError("http_token is empty")
        return value.encode()
    return None


def required_token(host: str, token: bytes | None) -> bytes | None:
    """The token the server must demand on `host`, or None; refuses a non-loopback address without one."""
    if token is None and not is_loopback(host):
        raise HttpConfigError(
            f"refusing to serve /metrics on the non-loopback address {host!r} without a token: set http_token "
            "(RECONCILER_HTTP_TOKEN) or http_token_file (RECONCILER_HTTP_TOKEN_FILE), or bind to 127.0.0.1"
        )
    return token

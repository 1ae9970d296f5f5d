"""The status server's access rules (DESIGN §7) as pure functions: loopback, bearer token, signatures."""

from __future__ import annotations

import hashlib
import hmac
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from reconciler.daemon.http_auth import (
    HttpConfigError,
    bearer_ok,
    constant_time_equal,
    is_loopback,
    required_token,
    resolve_token,
    signature_ok,
)
from reconciler.daemon.settings import load_settings

TOKEN = "tok-3f9a1c0e5b7d"


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.0.0.2", True),  # all of 127.0.0.0/8
        ("::1", True),
        ("[::1]", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("LocalHost", True),
        ("0.0.0.0", False),  # every interface
        ("::", False),
        ("10.1.2.3", False),
        ("192.168.0.5", False),
        ("::ffff:10.0.0.1", False),
        ("example.org", False),  # a name may resolve anywhere
        ("localhost.example.org", False),
        ("", False),
    ],
)
def test_loopback_rule(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def test_a_non_loopback_address_without_a_token_is_refused_and_with_one_required() -> None:
    with pytest.raises(HttpConfigError, match=r"non-loopback address '0\.0\.0\.0' without a token"):
        required_token("0.0.0.0", None)
    assert required_token("0.0.0.0", b"t") == b"t"
    assert required_token("127.0.0.1", None) is None
    assert required_token("127.0.0.1", b"t") == b"t"  # once set, a token is required on loopback too


def test_comparisons_go_through_hmac_compare_digest(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[bytes, bytes]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)  # the module http_auth calls it through
    assert constant_time_equal(TOKEN, TOKEN.encode())
    assert bearer_ok(b"Bearer " + TOKEN.encode(), TOKEN.encode())
    body = b'{"ref": "main"}'
    good = "sha256=" + hmac.new(b"k", body, hashlib.sha256).hexdigest()
    assert signature_ok(b"k", body, good)
    assert len(calls) == 3
    assert all(isinstance(a, bytes) and isinstance(b, bytes) for a, b in calls)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (b"Bearer " + TOKEN.encode(), True),
        (b"bearer " + TOKEN.encode(), True),
        (b"Bearer  " + TOKEN.encode() + b" ", True),
        (b"Bearer " + TOKEN.encode()[:-1], False),
        (b"Bearer " + TOKEN.encode() + b"x", False),
        (b"Basic " + TOKEN.encode(), False),
        (TOKEN.encode(), False),
        (b"Bearer", False),
        (b"", False),
        (None, False),
    ],
)
def test_bearer_header(header: bytes | None, ok: bool) -> None:
    assert bearer_ok(header, TOKEN.encode()) is ok


def test_webhook_signature() -> None:
    body = b'{"ref": "refs/heads/main"}'
    digest = hmac.new(b"secret", body, hashlib.sha256).hexdigest()
    assert signature_ok(b"secret", body, f"sha256={digest}")
    assert signature_ok(b"secret", body, f"sha256={digest.upper()}".encode())
    assert not signature_ok(b"other", body, f"sha256={digest}")
    assert not signature_ok(b"secret", body + b" ", f"sha256={digest}")
    assert not signature_ok(b"secret", body, f"sha1={digest}")
    assert not signature_ok(b"secret", body, digest)
    assert not signature_ok(b"secret", body, None)


def test_token_from_setting_file_and_errors_never_show_it(tmp_path: Path) -> None:
    assert resolve_token(None, None) is None
    assert resolve_token(SecretStr(f" {TOKEN}\n"), None) == TOKEN.encode()
    file = tmp_path / "http-token"
    file.write_text(TOKEN + "\n")
    assert resolve_token(None, file) == TOKEN.encode()
    problems = []
    for token, path in [
        (SecretStr(TOKEN), file),
        (SecretStr("  "), None),
        (None, tmp_path / "missing"),
        (None, tmp_path),
    ]:
        with pytest.raises(HttpConfigError) as caught:
            resolve_token(token, path)
        problems.append(str(caught.value))
    file.write_text("\n")
    with pytest.raises(HttpConfigError, match="is empty"):
        resolve_token(None, file)
    assert "not both" in problems[0]
    assert "missing" in problems[2]
    assert all(TOKEN not in p for p in problems)


def test_settings_read_the_token_from_the_environment_and_never_show_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RECONCILER_HTTP_TOKEN", TOKEN)
    monkeypatch.setenv("RECONCILER_HTTP_BODY_LIMIT", "4096")
    settings = load_settings(paths=["x"])
    assert settings.http_token is not None
    assert settings.http_token.get_secret_value() == TOKEN
    assert settings.http_body_limit == 4096
    assert TOKEN not in repr(settings)
    assert TOKEN not in str(settings.model_dump())

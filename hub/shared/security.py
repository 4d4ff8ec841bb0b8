"""Secrets at rest, passwords, API tokens and HMAC signatures.

Secrets are Fernet-encrypted JSON so a database dump leaks nothing usable. Several keys
may be configured (newest first) so a key can be rotated without downtime.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
from pathlib import Path
from typing import Any, Mapping, Protocol

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from werkzeug.security import check_password_hash, generate_password_hash

from hub.shared.config_errors import ConfigError

API_TOKEN_PREFIX = "hub_"
REDACTED = "[redacted]"


class KeySettings(Protocol):
    """The settings the keys are read from (the hub's config has them): named here so
    this leaf needs nothing from the rooms above it."""

    mode: str
    data_dir: str
    encryption_keys: str
    secret_key: str


class SecretsUnreadable(Exception):
    """The stored secrets were encrypted with a key this hub no longer has."""


class Vault:
    def __init__(self, keys: list[str]):
        if not keys:
            raise ConfigError("encryption_keys: at least one Fernet key is required")
        try:
            self._fernet = MultiFernet([Fernet(k.encode()) for k in keys])
        except (ValueError, TypeError):
            raise ConfigError(
                "encryption_keys: not a valid Fernet key (32 url-safe base64 bytes); "
                "generate one with `hub keygen`"
            ) from None

    def encrypt(self, data: Mapping[str, Any]) -> str:
        if not data:
            return ""
        return self._fernet.encrypt(json.dumps(dict(data), sort_keys=True).encode()).decode()

    def decrypt(self, token: str) -> dict[str, Any]:
        if not token:
            return {}
        try:
            return json.loads(self._fernet.decrypt(token.encode()))
        except InvalidToken:
            raise SecretsUnreadable(
                "stored secrets cannot be decrypted with the configured encryption_keys"
            ) from None


def _key_file(config: KeySettings, name: str) -> Path:
    return Path(config.data_dir) / name


def _dev_generated(config: KeySettings, filename: str, make: Any) -> str:
    """In development, create a key once and keep it in data_dir (mode 0600)."""
    path = _key_file(config, filename)
    if path.exists():
        return path.read_text().strip()
    path.parent.mkdir(parents=True, exist_ok=True)
    value = make()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(value + "\n")
    return value


def load_vault(config: KeySettings) -> Vault:
    keys = [k.strip() for k in config.encryption_keys.split(",") if k.strip()]
    if not keys:
        if config.mode == "production":
            raise ConfigError(
                "encryption_keys: missing; production mode needs a Fernet key "
                "(set HUB_ENCRYPTION_KEYS, generate one with `hub keygen`)"
            )
        keys = [_dev_generated(config, "encryption.key", lambda: Fernet.generate_key().decode())]
    return Vault(keys)


def load_secret_key(config: KeySettings) -> str:
    if config.secret_key:
        return config.secret_key
    if config.mode == "production":
        raise ConfigError("secret_key: missing; production mode needs a session signing key")
    return _dev_generated(config, "session.key", lambda: secrets.token_urlsafe(48))


def hash_password(password: str) -> str:
    return generate_password_hash(password)


def check_password(password_hash: str, password: str) -> bool:
    return check_password_hash(password_hash, password)


def new_api_token() -> str:
    return API_TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_api_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def random_key(nbytes: int = 24) -> str:
    """An unguessable URL-safe key for per-channel and per-connector URLs."""
    return secrets.token_urlsafe(nbytes)


def hmac_sha256_hex(key: bytes, message: bytes) -> str:
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def hmac_sha256_b64(key: bytes, message: bytes) -> str:
    return base64.b64encode(hmac.new(key, message, hashlib.sha256).digest()).decode()


def constant_time_equal(a: str | bytes, b: str | bytes) -> bool:
    if isinstance(a, str):
        a = a.encode()
    if isinstance(b, str):
        b = b.encode()
    return hmac.compare_digest(a, b)


SENSITIVE_HEADERS = frozenset(
    {"authorization", "cookie", "set-cookie", "x-api-key", "d360-api-key", "proxy-authorization"}
)


def redact_headers(headers: Mapping[str, str]) -> dict[str, str]:
    return {
        k: (REDACTED if k.lower() in SENSITIVE_HEADERS else v) for k, v in headers.items()
    }


def redact_text(text: str, secrets_: list[str]) -> str:
    """Replace every known secret value in a text (responses may echo tokens back)."""
    for value in secrets_:
        if value and len(value) >= 4:
            text = text.replace(value, REDACTED)
    return text

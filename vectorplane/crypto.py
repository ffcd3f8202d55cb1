"""Credentials at rest: Fernet (AES-128-CBC + HMAC-SHA-256) with key rotation.

Dedicated clusters' generated credentials are stored encrypted in the control-plane database and
decrypted by the Celery workers (to provision and bootstrap) and by the gateway (to connect). No
Django import: the gateway uses this module too.

Keys: `VECTORPLANE_CREDENTIALS_KEY` (a Fernet key: 32 url-safe base64 bytes, e.g. from
`python -c "from cryptography.fernet import Fernet; print(Fernet.generate_key().decode())"`);
outside production a key is generated once into the state folder. Rotation: put the new key in
`VECTORPLANE_CREDENTIALS_KEY` and the old ones, comma-separated, in
`VECTORPLANE_CREDENTIALS_OLD_KEYS`; everything still decrypts, new writes use the new key, and
`manage.py rotate_credentials_key` re-encrypts every row under the new key, after which the old
keys can be dropped.
"""

from __future__ import annotations

import base64
import functools
from typing import Any

import orjson
from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from . import config

__all__ = ["InvalidToken", "decrypt_json", "encrypt_json", "reencrypt"]


def _state_key() -> str:
    # A Fernet key is 32 random bytes in url-safe base64; state_secret gives url-safe text,
    # so derive the key from it deterministically.
    seed = config.state_secret("credentials-key", 32).encode()
    return base64.urlsafe_b64encode(seed.ljust(32, b"=")[:32]).decode()


@functools.cache
def _fernet() -> MultiFernet:
    primary = config.env_str("VECTORPLANE_CREDENTIALS_KEY", "")
    if not primary:
        if config.is_production():
            raise config.ConfigError("VECTORPLANE_CREDENTIALS_KEY must be set in production")
        primary = _state_key()
    keys = [primary, *config.env_list("VECTORPLANE_CREDENTIALS_OLD_KEYS", [])]
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except ValueError as exc:
        raise config.ConfigError(
            "VECTORPLANE_CREDENTIALS_KEY / _OLD_KEYS must be Fernet keys "
            "(32 url-safe base64-encoded bytes)"
        ) from exc


def reset() -> None:
    """Forget the cached keys (tests, and after changing the environment)."""
    _fernet.cache_clear()


def encrypt_json(value: dict[str, Any]) -> str:
    return _fernet().encrypt(orjson.dumps(value)).decode()


def decrypt_json(token: str) -> dict[str, Any]:
    """Raises InvalidToken when no configured key decrypts `token`."""
    value = orjson.loads(_fernet().decrypt(token.encode()))
    if not isinstance(value, dict):
        raise InvalidToken
    return value


def reencrypt(token: str) -> str:
    """`token` under the primary key (MultiFernet.rotate)."""
    return _fernet().rotate(token.encode()).decode()

"""Secrets for API keys, personal access tokens and invitations.

Format: `<kind>_<prefix>_<secret>`, e.g. `vpk_k3j9x0q2m4ab_Zt...`. The prefix is public and
unique (it is the lookup key, shown in listings); the whole string is hashed with
HMAC-SHA-256 under a server pepper (`VECTORPLANE_KEY_PEPPER`), and only the hex digest is
stored. Verifying a key is then one indexed lookup by prefix plus one HMAC — cheap enough for
the data-plane gateway to do on every request it has not cached. A leaked database alone does
not give usable keys (the pepper is not in it), and the secret has 256 bits of entropy, so a
slow password hash would add latency without adding safety.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass

from django.conf import settings

KEY_KIND = "vpk"  # API key
TOKEN_KIND = "vpp"  # personal access token  # noqa: S105 (a prefix, not a secret)
INVITE_KIND = "vpi"  # invitation

_PREFIX_ALPHABET = string.ascii_lowercase + string.digits
PREFIX_LENGTH = 12


@dataclass(frozen=True)
class NewSecret:
    prefix: str
    secret: str  # the whole string handed to the user, once
    hash: str


@dataclass(frozen=True)
class ParsedSecret:
    kind: str
    prefix: str
    whole: str


def hash_secret(whole: str, *, pepper: str | None = None) -> str:
    key = (pepper if pepper is not None else settings.VECTORPLANE_KEY_PEPPER).encode()
    return hmac.new(key, whole.encode(), hashlib.sha256).hexdigest()


def generate(kind: str) -> NewSecret:
    prefix = "".join(secrets.choice(_PREFIX_ALPHABET) for _ in range(PREFIX_LENGTH))
    whole = f"{kind}_{prefix}_{secrets.token_urlsafe(32)}"
    return NewSecret(prefix=prefix, secret=whole, hash=hash_secret(whole))


def parse(value: str) -> ParsedSecret | None:
    """Split a presented secret; None when it is not of our shape (cheap reject)."""
    if len(value) > 200 or not value.isascii():
        return None
    parts = value.split("_", 2)
    if len(parts) != 3:
        return None
    kind, prefix, rest = parts
    if kind not in {KEY_KIND, TOKEN_KIND, INVITE_KIND} or len(prefix) != PREFIX_LENGTH or not rest:
        return None
    if any(ch not in _PREFIX_ALPHABET for ch in prefix):
        return None
    return ParsedSecret(kind=kind, prefix=prefix, whole=value)


def matches(whole: str, stored_hash: str) -> bool:
    return hmac.compare_digest(hash_secret(whole), stored_hash)

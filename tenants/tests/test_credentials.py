from __future__ import annotations

import hashlib
import hmac

import pytest
from django.test import override_settings

from tenants import credentials


def test_generated_secret_shape_and_hash() -> None:
    new = credentials.generate(credentials.KEY_KIND)
    assert new.secret.startswith(f"vpk_{new.prefix}_")
    assert len(new.prefix) == credentials.PREFIX_LENGTH
    assert new.secret not in new.hash and len(new.hash) == 64
    parsed = credentials.parse(new.secret)
    assert parsed is not None and parsed.prefix == new.prefix and parsed.kind == "vpk"
    assert credentials.matches(new.secret, new.hash)
    assert not credentials.matches(new.secret + "x", new.hash)


def test_hash_is_hmac_sha256_with_the_pepper() -> None:
    with override_settings(VECTORPLANE_KEY_PEPPER="pepper-one"):
        digest = credentials.hash_secret("vpk_abc_def")
        assert digest == hmac.new(b"pepper-one", b"vpk_abc_def", hashlib.sha256).hexdigest()
    with override_settings(VECTORPLANE_KEY_PEPPER="pepper-two"):
        assert credentials.hash_secret("vpk_abc_def") != digest


def test_secrets_are_unique() -> None:
    seen = {credentials.generate("vpk").secret for _ in range(200)}
    assert len(seen) == 200


@pytest.mark.parametrize(
    "value",
    [
        "",
        "vpk",
        "vpk_short_x",
        "xyz_abcdefghijkl_secret",
        "vpk_ABCDEFGHIJKL_secret",
        "vpk_abcdefghijkl_",
        "vpk_abcdefghijkl_" + "a" * 300,
        "vpk_abcdéfghijkl_secret",
        "'; DROP TABLE tenants_apikey; --",
    ],
)
def test_parse_rejects_malformed(value: str) -> None:
    assert credentials.parse(value) is None

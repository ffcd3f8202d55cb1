"""Settings read through one helper that fails loudly."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from vectorplane import config

REPO = Path(__file__).resolve().parents[2]


def test_env_helpers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VP_TEST_INT", "12")
    monkeypatch.setenv("VP_TEST_BOOL", "yes")
    monkeypatch.setenv("VP_TEST_LIST", "a, b,,c")
    assert config.env_int("VP_TEST_INT", 1) == 12
    assert config.env_bool("VP_TEST_BOOL", False) is True
    assert config.env_list("VP_TEST_LIST", []) == ["a", "b", "c"]
    assert config.env_str("VP_TEST_MISSING", "dflt") == "dflt"
    with pytest.raises(config.ConfigError, match="VP_TEST_MISSING"):
        config.env_str("VP_TEST_MISSING")
    monkeypatch.setenv("VP_TEST_INT", "twelve")
    with pytest.raises(config.ConfigError, match="must be an integer"):
        config.env_int("VP_TEST_INT", 1)
    monkeypatch.setenv("VP_TEST_BOOL", "maybe")
    with pytest.raises(config.ConfigError, match="boolean"):
        config.env_bool("VP_TEST_BOOL", False)


def test_state_secret_is_generated_once(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("VECTORPLANE_STATE_DIR", str(tmp_path))
    first = config.state_secret("thing")
    assert first == config.state_secret("thing")
    assert (tmp_path / "secrets" / "thing").stat().st_mode & 0o077 == 0


def _settings_in_subprocess(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "VECTORPLANE_"))}
    return subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        cwd=REPO,
        env={**base, "DJANGO_SETTINGS_MODULE": "controlplane.settings", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"VECTORPLANE_ENV": "production"}, "DJANGO_SECRET_KEY"),
        (
            {
                "VECTORPLANE_ENV": "production",
                "DJANGO_SECRET_KEY": "x" * 50,
                "VECTORPLANE_KEY_PEPPER": "p" * 32,
                "DATABASE_URL": "postgresql://u:p@127.0.0.1:5/x",
                "REDIS_URL": "redis://127.0.0.1:6379/0",
                "DJANGO_DEBUG": "true",
            },
            "DJANGO_DEBUG must not be enabled",
        ),
        (
            {
                "VECTORPLANE_ENV": "production",
                "DJANGO_SECRET_KEY": "x" * 50,
                "VECTORPLANE_KEY_PEPPER": "p" * 32,
            },
            "DATABASE_URL is required in production",
        ),
        ({"VECTORPLANE_ENV": "staging"}, "VECTORPLANE_ENV must be"),
        ({"DATABASE_URL": "mysql://x@y/z"}, "postgresql://"),
    ],
)
def test_settings_refuse_unsafe_configuration(env: dict[str, str], message: str) -> None:
    result = _settings_in_subprocess(env)
    assert result.returncode != 0
    assert message in result.stderr


def test_production_settings_load_with_every_required_value() -> None:
    result = _settings_in_subprocess(
        {
            "VECTORPLANE_ENV": "production",
            "DJANGO_SECRET_KEY": "x" * 50,
            "VECTORPLANE_KEY_PEPPER": "p" * 32,
            "DATABASE_URL": "postgresql://u:p@127.0.0.1:5/x",
            "REDIS_URL": "redis://127.0.0.1:6379/0",
            "DJANGO_ALLOWED_HOSTS": "vectorplane.example.com",
        }
    )
    assert result.returncode == 0, result.stderr

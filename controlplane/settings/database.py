"""Database settings: `DATABASE_URL`, or the embedded PostgreSQL+pgvector."""

from urllib.parse import parse_qsl, unquote, urlsplit

from vectorplane import config


def parse_database_url(url: str) -> dict[str, object]:
    parts = urlsplit(url)
    if parts.scheme not in {"postgres", "postgresql"}:
        raise config.ConfigError(
            f"DATABASE_URL must be a postgresql:// URL, got scheme {parts.scheme!r}"
        )
    options = dict(parse_qsl(parts.query))
    return {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": unquote(parts.path.lstrip("/")) or "postgres",
        "USER": unquote(parts.username or ""),
        "PASSWORD": unquote(parts.password or ""),
        "HOST": parts.hostname or "",
        "PORT": str(parts.port or ""),
        "OPTIONS": options,
        "CONN_MAX_AGE": config.env_int("DATABASE_CONN_MAX_AGE", 60),
        "CONN_HEALTH_CHECKS": True,
        "ATOMIC_REQUESTS": False,
    }


DATABASES = {"default": parse_database_url(config.database_url())}

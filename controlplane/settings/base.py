"""Core Django settings: apps, middleware, security, static files."""

from pathlib import Path

from vectorplane import config
from vectorplane.contract import locations

BASE_DIR = Path(__file__).resolve().parent.parent.parent

VECTORPLANE_ENV = config.environment()
DEBUG = config.env_bool("DJANGO_DEBUG", default=False)
if DEBUG and config.is_production():
    raise config.ConfigError("DJANGO_DEBUG must not be enabled when VECTORPLANE_ENV=production")

SECRET_KEY = (
    config.env_str("DJANGO_SECRET_KEY")
    if config.is_production()
    else config.env_str("DJANGO_SECRET_KEY", config.state_secret("django-secret-key", 50))
)

# Pepper for API key / token hashes (HMAC-SHA-256). Changing it invalidates every key.
VECTORPLANE_KEY_PEPPER = (
    config.env_str("VECTORPLANE_KEY_PEPPER")
    if config.is_production()
    else config.env_str("VECTORPLANE_KEY_PEPPER", config.state_secret("key-pepper"))
)

ALLOWED_HOSTS = config.env_list(
    "DJANGO_ALLOWED_HOSTS",
    [] if config.is_production() else ["localhost", "127.0.0.1", "[::1]", "testserver"],
)
CSRF_TRUSTED_ORIGINS = config.env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "controlplane",
    "tenants",
    "provisioning",
    "billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "controlplane.middleware.StrictQueryStringMiddleware",
    "controlplane.console.WhiteNoiseWithConsole",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "controlplane.urls"
WSGI_APPLICATION = "controlplane.wsgi.application"
APPEND_SLASH = False

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = config.state_dir() / "static"
# Exists before collectstatic runs, so WhiteNoise does not warn (warnings are errors in tests).
STATIC_ROOT.mkdir(parents=True, exist_ok=True)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = not config.is_production()
# The console's assets never change under their URL (Vite names them `<name>-<8-char hash>.<ext>`).
WHITENOISE_IMMUTABLE_FILE_TEST = r"^/console/assets/.+-[A-Za-z0-9_-]{8}\.[a-z0-9]+$"
# The web console's build (controlplane/console.py), served at /console/.
VECTORPLANE_CONSOLE_DIR = config.env_str(
    "VECTORPLANE_CONSOLE_DIR", str(BASE_DIR / "frontend" / "dist")
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Request size cap for the management API (the data plane has its own limits).
DATA_UPLOAD_MAX_MEMORY_SIZE = 1024 * 1024

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
SESSION_COOKIE_SECURE = config.is_production()
CSRF_COOKIE_SECURE = config.is_production()
SECURE_CONTENT_TYPE_NOSNIFF = True
X_FRAME_OPTIONS = "DENY"

# Number of reverse proxies in front of the control plane whose X-Forwarded-For we trust
# when recording the source IP of audit events. 0 = use the socket peer address.
VECTORPLANE_NUM_PROXIES = config.env_int("VECTORPLANE_NUM_PROXIES", 0)

# Public URL printed by `make run` and used in links.
VECTORPLANE_PUBLIC_URL = config.public_url()
VECTORPLANE_ALLOW_SIGNUP = config.env_bool("VECTORPLANE_ALLOW_SIGNUP", default=True)
# Default grace period for rotated API keys, and invitation lifetime.
VECTORPLANE_KEY_ROTATION_GRACE_SECONDS = config.env_int(
    "VECTORPLANE_KEY_ROTATION_GRACE_SECONDS", 24 * 3600
)
VECTORPLANE_INVITATION_TTL_SECONDS = config.env_int(
    "VECTORPLANE_INVITATION_TTL_SECONDS", 7 * 24 * 3600
)

# The cloud and region an index answers when its creator named none (Pinecone's API labels;
# see vectorplane/contract/locations.py). Checked here, so a bad value stops the start.
VECTORPLANE_DEFAULT_CLOUD = config.env_str("VECTORPLANE_DEFAULT_CLOUD", locations.DEFAULT_CLOUD)
VECTORPLANE_DEFAULT_REGION = config.env_str("VECTORPLANE_DEFAULT_REGION", locations.DEFAULT_REGION)
for _name, _error in (
    ("VECTORPLANE_DEFAULT_CLOUD", locations.cloud_error(VECTORPLANE_DEFAULT_CLOUD)),
    ("VECTORPLANE_DEFAULT_REGION", locations.region_error(VECTORPLANE_DEFAULT_REGION)),
):
    if _error:
        raise config.ConfigError(f"environment variable {_name}: {_error}")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": config.env_str("VECTORPLANE_LOG_LEVEL", "INFO")},
}

# E-mail (billing's payment notices and spend alerts): Django's backend of choice; the embedded
# default writes each message to a file under .state/mail/ (read it there), `console` prints.
EMAIL_BACKEND = {
    "file": "django.core.mail.backends.filebased.EmailBackend",
    "console": "django.core.mail.backends.console.EmailBackend",
    "smtp": "django.core.mail.backends.smtp.EmailBackend",
}[config.env_str("VECTORPLANE_EMAIL_BACKEND", "file")]
EMAIL_FILE_PATH = str(config.state_dir() / "mail")
EMAIL_HOST = config.env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = config.env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = config.env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = config.env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = config.env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = config.env_str("DEFAULT_FROM_EMAIL", "Vectorplane <billing@localhost>")

"""The one Django settings module, driven entirely by environment variables (see docs/configuration.md)."""

from __future__ import annotations

import os
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from django_etl import conf

BASE_DIR = conf.BASE_DIR
# Every ETL_* setting is declared once, with its default and parser, in django_etl/conf.py.
try:
    globals().update(conf.exported())
except conf.SettingError as exc:
    raise ImproperlyConfigured(str(exc)) from None
# Embedded state (SQLite database, local staging, Airflow home for the demo) lives in one git-ignored folder.
VAR_DIR = ETL_VAR_DIR


def env_bool(name: str, default: bool) -> bool:
    """A DJANGO_* boolean, parsed by the same rule as the ETL_* settings."""
    value = os.environ.get(name, "")
    if value.strip() == "":
        return default
    try:
        return conf.parse_bool(value)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={value!r} is not a boolean; use true or false.") from None


# Development defaults: usable only while DEBUG is on (the demo and the test suite).
DEV_SECRET_KEY = "django-insecure-dev-only-key-do-not-use-in-production"
DEV_CREDENTIAL_KEYS = "dev:ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE="

DEBUG = env_bool("DJANGO_DEBUG", True)
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY") or DEV_SECRET_KEY
# Credential key ring: "id:fernet-key" pairs separated by commas, or a JSON file (docs/credentials.md).
if not ETL_CREDENTIAL_KEYS and not ETL_CREDENTIAL_KEYS_FILE:
    ETL_CREDENTIAL_KEYS = DEV_CREDENTIAL_KEYS

if not DEBUG:
    if SECRET_KEY == DEV_SECRET_KEY:
        raise ImproperlyConfigured(
            "DJANGO_DEBUG is off but DJANGO_SECRET_KEY is not set: refusing to run with the development key. "
            "Set DJANGO_SECRET_KEY to a long random string."
        )
    if ETL_CREDENTIAL_KEYS == DEV_CREDENTIAL_KEYS:
        raise ImproperlyConfigured(
            "DJANGO_DEBUG is off but no credential key ring is configured: refusing to encrypt secrets with "
            "the development key. Set ETL_CREDENTIAL_KEYS or ETL_CREDENTIAL_KEYS_FILE (docs/credentials.md)."
        )
    if not os.environ.get("DATABASE_URL", "").strip():
        # Without this an Airflow process would quietly create a new, empty SQLite file ("no such table").
        raise ImproperlyConfigured(
            "DJANGO_DEBUG is off but DATABASE_URL is not set: refusing to fall back to an embedded SQLite "
            "database. Set DATABASE_URL (e.g. postgres://etl:…@127.0.0.1:5432/etl) in every process (.env.example)."
        )

ALLOWED_HOSTS = [h.strip() for h in os.environ.get("DJANGO_ALLOWED_HOSTS", "localhost,127.0.0.1").split(",")]
CSRF_TRUSTED_ORIGINS = [
    o.strip() for o in os.environ.get("DJANGO_CSRF_TRUSTED_ORIGINS", "").split(",") if o.strip()
]

INSTALLED_APPS = [
    "django_etl.core.adminapp.AdminConfig",  # the tenant admin site; admin.autodiscover() runs in urls.py
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django_etl.core",
    "django_etl.connectors",
    "django_etl.pipelines",
    "django_etl.runs",
    "django_etl.monitoring",
    "django_etl.lineage",
    "django_etl.control",  # webhook endpoints; Django's control of Airflow (docs/services.md)
    "django_etl.audit",  # field-by-field history of organizations, members, connectors, credentials, pipelines
    "simple_history",
    "axes",  # sign-in throttling; keep it last (its checks look at the backends and middleware)
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Serves the admin's static files from STATIC_ROOT (collectstatic) under gunicorn/uvicorn (docs/services.md).
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",  # who made a change, for the audit trail
    "axes.middleware.AxesMiddleware",  # last, as django-axes requires
]

ROOT_URLCONF = "django_etl.urls"
WSGI_APPLICATION = "django_etl.wsgi.application"

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

DEFAULT_SQLITE_URL = f"sqlite:///{VAR_DIR / 'db.sqlite3'}"
DATABASE_URL = os.environ.get("DATABASE_URL") or DEFAULT_SQLITE_URL
# Connections are short-lived in task processes, so no persistent connections by default.
DATABASES = {"default": dj_database_url.parse(DATABASE_URL, conn_max_age=0)}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    Path(DATABASES["default"]["NAME"]).parent.mkdir(parents=True, exist_ok=True)
    # Airflow callbacks and the admin may write at the same time; wait for the lock instead of failing.
    DATABASES["default"]["OPTIONS"] = {"timeout": 20, "transaction_mode": "IMMEDIATE"}
if os.environ.get("TEST_DATABASE_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["TEST_DATABASE_NAME"]}

AUTH_USER_MODEL = "core.User"
# Passwords as usual; permissions from membership roles only (docs/security.md, "Admin roles and tenancy").
# django-axes first: it refuses a locked-out (username, address) before any password is checked.
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend", "django_etl.core.permissions.RoleBackend"]

# The client address of a request (sign-in throttling and User.last_login_ip): the socket's REMOTE_ADDR, or the
# one header a trusted reverse proxy sets (e.g. HTTP_X_REAL_IP). Empty: no header is trusted (anyone can send
# X-Forwarded-For). See docs/security.md, "Sign-in".
CLIENT_IP_HEADER = os.environ.get("DJANGO_CLIENT_IP_HEADER", "").strip()

# Sign-in throttling (django-axes): after AXES_FAILURE_LIMIT wrong passwords for one username from one address,
# that pair is locked out for the cool-off time; other addresses and other usernames are not.
AXES_ENABLED = env_bool("DJANGO_AXES_ENABLED", True)
AXES_FAILURE_LIMIT = int(os.environ.get("DJANGO_AXES_FAILURE_LIMIT", "5"))
AXES_COOLOFF_TIME = float(os.environ.get("DJANGO_AXES_COOLOFF_MINUTES", "15")) / 60  # hours, as axes counts
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_CLIENT_IP_CALLABLE = "django_etl.core.signals.client_ip"
AXES_VERBOSE = False
# Lock-outs are an operator matter: `manage.py axes_list_attempts`, `axes_reset_username USER` (no admin pages)
AXES_ENABLE_ADMIN = False
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = os.environ.get("DJANGO_TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
# Compressed copies, no manifest: pages render even before collectstatic has run (tests, the dev server).
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
if DEBUG:  # whitenoise warns about a missing STATIC_ROOT; production creates it with collectstatic
    STATIC_ROOT.mkdir(parents=True, exist_ok=True)

# HTTPS. With DEBUG off every protection is on unless the environment turns it off one by one; the plain-HTTP
# local profile (DJANGO_PLAIN_HTTP=true, docs/configuration.md) turns off the four that need TLS.
_https = not DEBUG and not env_bool("DJANGO_PLAIN_HTTP", False)
SECURE_SSL_REDIRECT = env_bool("DJANGO_SECURE_SSL_REDIRECT", _https)
SESSION_COOKIE_SECURE = env_bool("DJANGO_SESSION_COOKIE_SECURE", _https)
CSRF_COOKIE_SECURE = env_bool("DJANGO_CSRF_COOKIE_SECURE", _https)
SECURE_HSTS_SECONDS = int(os.environ.get("DJANGO_SECURE_HSTS_SECONDS", "31536000" if _https else "0"))
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("DJANGO_SECURE_HSTS_INCLUDE_SUBDOMAINS", True)
SECURE_HSTS_PRELOAD = env_bool("DJANGO_SECURE_HSTS_PRELOAD", True)
SESSION_COOKIE_HTTPONLY = True
# Behind a TLS-terminating proxy: "HTTP_X_FORWARDED_PROTO,https" (only when that proxy always sets the header).
_proxy_ssl = os.environ.get("DJANGO_SECURE_PROXY_SSL_HEADER", "").strip()
if _proxy_ssl:
    _header, _, _value = _proxy_ssl.partition(",")
    if not _header.strip() or not _value.strip():
        raise ImproperlyConfigured(
            f"DJANGO_SECURE_PROXY_SSL_HEADER={_proxy_ssl!r} must be 'HEADER,value', e.g. 'HTTP_X_FORWARDED_PROTO,https'."
        )
    SECURE_PROXY_SSL_HEADER = (_header.strip(), _value.strip())

# Email (the notify step): console in development, SMTP when DJANGO_EMAIL_BACKEND says so.
_email_backend = os.environ.get("DJANGO_EMAIL_BACKEND") or "django.core.mail.backends.console.EmailBackend"
_email_options: dict = {}
if _email_backend.endswith("smtp.EmailBackend"):
    _email_options = {
        "host": os.environ.get("DJANGO_EMAIL_HOST", "localhost"),
        "port": int(os.environ.get("DJANGO_EMAIL_PORT", "25")),
        "username": os.environ.get("DJANGO_EMAIL_USER", ""),
        "password": os.environ.get("DJANGO_EMAIL_PASSWORD", ""),
        "use_tls": env_bool("DJANGO_EMAIL_USE_TLS", False),
    }
MAILERS = {"default": {"BACKEND": _email_backend, "OPTIONS": _email_options}}
DEFAULT_FROM_EMAIL = os.environ.get("DJANGO_DEFAULT_FROM_EMAIL", "etl@localhost")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": os.environ.get("DJANGO_LOG_LEVEL", "WARNING")},
}

# The audit trail (django-simple-history, docs/security.md "Audit trail"): no history of the admin's own
# bookkeeping; the history models live in django_etl/audit.
SIMPLE_HISTORY_REVERT_DISABLED = True  # restoring versions is a later feature; the history is read-only now
SIMPLE_HISTORY_HISTORY_CHANGE_REASON_USE_TEXT_FIELD = True

# SQLite cannot defer the (pipeline, order_index) uniqueness; the validation layer checks it there instead.
# Nor has it covering indexes: the daily rollup's INCLUDE columns are a PostgreSQL speed-up, plain keys there.
SILENCED_SYSTEM_CHECKS = ["models.W038", "models.W040"]

"""Django settings. Every value that differs between machines comes from the environment (see muestra.env)."""

from __future__ import annotations

from pathlib import Path

import dj_database_url
from django.utils.translation import gettext_lazy as _

from muestra.env import DomainRules, OutboundRules, env_bool, env_int, env_list, env_str

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env_str("MUESTRA_VAR_DIR", str(BASE_DIR / "var")))

# MUESTRA_ENV=production turns every development convenience off and makes the secrets mandatory.
PRODUCTION = env_str("MUESTRA_ENV", "development") == "production"
DEBUG = env_bool("DJANGO_DEBUG", False)
_DEV_SECRET = "insecure-development-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env_str("DJANGO_SECRET_KEY", None if PRODUCTION else _DEV_SECRET)
# Previous keys, still accepted when checking signatures (sessions, password-reset links, audit checkpoints) after
# a rotation; comma-separated.
SECRET_KEY_FALLBACKS = env_list("DJANGO_SECRET_KEY_FALLBACKS", [])
ALLOWED_HOSTS = env_list("DJANGO_ALLOWED_HOSTS", ["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env_list("DJANGO_CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",  # intcomma: counts grouped in the reader's language
    "django_otp",
    "django_otp.plugins.otp_totp",
    "axes",
    "django_tasks",
    "django_tasks_db",
    "ninja",
    "muestra.core",
    "muestra.audit",
    "muestra.territories",
    "muestra.catalog",
    "muestra.facilities",
    "muestra.accounts",
    "muestra.patients",
    "muestra.samples",
    "muestra.integrations",
    "muestra.demo",
    "muestra.web",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Content-Security-Policy, Permissions-Policy, Cross-Origin-Opener-Policy on every response (web/security.py).
    "muestra.web.security.SecurityHeadersMiddleware",
    # Static files served by the app servers themselves: no separate web server needed for the admin's CSS.
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_otp.middleware.OTPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "muestra.urls"
WSGI_APPLICATION = "muestra.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "muestra" / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "django.template.context_processors.i18n",
                "muestra.web.context_processors.shell",
            ],
        },
    },
]

# --- Database ------------------------------------------------------------------------------------------
# DATABASE_URL selects PostgreSQL (postgres://...); without it the embedded SQLite database is used in WAL mode.
_database_url = env_str("DATABASE_URL", "")
if _database_url:
    DATABASES = {"default": dj_database_url.parse(_database_url, conn_max_age=env_int("DB_CONN_MAX_AGE", 60))}
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Server-side binding, and psycopg preparing a statement once a connection has run it 5 times (every
        # registration runs the same few): PostgreSQL then stops parsing and planning them each time. Django turns
        # preparing off unless asked (for connection poolers): a registration cost PostgreSQL 2.3 ms of CPU without
        # it. DB_PREPARED_STATEMENTS=0 behind a pooler in transaction mode that cannot keep prepared statements
        # (PgBouncer before 1.21, or without max_prepared_statements).
        options = DATABASES["default"].setdefault("OPTIONS", {})
        options["server_side_binding"] = env_bool("DB_SERVER_SIDE_BINDING", True)
        options["prepare_threshold"] = 5 if env_bool("DB_PREPARED_STATEMENTS", True) else None
        DATABASES["default"]["TEST"] = {"NAME": env_str("DATABASE_TEST_NAME", "test_muestra")}
else:
    DATABASES = {
        "default": {
            "ENGINE": "django.db.backends.sqlite3",
            "NAME": env_str("SQLITE_PATH", str(VAR_DIR / "muestra.sqlite3")),
            "OPTIONS": {
                # IMMEDIATE takes the write lock at BEGIN, so concurrent writers queue instead of failing
                # with "database is locked" when a read transaction tries to upgrade.
                "transaction_mode": "IMMEDIATE",
                "timeout": 30,
                "init_command": (
                    "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA busy_timeout=30000;"
                    " PRAGMA foreign_keys=ON;"
                ),
            },
            "TEST": {"NAME": env_str("SQLITE_TEST_PATH", "") or None},
        }
    }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

# --- Authentication and security -------------------------------------------------------------------------
PASSWORD_HASHERS = [
    "django.contrib.auth.hashers.Argon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
if env_bool("MUESTRA_FAST_PASSWORD_HASHER", False):
    # Only for the test suite: Argon2 is deliberately slow.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher", *PASSWORD_HASHERS]

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 12}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "muestra.accounts.backends.UsernameOrNationalIdBackend",
]
AXES_FAILURE_LIMIT = env_int("AXES_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = env_int("AXES_COOLOFF_HOURS", 1)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_ENABLED = env_bool("AXES_ENABLED", True)
AXES_LOCKOUT_TEMPLATE = "accounts/locked_out.html"
AXES_RESET_ON_SUCCESS = True

LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "web:home"
LOGOUT_REDIRECT_URL = "accounts:login"
OTP_TOTP_ISSUER = env_str("OTP_TOTP_ISSUER", "Muestra")

SESSION_COOKIE_AGE = env_int("SESSION_COOKIE_AGE", 8 * 3600)
SESSION_COOKIE_HTTPONLY = True
# Closing the browser ends the session too (SESSION_COOKIE_AGE still bounds an open one).
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", PRODUCTION)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 0)
SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https") if env_bool("BEHIND_TLS_PROXY", False) else None

# --- Internationalisation -------------------------------------------------------------------------------
LANGUAGE_CODE = "es"
LANGUAGES = [("es", _("Spanish")), ("en", _("English")), ("vi", _("Vietnamese"))]
LOCALE_PATHS = [BASE_DIR / "muestra" / "locale"]
USE_I18N = True
USE_TZ = True
TIME_ZONE = env_str("MUESTRA_TIME_ZONE", "America/Santiago")

STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
MEDIA_ROOT = Path(env_str("MEDIA_ROOT", str(VAR_DIR / "media")))
MEDIA_URL = "media/"
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("DATA_UPLOAD_MAX_MEMORY_SIZE", 20 * 1024 * 1024)
FILE_UPLOAD_MAX_MEMORY_SIZE = 5 * 1024 * 1024

# --- E-mail (password reset) ----------------------------------------------------------------------------
# The console backend prints mail to the log; production sets the SMTP backend and its EMAIL_* variables.
EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
EMAIL_HOST = env_str("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env_str("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = env_str("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = env_bool("EMAIL_USE_TLS", False)
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "Muestra <no-reply@muestra.invalid>")

# --- Background tasks -------------------------------------------------------------------------------------
TASKS = {"default": {"BACKEND": env_str("TASKS_BACKEND", "django_tasks_db.DatabaseBackend")}}

# --- Domain rules -----------------------------------------------------------------------------------------
MUESTRA: DomainRules = {
    # How old a collection time may be when a sample is registered (pntm.md: not older than 7 days).
    "MAX_COLLECTION_AGE_DAYS": env_int("MUESTRA_MAX_COLLECTION_AGE_DAYS", 7),
    # Tolerated clock skew between a device and the server when checking "not in the future".
    "FUTURE_TOLERANCE_MINUTES": env_int("MUESTRA_FUTURE_TOLERANCE_MINUTES", 10),
    # A lab may correct a result once within this window; later changes need an administrator.
    "CORRECTION_WINDOW_DAYS": env_int("MUESTRA_CORRECTION_WINDOW_DAYS", 7),
    "MAX_REPORT_BYTES": env_int("MUESTRA_MAX_REPORT_BYTES", 10 * 1024 * 1024),
    # Lab worklists highlight samples waiting longer than this (hours since collection, or since receipt).
    "LAB_TARGET_HOURS": env_int("MUESTRA_LAB_TARGET_HOURS", 24),
    "MAX_BATCH_ITEMS": env_int("MUESTRA_MAX_BATCH_ITEMS", 5000),
    # A results file of at least twice UPLOAD_PART_MIN_ROWS rows is processed in up to UPLOAD_PARTS parts at once,
    # one per free task worker (2 cores: 2 parts nearly double a file's rate, bench/README.md).
    "UPLOAD_PARTS": env_int("MUESTRA_UPLOAD_PARTS", 2),
    "UPLOAD_PART_MIN_ROWS": env_int("MUESTRA_UPLOAD_PART_MIN_ROWS", 5000),
    "DEFAULT_COUNTRY": env_str("MUESTRA_COUNTRY", "CL"),
}

# Outbound events (integrations/outbound, docs/outbound.md): how deliveries to subscribed systems are sent and retried.
MUESTRA_OUTBOUND: OutboundRules = {
    # One POST may take this long (connect + answer) before it counts as a failed attempt.
    "TIMEOUT_SECONDS": env_int("MUESTRA_OUTBOUND_TIMEOUT_SECONDS", 10),
    # Retry n waits about BASE * 2**(n-1) seconds (random jitter: half to all of it), never more than CAP.
    "RETRY_BASE_SECONDS": env_int("MUESTRA_OUTBOUND_RETRY_BASE_SECONDS", 30),
    "RETRY_CAP_SECONDS": env_int("MUESTRA_OUTBOUND_RETRY_CAP_SECONDS", 600),
    # A delivery still failing after this many attempts is "dead" (about 4 hours with the defaults).
    "MAX_ATTEMPTS": env_int("MUESTRA_OUTBOUND_MAX_ATTEMPTS", 30),
    "BATCH_SIZE": env_int("MUESTRA_OUTBOUND_BATCH_SIZE", 200),
    # One sweep (task run or `deliver_events`) stops sending after this long and leaves the rest to the next.
    "SWEEP_SECONDS": env_int("MUESTRA_OUTBOUND_SWEEP_SECONDS", 50),
    # Each process remembers the active subscriptions this long (a save clears it in the saving process at once).
    "SUBSCRIPTION_CACHE_SECONDS": env_int("MUESTRA_OUTBOUND_SUBSCRIPTION_CACHE_SECONDS", 30),
}

# The most samples one export of the territory list may hold; narrower filters are asked for above it.
MUESTRA_EXPORT_MAX_ROWS = env_int("MUESTRA_EXPORT_MAX_ROWS", 10_000)

# Long-running processes freeze their start-up objects and collect cyclic garbage every this many net allocations
# instead of 700: a fifth of a batch registration's CPU went to the collector (muestra/core/gc_tuning.py).
# 0 leaves Python's collector as it is.
GC_GEN0_THRESHOLD = env_int("GC_GEN0_THRESHOLD", 10_000)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env_str("LOG_LEVEL", "INFO")},
    # Request bodies carry personal data: never log them (django.request logs only the path).
    "loggers": {"django.db.backends": {"level": "WARNING"}, "axes": {"level": "WARNING"}},
}

"""siestaflow settings: one module, every value read from the environment.

With nothing set, siestaflow runs on embedded defaults that need no server installed:
SQLite under ``var/``, e-mail written to files under ``var/mail/``, Celery on kombu's
filesystem transport. ``DATABASE_URL``, ``REDIS_URL`` and the mail settings switch to
PostgreSQL, Redis and a real mail provider. ``DEBUG=false`` is production: then
``SECRET_KEY`` and ``ALLOWED_HOSTS`` are required and cookies, HSTS and HTTPS are strict.
The README lists every variable.
"""

from datetime import timedelta
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key

from siestaflow.lib.config import Config

env = Config()

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.str("VAR_DIR", str(BASE_DIR / "var")))
VAR_DIR.mkdir(parents=True, exist_ok=True)

DEBUG = env.bool("DEBUG", default=True)


def _development_secret_key() -> str:
    """A random key kept in var/ so sessions survive restarts of a development server."""
    path = VAR_DIR / "secret_key"
    if not path.exists():
        path.write_text(get_random_secret_key())
        path.chmod(0o600)
    return path.read_text().strip()


SECRET_KEY = env.str("SECRET_KEY", None) or (_development_secret_key() if DEBUG else None)
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is false")
if not DEBUG and len(SECRET_KEY) < 50:
    raise ImproperlyConfigured("SECRET_KEY must be at least 50 characters when DEBUG is false")

ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
if not DEBUG and not ALLOWED_HOSTS:
    raise ImproperlyConfigured("ALLOWED_HOSTS is required when DEBUG is false")
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", [])
SITE_URL = env.str("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_simplejwt.token_blacklist",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "anymail",
    "accounts",
    "clusters",
    "molecules",
    "calculations",
    "mlmodels",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    # Last, so it can turn any refused login into the lockout answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "siestaflow.urls"
WSGI_APPLICATION = "siestaflow.wsgi.application"
ASGI_APPLICATION = "siestaflow.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.navigation",
            ],
        },
    },
]

# --- Database -------------------------------------------------------------------------
DATABASES = {"default": env.database("DATABASE_URL", f"sqlite:///{VAR_DIR / 'siestaflow.sqlite3'}")}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # IMMEDIATE takes the write lock at BEGIN: two writers never both read-then-write
    # (what makes claiming correct on SQLite); WAL lets readers go on meanwhile.
    DATABASES["default"]["OPTIONS"] = {
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
    }
    # A file, not memory, so that a test's Celery worker, live server and agents share it.
    DATABASES["default"]["TEST"] = {"NAME": str(VAR_DIR / "test-siestaflow.sqlite3")}
else:
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", 60, minimum=0)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
    if DATABASES["default"]["ENGINE"] == "django.db.backends.postgresql":
        # Django's, whose health check asks the server only when the connection is in doubt.
        DATABASES["default"]["ENGINE"] = "siestaflow.postgresql"
        # Parameters sent apart from the SQL (no quoting in Python), and a statement run
        # DATABASE_PREPARE_THRESHOLD times on a connection prepared by the server (parsed and
        # planned once). "none" turns preparing off, as a transaction-pooling PgBouncer needs.
        _prepare = env.str("DATABASE_PREPARE_THRESHOLD", "").strip().lower()
        DATABASES["default"]["OPTIONS"] = {
            "server_side_binding": True,
            "prepare_threshold": None if _prepare == "none" else env.int("DATABASE_PREPARE_THRESHOLD", 5, minimum=0),
            **DATABASES["default"].get("OPTIONS", {}),
        }
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Cache and Celery -----------------------------------------------------------------
REDIS_URL = env.redis_url("REDIS_URL")
if REDIS_URL:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
    CELERY_BROKER_URL = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": 3600}
else:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.filebased.FileBasedCache",
            "LOCATION": str(VAR_DIR / "cache"),
        }
    }
    _broker_dir = VAR_DIR / "celery" / "broker"
    (VAR_DIR / "celery" / "processed").mkdir(parents=True, exist_ok=True)
    _broker_dir.mkdir(parents=True, exist_ok=True)
    # kombu's filesystem transport: a real broker made of files, no server to install.
    CELERY_BROKER_URL = "filesystem://"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(_broker_dir),
        "data_folder_out": str(_broker_dir),
        "processed_folder": str(VAR_DIR / "celery" / "processed"),
        "control_folder": str(VAR_DIR / "celery" / "control"),
        "store_processed": False,
    }
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", 120, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = CELERY_TASK_TIME_LIMIT - 10 if CELERY_TASK_TIME_LIMIT > 20 else None
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_BEAT_SCHEDULE_FILENAME = str(VAR_DIR / "celerybeat-schedule")
CELERY_TIMEZONE = "UTC"

# --- Mail -----------------------------------------------------------------------------
MAIL_PROVIDER = env.choice(
    "MAIL_PROVIDER", ("file", "console", "smtp", "mailtrap", "sendgrid"), "file"
)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", "siestaflow <siestaflow@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
ANYMAIL = {}
if MAIL_PROVIDER == "file":
    EMAIL_BACKEND = "django.core.mail.backends.filebased.EmailBackend"
    EMAIL_FILE_PATH = env.str("EMAIL_FILE_PATH", str(VAR_DIR / "mail"))
elif MAIL_PROVIDER == "console":
    EMAIL_BACKEND = "django.core.mail.backends.console.EmailBackend"
elif MAIL_PROVIDER == "smtp":
    EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    EMAIL_HOST = env.str("EMAIL_HOST")
    EMAIL_PORT = env.int("EMAIL_PORT", 587, minimum=1)
    EMAIL_HOST_USER = env.str("EMAIL_HOST_USER", "")
    EMAIL_HOST_PASSWORD = env.str("EMAIL_HOST_PASSWORD", "")
    EMAIL_USE_TLS = env.bool("EMAIL_USE_TLS", True)
elif MAIL_PROVIDER == "mailtrap":
    EMAIL_BACKEND = "anymail.backends.mailtrap.EmailBackend"
    ANYMAIL["MAILTRAP_API_TOKEN"] = env.str("MAILTRAP_API_TOKEN")
    if env.str("MAILTRAP_TEST_INBOX_ID", None):
        ANYMAIL["MAILTRAP_TEST_INBOX_ID"] = env.str("MAILTRAP_TEST_INBOX_ID")
else:
    EMAIL_BACKEND = "anymail.backends.sendgrid.EmailBackend"
    ANYMAIL["SENDGRID_API_KEY"] = env.str("SENDGRID_API_KEY")
EMAIL_TIMEOUT = env.int("EMAIL_TIMEOUT", 10, minimum=1)

# --- Accounts, sessions, JWT, throttling ----------------------------------------------
AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator", "OPTIONS": {"min_length": 10}},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "login"

AXES_FAILURE_LIMIT = env.int("LOGIN_FAILURE_LIMIT", 5, minimum=1)
AXES_COOLOFF_TIME = timedelta(minutes=env.int("LOGIN_COOLOFF_MINUTES", 15, minimum=1))
# Each entry locks on its own: too many failures for one account, or from one address.
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "accounts.lockout.lockout_response"
AXES_USERNAME_FORM_FIELD = "username"
AXES_VERBOSE = False

JWT_REFRESH_COOKIE = "siestaflow_refresh"
JWT_REFRESH_COOKIE_PATH = "/api/auth/"
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env.int("JWT_ACCESS_MINUTES", 5, minimum=1)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env.int("JWT_REFRESH_DAYS", 7, minimum=1)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": env.str("JWT_SIGNING_KEY", None) or SECRET_KEY,
    "ALGORITHM": "HS256",
}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 50,
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
    "EXCEPTION_HANDLER": "siestaflow.api.exception_handler",
    # ?format= names file formats of downloads (csv, jsonl, xyz, fdf), not DRF renderers.
    "URL_FORMAT_OVERRIDE": None,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "siestaflow API",
    "DESCRIPTION": "Calculations, molecules, clusters, ML models, and the cluster agents' API.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"CalculationStateEnum": "calculations.states.State"},
}

# --- Security -------------------------------------------------------------------------
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"
CSRF_COOKIE_SAMESITE = "Lax"
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env.int("SECURE_HSTS_SECONDS", 31536000, minimum=0)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    if env.bool("BEHIND_TLS_PROXY", False):
        SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
JWT_REFRESH_COOKIE_SECURE = not DEBUG

# --- Calculations, clusters, agents ----------------------------------------------------
# Whether every calculation needs a moderator's approval (a cluster may override it).
REQUIRE_APPROVAL = env.bool("REQUIRE_APPROVAL", False)
# A claimed or running calculation whose agent is silent this long is lost and requeued.
LEASE_SECONDS = env.int("LEASE_SECONDS", 300, minimum=10)
LEASE_MAX_ATTEMPTS = env.int("LEASE_MAX_ATTEMPTS", 3, minimum=1)
HEARTBEAT_RAW_RETENTION_DAYS = env.int("HEARTBEAT_RAW_RETENTION_DAYS", 7, minimum=1)
HEARTBEAT_MINUTE_RETENTION_DAYS = env.int("HEARTBEAT_MINUTE_RETENTION_DAYS", 90, minimum=1)
LOG_RETENTION_DAYS = env.int("LOG_RETENTION_DAYS", 90, minimum=1)
# Heartbeats and prediction records commit without waiting for the disk (PostgreSQL's
# synchronous_commit off for those transactions only): a PostgreSQL crash may lose the last
# fraction of a second of them, never anything else. False: every commit waits for the disk.
FAST_COMMITS = env.bool("FAST_COMMITS", True)
UPLOAD_MAX_BYTES = env.int("UPLOAD_MAX_BYTES", 64 * 1024 * 1024, minimum=1024)
RESULT_MAX_BYTES = env.int("RESULT_MAX_BYTES", 8 * 1024 * 1024, minimum=1024)
ARTIFACT_MAX_BYTES = env.int("ARTIFACT_MAX_BYTES", 4 * 1024 * 1024, minimum=1024)
DATA_UPLOAD_MAX_MEMORY_SIZE = RESULT_MAX_BYTES + ARTIFACT_MAX_BYTES * 4
CELERY_BEAT_SCHEDULE = {
    "expire-leases": {"task": "calculations.tasks.expire_leases", "schedule": 30.0},
    "downsample-heartbeats": {"task": "clusters.tasks.downsample_heartbeats", "schedule": 300.0},
    "prune-logs": {"task": "calculations.tasks.prune_logs", "schedule": 3600.0},
}

# --- ML models (Docker containers following SageMaker's bring-your-own-container contract)
DOCKER_HOST = env.str("DOCKER_HOST", "unix:///var/run/docker.sock")
# "published": the container's 8080 is published on a free host port (production);
# "host": host networking with a free port passed in SAGEMAKER_BIND_TO_PORT (engines without a bridge).
MODEL_NETWORK_MODE = env.choice("MODEL_NETWORK_MODE", ("published", "host"), "published")
MODEL_STOP_TIMEOUT = env.int("MODEL_STOP_TIMEOUT", 30, minimum=1)
MODEL_PING_INTERVAL = env.int("MODEL_PING_INTERVAL", 15, minimum=1)
MODEL_INVOKE_TIMEOUT = env.int("MODEL_INVOKE_TIMEOUT", 60, minimum=1)
MODEL_MAX_PAYLOAD_BYTES = env.int("MODEL_MAX_PAYLOAD_BYTES", 6 * 1024 * 1024, minimum=1024)
MODEL_CRASH_LOOP_FAILURES = env.int("MODEL_CRASH_LOOP_FAILURES", 5, minimum=1)
MODEL_CRASH_LOOP_WINDOW = env.int("MODEL_CRASH_LOOP_WINDOW", 600, minimum=10)
CELERY_BEAT_SCHEDULE["supervise-models"] = {"task": "mlmodels.tasks.supervise", "schedule": float(MODEL_PING_INTERVAL)}

# --- Static files, i18n, logging ------------------------------------------------------
STATIC_URL = "static/"
STATIC_ROOT = Path(env.str("STATIC_ROOT", str(BASE_DIR / "staticfiles")))
STATICFILES_DIRS = [BASE_DIR / "siestaflow" / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"
        if DEBUG
        else "whitenoise.storage.CompressedManifestStaticFilesStorage"
    },
}
MEDIA_ROOT = Path(env.str("MEDIA_ROOT", str(VAR_DIR / "media")))

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

LOG_LEVEL = env.choice("LOG_LEVEL", ("debug", "info", "warning", "error"), "info").upper()
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {"django.db.backends": {"level": "INFO"}},
}

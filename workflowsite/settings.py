"""Settings for Workflow Builder: one module, driven by environment variables.

Every variable has a strict reader below; a bad value stops the process with a
message naming the variable, rather than running with a surprise.
"""

from __future__ import annotations

import ipaddress
import os
import re
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import dj_database_url
from corsheaders.defaults import default_headers as cors_default_headers
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off"):
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}") from None


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be a number, not {raw!r}") from None
    if value < 0:
        raise ImproperlyConfigured(f"{name} must not be negative, not {raw!r}")
    return value


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


TESTING = "pytest" in sys.modules or env_bool("WB_TESTING", False)
DEBUG = env_bool("DEBUG", True)
SECRET_KEY = env_str("SECRET_KEY")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off")
    SECRET_KEY = "dev-only-insecure-key-change-me-" + "x" * 32

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "127.0.0.1,localhost,testserver")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", "http://127.0.0.1:8000,http://localhost:8000")

INSTALLED_APPS = [
    "daphne",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "rest_framework_api_key",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "csp",
    "django_htmx",
    "guardian",
    "reversion",
    "channels",
    "django_celery_beat",
    # Login lockout (issue 15): its admin lists attempts and lockouts; deleting one unlocks.
    "axes",
    "rest_framework_simplejwt.token_blacklist",
    "apps.accounts",
    "apps.workflows",
    "apps.sharing",
    "apps.versions",
    "apps.executions",
    # Collaboration (issue 7): templates, import/export, comments/activity/notifications.
    "apps.templates",
    "apps.transfer",
    "apps.comments",
    # Connectors (issue 9): credentials, http, notifications, mapping, AI.
    "apps.connectors",
    # Metrics and operations (issue 8).
    "apps.metrics",
    # Work items and triggers (issue 5): approvals, schedules, event triggers, inbound webhooks.
    "apps.worklist",
    "apps.triggers",
]

MIDDLEWARE = [
    # First: every later log line of the request carries its correlation id.
    "apps.metrics.middleware.CorrelationIdMiddleware",
    "apps.metrics.middleware.RequestMetricsMiddleware",
    # Database pool exhausted or Redis down: 503 + Retry-After instead of 500 (counted and logged above).
    "apps.accounts.overload.OverloadMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "corsheaders.middleware.CorsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    # Before CommonMiddleware: /api/ paths take the other trailing-slash spelling instead of APPEND_SLASH.
    "apps.accounts.middleware.ApiOptionalSlashMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Last, as django-axes asks: turns a lockout into the "too many attempts" answer.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "workflowsite.urls"
ASGI_APPLICATION = "workflowsite.asgi.application"
WSGI_APPLICATION = None

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
            ],
        },
    },
]

#
# Database and Redis
#

DATABASE_URL = env_str("DATABASE_URL")
if not DATABASE_URL:
    raise ImproperlyConfigured(
        "DATABASE_URL is not set. Use `make run` / `make test`, which start the embedded "
        "servers, or `eval $(python deploy/local/devstack.py env)` in your shell."
    )
# Connections come from a pool per process (psycopg_pool through Django's "pool" option): a request or a
# task holds one only while it runs, and a process never opens more than WB_DB_POOL_MAX_SIZE. A request
# that waits WB_DB_POOL_TIMEOUT seconds without getting one answers 503 with Retry-After
# (apps.accounts.overload). A Celery worker widens its own pool to its concurrency + 2 (workflowsite/celery.py).
# Budget (docs/operations.md, "Capacity"): web processes x WB_DB_POOL_MAX_SIZE + worker processes x
# (concurrency + 2) + beat 2 + a few for psql/migrations must stay under PostgreSQL's max_connections.
WB_DB_POOL = env_bool("WB_DB_POOL", True)
WB_DB_POOL_MIN_SIZE = env_int("WB_DB_POOL_MIN_SIZE", 2)
WB_DB_POOL_MAX_SIZE = env_int("WB_DB_POOL_MAX_SIZE", 10)
WB_DB_POOL_TIMEOUT = env_float("WB_DB_POOL_TIMEOUT", 5.0)
if WB_DB_POOL_MAX_SIZE < 1 or WB_DB_POOL_MIN_SIZE < 0 or WB_DB_POOL_MIN_SIZE > WB_DB_POOL_MAX_SIZE:
    raise ImproperlyConfigured(
        f"WB_DB_POOL_MIN_SIZE ({WB_DB_POOL_MIN_SIZE}) must be between 0 and WB_DB_POOL_MAX_SIZE "
        f"({WB_DB_POOL_MAX_SIZE}), "
        "which must be at least 1"
    )
# Seconds a client is told to wait (Retry-After) when the server is at capacity or Redis is down.
WB_RETRY_AFTER_SECONDS = env_int("WB_RETRY_AFTER_SECONDS", 2)
DATABASES = {
    "default": dj_database_url.parse(DATABASE_URL, conn_max_age=0 if WB_DB_POOL else env_int("DB_CONN_MAX_AGE", 60))
}
# With the pool this is the pool's check of a connection before handing it out (one round trip), so a
# restarted PostgreSQL costs no request an error.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
if WB_DB_POOL:
    DATABASES["default"].setdefault("OPTIONS", {})["pool"] = {
        "min_size": WB_DB_POOL_MIN_SIZE,
        "max_size": WB_DB_POOL_MAX_SIZE,
        "timeout": WB_DB_POOL_TIMEOUT,
        # Connections idle this long are closed (down to min_size), so a burst's connections go back.
        "max_idle": env_float("WB_DB_POOL_MAX_IDLE", 300.0),
        "name": "default",
    }
# The engine's hop statements (apps.executions.engine.store) bind their parameters on the server, and
# psycopg prepares a statement after this many executions on a connection, so PostgreSQL parses and plans
# each once per connection. Other queries are client-bound and never prepared. Empty turns preparing off
# (a pooler such as PgBouncer before 1.21 in transaction mode cannot keep prepared statements).
WB_DB_PREPARE_THRESHOLD = env_str("WB_DB_PREPARE_THRESHOLD", "2")
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
    int(WB_DB_PREPARE_THRESHOLD) if WB_DB_PREPARE_THRESHOLD.strip() else None
)
if os.environ.get("WB_TEST_DB_NAME"):
    DATABASES["default"]["TEST"] = {"NAME": os.environ["WB_TEST_DB_NAME"]}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env_str("REDIS_URL")
if not REDIS_URL:
    raise ImproperlyConfigured("REDIS_URL is not set (see DATABASE_URL above).")


def _celery_url(redis_url: str, db: int) -> str:
    """redis-py says unix:///path, Celery says redis+socket:///path."""
    if redis_url.startswith("unix://"):
        return "redis+socket://" + redis_url[len("unix://") :].split("?")[0] + f"?virtual_host={db}"
    return redis_url.rstrip("/") + f"/{db}" if redis_url.count("/") <= 2 else redis_url


def _redis_db_url(redis_url: str, db: int) -> str:
    if redis_url.startswith("unix://"):
        return redis_url.split("?")[0] + f"?db={db}"
    base = redis_url.split("?")[0]
    parts = base.rstrip("/").split("/")
    if len(parts) > 3 and parts[-1].isdigit():
        parts = parts[:-1]
    return "/".join(parts) + f"/{db}"


REDIS_DB = env_int("REDIS_DB", 0)
REDIS_CACHE_URL = _redis_db_url(REDIS_URL, REDIS_DB + 1)

CACHES = {
    "default": {
        # Fails open: with Redis down a read misses and a write is dropped (so rate limits are not
        # enforced meanwhile) instead of failing the request; short timeouts keep a hung Redis from
        # holding requests.
        "BACKEND": "apps.accounts.cache.FailOpenRedisCache",
        "LOCATION": REDIS_CACHE_URL,
        "KEY_PREFIX": env_str("WB_CACHE_PREFIX", "wb"),
        "OPTIONS": {"socket_connect_timeout": 1, "socket_timeout": 1},
    }
}

CHANNEL_LAYERS = {
    "default": {
        "BACKEND": "channels_redis.core.RedisChannelLayer",
        "CONFIG": {
            # A consumer waits for its messages with BZPOPMIN for 5 s (channels_redis' brpop_timeout);
            # redis-py 8's default socket_timeout is 5 s too, so the read timed out first and killed
            # the consumer (and its websocket) every 5 s of quiet. Reads get a longer timeout.
            "hosts": [{"address": _redis_db_url(REDIS_URL, REDIS_DB + 2), "socket_timeout": 30}],
            "prefix": env_str("WB_CHANNELS_PREFIX", "wb"),
        },
    }
}

#
# Celery
#

CELERY_BROKER_URL = _celery_url(REDIS_URL, REDIS_DB)
# Celery reads "redis+socket://" as the redis backend on a unix socket (a bare "socket://" is no backend).
CELERY_RESULT_BACKEND = _celery_url(REDIS_URL, REDIS_DB + 3)
CELERY_TASK_DEFAULT_QUEUE = env_str("WB_CELERY_QUEUE", "workflow")
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_EXPIRES = 3600
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A message un-acked for this long is handed to another worker (visibility timeout).
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": env_int("WB_VISIBILITY_TIMEOUT", 3600)}
CELERY_BEAT_SCHEDULER = "django_celery_beat.schedulers:DatabaseScheduler"
# Every periodic task is registered here; beat copies them into django_celery_beat's tables
# on start, where operators can pause them from the admin.
CELERY_BEAT_SCHEDULE = {
    # /readyz reports beat as alive while this heartbeat key is fresh.
    "beat-heartbeat": {"task": "apps.accounts.tasks.beat_heartbeat", "schedule": 10.0},
}
CELERY_TIMEZONE = "UTC"

#
# Auth, API
#

AUTHENTICATION_BACKENDS = [
    # First: refuses a locked-out username + address before any password is checked.
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
    "guardian.backends.ObjectPermissionBackend",
]
ANONYMOUS_USER_NAME = None  # guardian: no anonymous user object
GUARDIAN_RAISE_403 = False
LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "login"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
]

API_KEY_CUSTOM_HEADER = "HTTP_X_API_KEY"

REST_FRAMEWORK: dict[str, Any] = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "apps.accounts.authentication.APIKeyAuthentication",
        "apps.accounts.authentication.TokenAuthentication",
        "rest_framework_simplejwt.authentication.JWTAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.SearchFilter",
        "rest_framework.filters.OrderingFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": env_int("API_PAGE_SIZE", 50),
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # Keyed on accounts.services.client_ip: X-Forwarded-For counts only from WB_TRUSTED_PROXIES.
    "DEFAULT_THROTTLE_CLASSES": [
        "apps.accounts.throttling.AnonRateThrottle",
        "apps.accounts.throttling.UserRateThrottle",
    ],
    "DEFAULT_THROTTLE_RATES": {
        "anon": env_str("API_THROTTLE_ANON", "60/minute"),
        "user": env_str("API_THROTTLE_USER", "6000/minute"),
        # POST /api/v1/auth/token, per client address: slows password guessing.
        "auth": env_str("API_THROTTLE_AUTH", "20/minute"),
    },
    "EXCEPTION_HANDLER": "apps.accounts.api.exceptions.exception_handler",
    "TEST_REQUEST_DEFAULT_FORMAT": "json",
}

# The role new users get (viewer, builder, operator, admin; empty for none): see apps/accounts/roles.py.
WB_DEFAULT_ROLE = env_str("WB_DEFAULT_ROLE", "builder")
if WB_DEFAULT_ROLE not in ("", "viewer", "builder", "operator", "admin"):
    raise ImproperlyConfigured(
        f"WB_DEFAULT_ROLE must be viewer, builder, operator, admin or empty, not {WB_DEFAULT_ROLE!r}"
    )
# POST /api/v1/auth/token issues tokens stored hashed, valid this many days (rotate before then).
WB_API_TOKEN_DAYS = env_int("WB_API_TOKEN_DAYS", 30)
# JWT for integrations: short access tokens; each refresh token works once (rotation + blacklist).
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": timedelta(minutes=env_int("WB_JWT_ACCESS_MINUTES", 15)),
    "REFRESH_TOKEN_LIFETIME": timedelta(days=env_int("WB_JWT_REFRESH_DAYS", 7)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "UPDATE_LAST_LOGIN": True,
    "SIGNING_KEY": env_str("WB_JWT_SIGNING_KEY") or SECRET_KEY,
    "AUTH_HEADER_TYPES": ("Bearer",),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Workflow Builder API",
    "DESCRIPTION": "Design, run and watch durable workflows.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "COMPONENT_SPLIT_REQUEST": True,
    # Group operations by resource (workflows, executions, work-items …) instead of one "v1" tag.
    "SCHEMA_PATH_PREFIX": r"/api/v1",
    # Served from static files (the CSP allows no CDN); the split view keeps scripts out of the page.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
}

#
# Security
#

# Proxies (addresses or CIDR ranges) whose X-Forwarded-For we believe: the client address is the
# right-most X-Forwarded-For entry that is not one of them (accounts.services.client_ip). Empty:
# the peer address only, whatever headers say. Used by throttles, the login lockout, the audit
# log and the metrics allow-list. Run the web server without proxy headers (uvicorn's
# --no-proxy-headers): they trust the left-most entry.
WB_TRUSTED_PROXIES = env_list("WB_TRUSTED_PROXIES")
for _proxy in WB_TRUSTED_PROXIES:
    try:
        ipaddress.ip_network(_proxy, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"WB_TRUSTED_PROXIES: {_proxy!r} is not an address or CIDR range") from None

# Login lockout (django-axes) on /accounts/login/, /admin/login/ and POST /api/v1/auth/token:
# after WB_LOGIN_FAILURE_LIMIT failures for one username from one address, that pair is refused
# (429, "too many attempts") for WB_LOGIN_LOCKOUT_MINUTES; an operator unlocks it at once by
# deleting its row under Axes > Access attempts in the admin, or with `manage.py axes_reset`.
AXES_FAILURE_LIMIT = env_int("WB_LOGIN_FAILURE_LIMIT", 5)
AXES_COOLOFF_TIME = timedelta(minutes=env_int("WB_LOGIN_LOCKOUT_MINUTES", 15))
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_CLIENT_IP_CALLABLE = "apps.accounts.services.client_ip"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/locked_out.html"
AXES_HTTP_RESPONSE_CODE = 429
AXES_VERBOSE = False

SESSION_COOKIE_HTTPONLY = True
CSRF_COOKIE_HTTPONLY = False  # htmx reads the token from the page, not the cookie
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = env_int("SECURE_HSTS_SECONDS", 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
    if not SECURE_HSTS_PRELOAD:
        # Preloading is a commitment browsers make hard to undo: an operator opts in with the variable.
        SILENCED_SYSTEM_CHECKS = ["security.W021"]
    # Probes from the load balancer or orchestrator come over plain HTTP inside the network.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$", r"^readyz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'", "ws:", "wss:"],
        "frame-ancestors": ["'none'"],
        "form-action": ["'self'"],
        "base-uri": ["'self'"],
    }
}

# Browser apps on other origins calling the API with a token, JWT or API key (docs/security.md, "CORS").
# Empty (the default): no cross-origin answers at all. Cookies are never allowed across origins
# (CORS_ALLOW_CREDENTIALS stays off), so a listed origin cannot ride a signed-in user's session.
CORS_ALLOWED_ORIGINS = env_list("CORS_ALLOWED_ORIGINS")
for _origin in CORS_ALLOWED_ORIGINS:
    if not re.fullmatch(r"https?://[^/\s*]+", _origin):
        raise ImproperlyConfigured(
            f"CORS_ALLOWED_ORIGINS entries must be scheme://host[:port] with no path, not {_origin!r}"
        )
CORS_URLS_REGEX = r"^/api/.*$"
# The library's defaults plus the API-key header the API accepts and the correlation id.
CORS_ALLOW_HEADERS = (*cors_default_headers, "x-api-key", "x-request-id")
CORS_EXPOSE_HEADERS = ["X-Request-ID", "Retry-After"]

#
# Static files, i18n
#

STATIC_URL = "/static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
STATICFILES_DIRS = [BASE_DIR / "static"]
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
}
WHITENOISE_USE_FINDERS = True
WHITENOISE_AUTOREFRESH = DEBUG

LANGUAGE_CODE = "en-us"
TIME_ZONE = env_str("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

EMAIL_BACKEND = env_str("EMAIL_BACKEND", "django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env_str("DEFAULT_FROM_EMAIL", "workflow-builder@localhost")

#
# Logging
#

LOG_LEVEL = env_str("LOG_LEVEL", "INFO")
# "plain" for people, "json" (one object per line, with correlation_id) for log shippers.
LOG_FORMAT = env_str("LOG_FORMAT", "plain")
if LOG_FORMAT not in ("plain", "json"):
    raise ImproperlyConfigured(f"LOG_FORMAT must be plain or json, not {LOG_FORMAT!r}")
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {
        "correlation": {"()": "apps.metrics.logs.CorrelationIdFilter"},
        "capacity": {"()": "apps.accounts.overload.SkipCapacityErrors"},
    },
    "formatters": {
        "plain": {"format": "%(asctime)s %(levelname)s %(name)s [%(correlation_id)s]: %(message)s"},
        "json": {"()": "apps.metrics.logs.JsonFormatter"},
    },
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": LOG_FORMAT, "filters": ["correlation"]}},
    "root": {"handlers": ["console"], "level": LOG_LEVEL},
    "loggers": {
        "django.db.backends": {"level": "INFO"},
        # One line per refused request under overload would bury the rest (workflow.capacity summarises).
        "django.request": {"filters": ["capacity"]},
        "daphne": {"level": "WARNING"},
    },
}
# Celery keeps the handlers above (and their format) instead of installing its own.
CELERY_WORKER_HIJACK_ROOT_LOGGER = False

#
# Product settings
#

# Outbound HTTP from workflow steps: hosts or CIDR ranges allowed despite being private.
WB_HTTP_ALLOWED_HOSTS = env_list("WB_HTTP_ALLOWED_HOSTS")
# /readyz answers 503 when beat's heartbeat is missing only if this is on (it always reports it).
WB_READYZ_REQUIRE_BEAT = env_bool("WB_READYZ_REQUIRE_BEAT", False)
# How often the reaper and the timer sweep run (seconds).
WB_SWEEP_INTERVAL = env_int("WB_SWEEP_INTERVAL", 5)
# A running step whose worker sent no heartbeat for this long is re-dispatched by the next sweep. Workers
# beat every 2 s (apps/executions/worker.py), so 10 s is five missed beats, and a step lost with its
# worker runs again within WB_STEP_HEARTBEAT_GRACE + WB_SWEEP_INTERVAL = 15 s by default.
WB_STEP_HEARTBEAT_GRACE = env_int("WB_STEP_HEARTBEAT_GRACE", 10)
if WB_STEP_HEARTBEAT_GRACE < 4:
    raise ImproperlyConfigured(
        f"WB_STEP_HEARTBEAT_GRACE must be at least 4 s (two heartbeats), not {WB_STEP_HEARTBEAT_GRACE}"
    )
# A step dispatched but not started for this long is dispatched again: its message was lost (reserved by
# a worker that was killed, or sent while Redis was down). This bounds recovery from those faults (20 s
# + the sweep; at 60 s the chaos runs took 63-65 s to finish, benchmarks/README.md). A step that was
# merely queued longer runs once anyway (its claim is conditional), at the cost of a second message.
WB_REDISPATCH_AFTER = env_int("WB_REDISPATCH_AFTER", 20)
# The execution page warns (suggesting continue-as-new) once a run's history has this many events.
WB_HISTORY_WARN_EVENTS = env_int("WB_HISTORY_WARN_EVENTS", 10000)
# Finished executions older than this many days are purged (pinned ones are kept).
WB_EXECUTION_RETENTION_DAYS = env_int("WB_EXECUTION_RETENTION_DAYS", 30)
CELERY_BEAT_SCHEDULE["purge-old-executions"] = {
    "task": "apps.executions.retention.purge_old_executions",
    "schedule": 3600.0,
}
# Task modules that are not an app's tasks.py (autodiscovery finds those).
CELERY_IMPORTS = [*globals().get("CELERY_IMPORTS", []), "apps.executions.retention"]

#
# Collaboration
#

# Versions kept per workflow; older ones are pruned by the periodic task below.
WB_VERSIONS_KEEP = env_int("WB_VERSIONS_KEEP", 50)
# Notification emails (each user can turn them off per kind in their preferences).
WB_NOTIFICATION_EMAILS = env_bool("WB_NOTIFICATION_EMAILS", True)
# Base URL for links in notification emails.
WB_SITE_URL = env_str("WB_SITE_URL", "http://127.0.0.1:8000")
CELERY_BEAT_SCHEDULE["prune-workflow-versions"] = {"task": "apps.versions.tasks.prune_versions", "schedule": 3600.0}

#
# Connectors
#

# Fernet key(s) encrypting stored credentials, comma-separated, the first one encrypting
# (rotation: put the new key first, run `manage.py rotate_credentials`, drop the old one).
# Unset: a key derived from SECRET_KEY.
CREDENTIALS_KEY = env_str("CREDENTIALS_KEY")
# http.request: default and largest timeout, response size cap (bytes).
WB_HTTP_DEFAULT_TIMEOUT = env_int("WB_HTTP_DEFAULT_TIMEOUT", 30)
WB_HTTP_MAX_TIMEOUT = env_int("WB_HTTP_MAX_TIMEOUT", 300)
WB_HTTP_MAX_RESPONSE_BYTES = env_int("WB_HTTP_MAX_RESPONSE_BYTES", 5 * 1024 * 1024)
# Circuit breaker per destination host, shared by all workers through Redis: this many
# failures in a row open it; after this many seconds one trial request may pass.
WB_HTTP_CIRCUIT_THRESHOLD = env_int("WB_HTTP_CIRCUIT_THRESHOLD", 5)
WB_HTTP_CIRCUIT_RESET_SECONDS = env_int("WB_HTTP_CIRCUIT_RESET_SECONDS", 30)
WB_HTTP_CIRCUIT_REDIS_URL = env_str("WB_HTTP_CIRCUIT_REDIS_URL", REDIS_URL)
# Modules imported at start-up to register in-house activities (besides entry points).
WB_ACTIVITY_MODULES = env_list("WB_ACTIVITY_MODULES")
# Email notifications use Django's EMAIL_BACKEND; the file backend writes here.
if env_str("EMAIL_FILE_PATH"):
    EMAIL_FILE_PATH = env_str("EMAIL_FILE_PATH")
# AI assistance: any OpenAI-compatible chat-completions endpoint. Unset: /api/v1/ai/interpret
# answers 503 and ai.complete fails; everything else works.
AI_BASE_URL = env_str("AI_BASE_URL")
AI_MODEL = env_str("AI_MODEL")
AI_API_KEY = env_str("AI_API_KEY")
AI_TIMEOUT = env_int("AI_TIMEOUT", 60)
# How many times interpret sends the validator's problems back to the model for a fix.
AI_REPAIR_ATTEMPTS = env_int("AI_REPAIR_ATTEMPTS", 1)
# Daily budgets (UTC days) of provider calls and tokens, per user and for everyone together;
# 0 = no limit. AI budget rows in the admin override them (per user, or the total).
AI_DAILY_REQUESTS_PER_USER = env_int("AI_DAILY_REQUESTS_PER_USER", 0)
AI_DAILY_TOKENS_PER_USER = env_int("AI_DAILY_TOKENS_PER_USER", 0)
AI_DAILY_REQUESTS_TOTAL = env_int("AI_DAILY_REQUESTS_TOTAL", 0)
AI_DAILY_TOKENS_TOTAL = env_int("AI_DAILY_TOKENS_TOTAL", 0)
# How long an answer is kept in the cache keyed by the normalised prompt; 0 turns it off.
AI_CACHE_SECONDS = env_int("AI_CACHE_SECONDS", 86400)

#
# Metrics and operations
#

# Record per-run and per-step metrics of finished runs: workers' collectors do it in batches,
# every WB_METRICS_INTERVAL seconds (one statement a batch; nothing on the engine's path).
WB_METRICS_ENABLED = env_bool("WB_METRICS_ENABLED", True)
WB_METRICS_INTERVAL = env_int("WB_METRICS_INTERVAL", 5)
# Raw rows (exact percentiles) are kept this many days; hourly rollups this many.
WB_METRICS_RAW_DAYS = env_int("WB_METRICS_RAW_DAYS", 90)
WB_METRICS_ROLLUP_DAYS = env_int("WB_METRICS_ROLLUP_DAYS", 730)
# GET /metrics (Prometheus) needs "Authorization: Bearer <token>" or a client address in the
# allow-list (addresses or CIDR ranges); with neither set it answers 403 to everyone.
WB_METRICS_TOKEN = env_str("WB_METRICS_TOKEN")
WB_METRICS_ALLOWED_IPS = env_list("WB_METRICS_ALLOWED_IPS")
# Further Celery queues whose depth /metrics reports (the default queue always is).
WB_METRICS_EXTRA_QUEUES = env_list("WB_METRICS_EXTRA_QUEUES")
# A running run with no step activity for this long is "stuck" (operations page, /metrics).
WB_STUCK_RUN_MINUTES = env_int("WB_STUCK_RUN_MINUTES", 15)
CELERY_BEAT_SCHEDULE["metrics-rollup-and-prune"] = {"task": "apps.metrics.tasks.rollup_and_prune", "schedule": 600.0}

#
# Work items and triggers
#

# Work-item notifications besides the in-app ones (and their emails): a JSON webhook, signed
# with HMAC-SHA256 (X-Workflow-Signature: sha256=<hex>) when a secret is set, and a
# Slack-compatible incoming webhook. Posts are retried, and recorded as deliveries.
WB_WORKLIST_WEBHOOK_URL = env_str("WB_WORKLIST_WEBHOOK_URL")
WB_WORKLIST_WEBHOOK_SECRET = env_str("WB_WORKLIST_WEBHOOK_SECRET")
WB_WORKLIST_SLACK_URL = env_str("WB_WORKLIST_SLACK_URL")
WB_WORKLIST_NOTIFY_ATTEMPTS = env_int("WB_WORKLIST_NOTIFY_ATTEMPTS", 4)
WB_WORKLIST_NOTIFY_BACKOFF = env_int("WB_WORKLIST_NOTIFY_BACKOFF", 2)
WB_WORKLIST_NOTIFY_TIMEOUT = env_int("WB_WORKLIST_NOTIFY_TIMEOUT", 10)
# Overdue work items expire within this many seconds even if their countdown message was lost.
CELERY_BEAT_SCHEDULE["worklist-sweep"] = {
    "task": "worklist.sweep",
    "schedule": float(env_int("WB_WORKLIST_SWEEP_INTERVAL", 5)),
}
# Inbound webhooks: X-Workflow-Timestamp must be within this many seconds of now, and each signed
# delivery is accepted once (replays answer 409).
WB_WEBHOOK_TOLERANCE_SECONDS = env_int("WB_WEBHOOK_TOLERANCE_SECONDS", 300)
# Inbound webhooks (POST /api/v1/hooks/<token>): requests per endpoint.
REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"]["webhook"] = env_str("API_THROTTLE_WEBHOOK", "120/minute")

#
# Hostile input (docs/hostile-input.md): limits on what users' JSON and expressions may cost
#

# JSON request bodies (the API's parser): at most this many bytes; every document (definition,
# run input, signal payload, request body) nests at most WB_JSON_MAX_DEPTH levels (bodies get
# a few more for their envelope). "\u0000" and lone surrogates are refused everywhere.
WB_JSON_MAX_BYTES = env_int("WB_JSON_MAX_BYTES", 10 * 1024 * 1024)
WB_JSON_MAX_DEPTH = env_int("WB_JSON_MAX_DEPTH", 64)
REST_FRAMEWORK["DEFAULT_PARSER_CLASSES"] = [
    "apps.workflows.api.parsers.JSONParser",
    "apps.workflows.api.parsers.FormParser",
    "apps.workflows.api.parsers.MultiPartParser",
]
# `matches` runs RE2 (linear time): a pattern of at most this many characters, compiled within
# this much memory (bytes), searched in a text of at most this many characters.
WB_REGEX_MAX_LENGTH = env_int("WB_REGEX_MAX_LENGTH", 1000)
WB_REGEX_MAX_MEMORY = env_int("WB_REGEX_MAX_MEMORY", 8 * 1024 * 1024)
WB_REGEX_MAX_TEXT = env_int("WB_REGEX_MAX_TEXT", 1_000_000)
# Templates ({{ … }}) and mapping functions (join, concat, replace) size a string before building
# it: one string at most WB_EXPRESSION_MAX_TEXT characters, all the strings one evaluation builds
# (a step's params, a mapping, a whole dry run) at most WB_EXPRESSION_BUDGET.
WB_EXPRESSION_MAX_TEXT = env_int("WB_EXPRESSION_MAX_TEXT", 1_000_000)
WB_EXPRESSION_BUDGET = env_int("WB_EXPRESSION_BUDGET", 10_000_000)

#
# Test overrides
#

if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    REST_FRAMEWORK["DEFAULT_THROTTLE_RATES"] = {
        "anon": env_str("API_THROTTLE_ANON", "1000/minute"),
        "user": env_str("API_THROTTLE_USER", "100000/minute"),
        "auth": env_str("API_THROTTLE_AUTH", "1000/minute"),
        "webhook": env_str("API_THROTTLE_WEBHOOK", "1000/minute"),
    }

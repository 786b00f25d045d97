"""Settings for the HPC user portal.

Every value comes from the environment (see the settings table in README.md). Defaults are a
safe development setup: SQLite for the portal and for the demo Slurm database, local services.
A bad value stops start-up with ImproperlyConfigured naming the variable.
"""

from __future__ import annotations

import ipaddress
import os
import re
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.utils.translation import gettext_lazy as _

from userportal.conf import (
    env,
    str_list,
    strict_bool,
    strict_choice,
    strict_float,
    strict_int,
    strict_ldap_attribute,
    strict_ldap_filter,
    strict_patterns,
)
from userportal.logconfig import logging_config

BASE_DIR = Path(__file__).resolve().parent.parent
VAR_DIR = Path(env.str("PORTAL_VAR_DIR", default=str(BASE_DIR / "var")))

DEBUG = strict_bool("PORTAL_DEBUG", default=False)
# Tests and `make run` set PORTAL_DEBUG or SECRET_KEY; production must provide SECRET_KEY
# (or SECRET_KEY_FILE, read by FileAwareEnv).
SECRET_KEY = env.str("SECRET_KEY", default="dev-only-insecure-key-do-not-deploy" if DEBUG else None)
if not SECRET_KEY:
    raise ImproperlyConfigured(
        "SECRET_KEY is not set: set it (or SECRET_KEY_FILE, a file holding it) when PORTAL_DEBUG is false."
    )

ALLOWED_HOSTS = str_list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]"])
CSRF_TRUSTED_ORIGINS = str_list("CSRF_TRUSTED_ORIGINS")

# --- Modules ---------------------------------------------------------------------------------
FEATURE_APPS = [
    "jobstats",
    "accountstats",
    "quotas",
    "priorities",
    "billing",
    "jobqueue",
    "top",
    "cloudstats",
    "nodes",
    "scheduler",
    "usersummary",
    "notes",
    "search",
    "pages",
    "extensions",
    "outreach",
]
# Modules shown in the navigation. A module is listed here once it has pages that work; cloudstats
# (OpenStack instances) by default only where a source of project members is configured.
CLOUDSTATS_MEMBERSHIP = strict_choice("CLOUDSTATS_MEMBERSHIP", default="", choices=("", "file", "ldap", "keystone"))
PORTAL_MODULES = str_list(
    "PORTAL_MODULES",
    default=["jobstats", "accountstats", "quotas", "priorities", "billing", "jobqueue", "top"]
    + ["usersummary", "notes", "search", "extensions"]
    + (["cloudstats"] if CLOUDSTATS_MEMBERSHIP else []),
)
if PORTAL_MODULES == ["all"]:  # every module (the test suite and the stack mount them all)
    PORTAL_MODULES = list(FEATURE_APPS)
for _module in PORTAL_MODULES:
    if _module not in FEATURE_APPS:
        raise ImproperlyConfigured(
            f"PORTAL_MODULES names an unknown module {_module!r}; known: {', '.join(FEATURE_APPS)}."
        )

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "axes",
    "simple_history",
    "mozilla_django_oidc",
    "userportal",
    "slurm",
    *FEATURE_APPS,
]
if DEBUG:
    INSTALLED_APPS.append("demo")  # the demo data generator (manage.py seed_demo) of `make run`; never in production

MIDDLEWARE = [
    "userportal.middleware.RequestLogMiddleware",  # first: it times everything below it
    "userportal.metrics.MetricsMiddleware",  # times and counts each request (/metrics)
    # Registered token POSTs (the job-script uploads) answered here, with what the middleware
    # down to CommonMiddleware add (userportal/token_posts.py: MIRRORED, in this order).
    "userportal.token_posts.TokenPostMiddleware",
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "userportal.middleware.ContentSecurityPolicyMiddleware",
    "userportal.middleware.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.locale.LocaleMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "userportal.auth.remote_user.DevelopmentRemoteUserMiddleware",
    "userportal.auth.remote_user.ShibbolethRemoteUserMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "userportal.access.AccessRuleMiddleware",
    # Last, as django-axes asks: it turns lockouts raised in authenticate() into responses.
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "userportal.urls"
WSGI_APPLICATION = "userportal.wsgi.application"
ASGI_APPLICATION = "userportal.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [BASE_DIR / "templates"],
        "OPTIONS": {
            # Django's cached loader, with each template's constant runs rendered once per language
            "loaders": [
                (
                    "userportal.template_folding.Loader",
                    ["django.template.loaders.filesystem.Loader", "django.template.loaders.app_directories.Loader"],
                )
            ],
            "context_processors": [
                "django.template.context_processors.request",
                "django.template.context_processors.i18n",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
                "userportal.context_processors.portal",
            ],
        },
    },
]

# --- Databases -------------------------------------------------------------------------------
# The portal database: SQLite by default; PostgreSQL and MariaDB through DATABASE_URL.
# The Slurm accounting database: read-only, on the `slurm` alias (slurm.router.SlurmRouter).
if "DATABASE_URL" not in os.environ or "SLURMDB_URL" not in os.environ:
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # the default SQLite files of a fresh clone live here
DATABASES = {
    "default": env.db("DATABASE_URL", default=f"sqlite:///{VAR_DIR / 'portal.sqlite3'}"),
    "slurm": env.db("SLURMDB_URL", default=f"sqlite:///{VAR_DIR / 'slurm_demo.sqlite3'}"),
}
for _alias, _db in DATABASES.items():
    if _db["ENGINE"].endswith("mysql"):
        _db.setdefault("OPTIONS", {}).setdefault("charset", "utf8mb4")
    if _db["ENGINE"].endswith("sqlite3"):
        # Several processes and threads (runserver, Celery) share the demo files: wait for the lock
        # instead of failing, and take it when a transaction starts (the audit chain's writers).
        _db.setdefault("OPTIONS", {}).setdefault("timeout", 20)
        _db["OPTIONS"].setdefault("transaction_mode", "IMMEDIATE")
    _db.setdefault("CONN_MAX_AGE", strict_int("PORTAL_CONN_MAX_AGE", default=0, minimum=0))
DATABASES["slurm"].setdefault("TEST", {})
# The read-only databases (slurm; robinhood, below): one userportal.dbrouter.ReadOnlyRouter each.
DATABASE_ROUTERS = ["slurm.router.SlurmRouter", "quotas.router.RobinhoodRouter"]
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

# Cluster names as Slurm's ClusterName; per-cluster tables are <cluster>_job_table and so on.
SLURM_CLUSTERS = str_list("SLURM_CLUSTERS", default=["testcluster"])
if not SLURM_CLUSTERS:
    raise ImproperlyConfigured("SLURM_CLUSTERS must name at least one cluster.")
for _cluster in SLURM_CLUSTERS:
    if not _cluster.replace("_", "").replace("-", "").isalnum():
        raise ImproperlyConfigured(f"SLURM_CLUSTERS: {_cluster!r} is not a valid Slurm cluster name.")

# --- Prometheus ------------------------------------------------------------------------------
PROMETHEUS_URL = env.str("PROMETHEUS_URL", default="http://127.0.0.1:9090")
PROMETHEUS_TIMEOUT = strict_float("PROMETHEUS_TIMEOUT", default=5.0, minimum=0.1)
PROMETHEUS_BEARER_TOKEN = env.str("PROMETHEUS_BEARER_TOKEN", default="")
# Extra matcher added to every selector, e.g. cluster="narval" (the exporters do not set it).
PROMETHEUS_EXTRA_LABELS = env.dict("PROMETHEUS_EXTRA_LABELS", default={})
# rate() window in seconds: at least 4 x the exporters' scrape interval.
PROMETHEUS_RATE_WINDOW = strict_int("PROMETHEUS_RATE_WINDOW", default=120, minimum=15)

# --- Redis and Celery ------------------------------------------------------------------------
REDIS_URL = env.str("REDIS_URL", default="redis://127.0.0.1:6379/0")
CELERY_BROKER_URL = env.str("CELERY_BROKER_URL", default=REDIS_URL)
CELERY_RESULT_BACKEND = env.str("CELERY_RESULT_BACKEND", default=REDIS_URL)
CELERY_TASK_ALWAYS_EAGER = strict_bool("CELERY_TASK_ALWAYS_EAGER", default=False)
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_TASK_ACKS_LATE = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TIMEZONE = "UTC"

# --- Authentication --------------------------------------------------------------------------
AUTHENTICATION_BACKENDS = ["axes.backends.AxesStandaloneBackend"]

# Development login: REMOTE_USER and affiliation taken from the runserver environment (DEBUG only).
PORTAL_DEV_REMOTE_USER = os.environ.get("REMOTE_USER", "") if DEBUG else ""
PORTAL_DEV_AFFILIATION = os.environ.get("affiliation", "") if DEBUG else ""

# Shibboleth-style: Apache sets REMOTE_USER (eppn) and an affiliation attribute.
PORTAL_REMOTE_USER = strict_bool("PORTAL_REMOTE_USER", default=False) or bool(PORTAL_DEV_REMOTE_USER)
PORTAL_REMOTE_USER_HEADER = env.str("PORTAL_REMOTE_USER_HEADER", default="REMOTE_USER")
PORTAL_AFFILIATION_ATTRIBUTE = env.str("PORTAL_AFFILIATION_ATTRIBUTE", default="affiliation")
PORTAL_STAFF_AFFILIATIONS = str_list("PORTAL_STAFF_AFFILIATIONS")
# Realms whose users are cluster users: alice@example.org -> alice. Names from other realms are refused.
PORTAL_ALLOWED_REALMS = str_list("PORTAL_ALLOWED_REALMS")
# REMOTE_USER names without a realm: refused unless the web server is known to send only local
# names (the development login names bare users). See userportal.auth.identity.
PORTAL_ALLOW_BARE_USERNAMES = strict_bool("PORTAL_ALLOW_BARE_USERNAMES", default=bool(PORTAL_DEV_REMOTE_USER))
# An account bound to a Shibboleth identity may also be opened by an OIDC identity of the same
# username (and the other way round): only when both sources name the same people.
PORTAL_LINK_IDENTITY_SOURCES = strict_bool("PORTAL_LINK_IDENTITY_SOURCES", default=False)
# The identity variables come from the web server (mod_shib). A name starting with HTTP_ would be a
# request header the client controls: refused unless the proxy in front is known to strip it.
if not strict_bool("PORTAL_TRUST_HTTP_IDENTITY_HEADERS", default=False):
    for _name in ("PORTAL_REMOTE_USER_HEADER", "PORTAL_AFFILIATION_ATTRIBUTE"):
        if globals()[_name].upper().startswith("HTTP_"):
            raise ImproperlyConfigured(
                f"{_name}={globals()[_name]!r} is a request header clients can forge; "
                "set PORTAL_TRUST_HTTP_IDENTITY_HEADERS=true only if the proxy strips it."
            )
if PORTAL_REMOTE_USER:
    AUTHENTICATION_BACKENDS.append("userportal.auth.remote_user.ShibbolethBackend")

# OpenID Connect (mozilla-django-oidc); enabled when a client id is set.
OIDC_RP_CLIENT_ID = env.str("OIDC_RP_CLIENT_ID", default="")
OIDC_RP_CLIENT_SECRET = env.str("OIDC_RP_CLIENT_SECRET", default="")
OIDC_RP_SIGN_ALGO = env.str("OIDC_RP_SIGN_ALGO", default="RS256")
OIDC_RP_SCOPES = env.str("OIDC_RP_SCOPES", default="openid email profile")
OIDC_OP_AUTHORIZATION_ENDPOINT = env.str("OIDC_OP_AUTHORIZATION_ENDPOINT", default="")
OIDC_OP_TOKEN_ENDPOINT = env.str("OIDC_OP_TOKEN_ENDPOINT", default="")
OIDC_OP_USER_ENDPOINT = env.str("OIDC_OP_USER_ENDPOINT", default="")
OIDC_OP_JWKS_ENDPOINT = env.str("OIDC_OP_JWKS_ENDPOINT", default="")
# The provider's .well-known/openid-configuration: fills the endpoints above that are left empty.
OIDC_OP_DISCOVERY_URL = env.str("OIDC_OP_DISCOVERY_URL", default="")
OIDC_TIMEOUT = strict_float("OIDC_TIMEOUT", default=10.0, minimum=0.1)  # every request to the provider
OIDC_USERNAME_CLAIM = env.str("OIDC_USERNAME_CLAIM", default="preferred_username")
OIDC_STAFF_CLAIM = env.str("OIDC_STAFF_CLAIM", default="groups")
OIDC_STAFF_VALUES = str_list("OIDC_STAFF_VALUES")
OIDC_ENABLED = bool(OIDC_RP_CLIENT_ID)
if OIDC_OP_DISCOVERY_URL and not OIDC_OP_DISCOVERY_URL.startswith(("https://", "http://")):
    raise ImproperlyConfigured(f"OIDC_OP_DISCOVERY_URL={OIDC_OP_DISCOVERY_URL!r} is not an http(s) URL.")
if OIDC_ENABLED:
    _missing = [
        name
        for name in ("OIDC_OP_AUTHORIZATION_ENDPOINT", "OIDC_OP_TOKEN_ENDPOINT", "OIDC_OP_USER_ENDPOINT")
        if not globals()[name]
    ]
    if OIDC_RP_SIGN_ALGO.startswith("RS") and not OIDC_OP_JWKS_ENDPOINT:
        _missing.append("OIDC_OP_JWKS_ENDPOINT")
    if _missing and not OIDC_OP_DISCOVERY_URL:
        raise ImproperlyConfigured(
            f"OIDC_RP_CLIENT_ID is set but these are missing: {', '.join(_missing)} (or OIDC_OP_DISCOVERY_URL)."
        )
    AUTHENTICATION_BACKENDS.append("userportal.auth.oidc.PortalOIDCBackend")
    OIDC_AUTHENTICATE_CLASS = "userportal.auth.oidc.PortalOIDCAuthenticateView"
    LOGIN_REDIRECT_URL_FAILURE = "/accounts/login/"

# LDAP password login (django-auth-ldap); enabled when AUTH_LDAP_SERVER_URI is set.
AUTH_LDAP_SERVER_URI = env.str("AUTH_LDAP_SERVER_URI", default="")
LDAP_ENABLED = bool(AUTH_LDAP_SERVER_URI)
if LDAP_ENABLED:
    from urllib.parse import urlparse

    from userportal.auth.ldap_settings import ldap_settings

    # Passwords must not cross the network in clear: ldap:// needs StartTLS, except on loopback.
    _ldap = urlparse(AUTH_LDAP_SERVER_URI)
    if (
        _ldap.scheme == "ldap"
        and _ldap.hostname not in ("127.0.0.1", "localhost", "::1")
        and not strict_bool("AUTH_LDAP_START_TLS", default=False)
        and not strict_bool("AUTH_LDAP_ALLOW_PLAINTEXT", default=False)
    ):
        raise ImproperlyConfigured(
            f"AUTH_LDAP_SERVER_URI={AUTH_LDAP_SERVER_URI!r} would send passwords in clear: use ldaps://, "
            "set AUTH_LDAP_START_TLS=true, or (not recommended) AUTH_LDAP_ALLOW_PLAINTEXT=true."
        )

    globals().update(ldap_settings())
    AUTHENTICATION_BACKENDS.append("userportal.auth.ldap.PortalLDAPBackend")

# PAM password login (python-pam) against the cluster's Unix accounts; enabled by PORTAL_PAM.
PAM_ENABLED = strict_bool("PORTAL_PAM", default=False)
PAM_SERVICE = env.str("PAM_SERVICE", default="login")  # the stack in /etc/pam.d/<service>
PAM_STAFF_GROUPS = str_list("PAM_STAFF_GROUPS")  # Unix groups whose members are staff (empty: left alone)
if PAM_ENABLED:
    if not PAM_SERVICE or "/" in PAM_SERVICE or PAM_SERVICE.startswith("."):
        raise ImproperlyConfigured(f"PAM_SERVICE={PAM_SERVICE!r} is not a file name in /etc/pam.d, e.g. login.")
    AUTHENTICATION_BACKENDS.append("userportal.auth.unix_pam.PortalPAMBackend")

# Local accounts (superusers, development users) always work.
AUTHENTICATION_BACKENDS.append("django.contrib.auth.backends.ModelBackend")

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"


# django-axes: failed-login throttling and lockout.
AXES_FAILURE_LIMIT = strict_int("AXES_FAILURE_LIMIT", default=5, minimum=1)
AXES_COOLOFF_TIME = strict_float("AXES_COOLOFF_HOURS", default=0.25, minimum=0.0) or None
# Two separate counters: per username whatever the address (rotating IPs must not reset it), and
# per address whatever the name (one client guessing many names). Names are counted the way they
# sign in (Owner, owner@realm and owner are one name).
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_CALLABLE = "userportal.auth.identity.axes_username"
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_TEMPLATE = "registration/lockout.html"
AXES_ENABLED = strict_bool("AXES_ENABLED", default=True)
# The client's address (userportal.clientip): REMOTE_ADDR, or behind PORTAL_NUM_PROXIES proxies
# the one X-Forwarded-For names for them. Also DRF's NUM_PROXIES below.
PORTAL_NUM_PROXIES = strict_int("PORTAL_NUM_PROXIES", default=0, minimum=0, maximum=10)
AXES_CLIENT_IP_CALLABLE = "userportal.clientip.client_ip"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# --- REST API --------------------------------------------------------------------------------
# Days an API token (the uploader's, a script's) lasts unless its command says otherwise; 0: no expiry.
API_TOKEN_DAYS = strict_int("API_TOKEN_DAYS", default=365, minimum=0)
REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "userportal.tokens.ApiTokenAuthentication",  # hashed keys; Token or Bearer
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["userportal.permissions.TableAccessPermission"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "userportal.api.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 100,
    # Unset, DRF takes the whole X-Forwarded-For as the client: a forged header reset the limits.
    "NUM_PROXIES": PORTAL_NUM_PROXIES,
}
SPECTACULAR_SETTINGS = {
    "TITLE": "HPC user portal API",
    "DESCRIPTION": "Jobs, job scripts and the portal's other resources.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    # The schema UI comes from the portal's own static files (drf-spectacular-sidecar), never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    "SERVE_PERMISSIONS": ["userportal.permissions.TableAccessPermission"],
    # Each user's schema lists only the paths their access rules let them call (staff and service
    # endpoints are not advertised to everyone).
    "POSTPROCESSING_HOOKS": ["drf_spectacular.hooks.postprocess_schema_enums", "userportal.schema.hide_unusable_paths"],
}

# --- Internationalisation --------------------------------------------------------------------
LANGUAGE_CODE = "en"
LANGUAGES = [("en", _("English")), ("fr", _("French")), ("th", _("Thai"))]
# The catalogues; scripts/test extracts into a copy (PORTAL_LOCALE_DIR) to find untranslated strings.
LOCALE_PATHS = [Path(env.str("PORTAL_LOCALE_DIR", default=str(BASE_DIR / "locale")))]
TIME_ZONE = env.str("PORTAL_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

# --- Static files (served by the portal itself through WhiteNoise) ---------------------------
STATIC_URL = "/static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = Path(env.str("PORTAL_STATIC_ROOT", default=str(VAR_DIR / "static")))
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": "whitenoise.storage.CompressedManifestStaticFilesStorage"
        if not DEBUG and strict_bool("PORTAL_MANIFEST_STATIC", default=True)
        else "django.contrib.staticfiles.storage.StaticFilesStorage"
    },
}
WHITENOISE_USE_FINDERS = DEBUG

# --- Security --------------------------------------------------------------------------------
# PORTAL_HTTPS: the portal is reached over HTTPS (directly or behind Apache terminating TLS).
PORTAL_HTTPS = strict_bool("PORTAL_HTTPS", default=not DEBUG)
SESSION_COOKIE_SECURE = PORTAL_HTTPS
CSRF_COOKIE_SECURE = PORTAL_HTTPS
SECURE_SSL_REDIRECT = PORTAL_HTTPS and strict_bool("PORTAL_SSL_REDIRECT", default=True)
SECURE_HSTS_SECONDS = strict_int("PORTAL_HSTS_SECONDS", default=31536000 if PORTAL_HTTPS else 0, minimum=0)
SECURE_HSTS_INCLUDE_SUBDOMAINS = SECURE_HSTS_SECONDS > 0
SECURE_HSTS_PRELOAD = strict_bool("PORTAL_HSTS_PRELOAD", default=False)
# Preloading HSTS binds every subdomain of the site's domain (often a whole university's) for
# months: a decision for the domain's owners, not a default. check --deploy would nag about it.
SILENCED_SYSTEM_CHECKS = [] if SECURE_HSTS_PRELOAD else ["security.W021"]
if strict_bool("PORTAL_BEHIND_PROXY", default=False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
X_FRAME_OPTIONS = "DENY"
SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_AGE = strict_int("PORTAL_SESSION_HOURS", default=12, minimum=1) * 3600
PORTAL_CSP = env.str(
    "PORTAL_CSP",
    default="default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; "
    "script-src 'self'; object-src 'none'; base-uri 'self'; frame-ancestors 'none'; form-action 'self'",
)

# --- Email -----------------------------------------------------------------------------------
EMAIL_CONFIG = env.email_url("EMAIL_URL", default="consolemail://" if DEBUG else "smtp://127.0.0.1:25")
vars().update(EMAIL_CONFIG)
DEFAULT_FROM_EMAIL = env.str("DEFAULT_FROM_EMAIL", default="hpc-portal@localhost")
SERVER_EMAIL = DEFAULT_FROM_EMAIL

# --- Audit log -------------------------------------------------------------------------------
# The HMAC key of the audit chain: without it, someone who can write the database could rebuild
# the chain. Defaults to a key derived from SECRET_KEY, which check --deploy refuses: production
# sets a separate one (userportal.checks.check_audit_key).
AUDIT_HMAC_KEY = env.str("AUDIT_HMAC_KEY", default="")
AUDIT_HMAC_KEY_DERIVED = not AUDIT_HMAC_KEY
AUDIT_HMAC_KEY = AUDIT_HMAC_KEY or f"audit:{SECRET_KEY}"

# --- Site ------------------------------------------------------------------------------------
PORTAL_SITE_NAME = env.str("PORTAL_SITE_NAME", default="HPC user portal")
PORTAL_DOCS_URL = env.str("PORTAL_DOCS_URL", default="")
PORTAL_LOG_LEVEL = strict_choice("PORTAL_LOG_LEVEL", default="INFO", choices=("DEBUG", "INFO", "WARNING", "ERROR"))

# Every cache the pages rely on is shared by every process and instance whenever REDIS_URL is set
# (a memory cache is per process; check --deploy warns about one).
CACHES = {
    "default": env.cache("PORTAL_CACHE_URL", default=REDIS_URL if "REDIS_URL" in os.environ else "locmemcache://portal")
}
CACHES["default"].setdefault("KEY_PREFIX", "portal" if "REDIS_URL" in os.environ else "")
# Rate-limit counters (DRF throttles): shared by every portal process, so Redis whenever REDIS_URL
# is set; a per-process memory cache multiplies each limit by the number of processes, which
# check --deploy warns about. JOBQUEUE_CACHE_URL is the older name of PORTAL_THROTTLE_CACHE_URL.
CACHES["throttle"] = env.cache(
    "PORTAL_THROTTLE_CACHE_URL",
    default=env.str("JOBQUEUE_CACHE_URL", default=REDIS_URL if "REDIS_URL" in os.environ else "locmemcache://throttle"),
)
CACHES["throttle"].setdefault("KEY_PREFIX", "throttle")
# Their hits and misses are counted for /metrics (userportal/cache_backends.py).
for _cache in CACHES.values():
    _cache["BACKEND"] = {
        "django.core.cache.backends.redis.RedisCache": "userportal.cache_backends.RedisCache",
        "django.core.cache.backends.locmem.LocMemCache": "userportal.cache_backends.LocMemCache",
    }.get(_cache["BACKEND"], _cache["BACKEND"])

# --- The portal's own metrics (/metrics, userportal/metrics.py) ------------------------------
# Who may scrape: a bearer token, or client addresses and networks (staff may too).
PORTAL_METRICS_TOKEN = env.str("PORTAL_METRICS_TOKEN", default="")
PORTAL_METRICS_ALLOW = str_list("PORTAL_METRICS_ALLOW")
for _network in PORTAL_METRICS_ALLOW:
    try:
        ipaddress.ip_network(_network, strict=False)
    except ValueError:
        raise ImproperlyConfigured(f"PORTAL_METRICS_ALLOW: {_network!r} is not an address or a network.") from None
# Where every process adds its counts (Redis; empty: each process's memory, development only).
PORTAL_METRICS_REDIS_URL = env.str("PORTAL_METRICS_REDIS_URL", default=REDIS_URL if "REDIS_URL" in os.environ else "")
# Seconds a process gathers its requests' counts before one background round trip adds them to
# Redis (0: a round trip at the end of each request, in it).
PORTAL_METRICS_FLUSH_SECONDS = strict_float("PORTAL_METRICS_FLUSH_SECONDS", default=1.0, minimum=0.0)

# The console, and a log file (rotated by size; 0: by logrotate) when PORTAL_LOG_FILE is set.
LOGGING = logging_config(
    PORTAL_LOG_LEVEL,
    env.str("PORTAL_LOG_FILE", default=""),
    strict_int("PORTAL_LOG_FILE_MAX_BYTES", default=10 * 1024 * 1024, minimum=0),
    strict_int("PORTAL_LOG_FILE_BACKUPS", default=5, minimum=0),
)
# One line per request on the userportal.requests logger: method, path, status, duration, user.
PORTAL_REQUEST_LOG = strict_bool("PORTAL_REQUEST_LOG", default=True)

# --- job scripts -----------------------------------------------------------------------------
# The largest job script /api/jobscripts/ accepts, in bytes of UTF-8 (larger uploads get a 400).
JOBSCRIPT_MAX_BYTES = strict_int("PORTAL_JOBSCRIPT_MAX_BYTES", default=1024 * 1024, minimum=1024)

# --- jobstats --------------------------------------------------------------------------------
# Which metric sources the cluster has (graphs of the others are not offered): job =
# slurm-job-exporter, node = node_exporter, lustre = lustre_exporter(_slurm), power = redfish.
JOBSTATS_METRIC_SOURCES = ("job", "node", "lustre", "power")
JOBSTATS_METRICS = str_list("JOBSTATS_METRICS", default=["job", "node"])
for _source in JOBSTATS_METRICS:
    if _source not in JOBSTATS_METRIC_SOURCES:
        raise ImproperlyConfigured(
            f"JOBSTATS_METRICS names an unknown source {_source!r}; known: {', '.join(JOBSTATS_METRIC_SOURCES)}."
        )
# Read the user page's series from the recording rules (domain 4.4) instead of the raw exporter series.
JOBSTATS_RECORDING_RULES = strict_bool("JOBSTATS_RECORDING_RULES", default=False)
# The `instance` label of a node's exporters, from its Slurm node name.
JOBSTATS_NODE_INSTANCE = env.str("JOBSTATS_NODE_INSTANCE", default="{node}:9100")
JOBSTATS_POWER_INSTANCE = env.str("JOBSTATS_POWER_INSTANCE", default="{node}-oob")
JOBSTATS_POWER_METRIC = env.str("JOBSTATS_POWER_METRIC", default="redfish_chassis_power_average_consumed_watts")
JOBSTATS_NODE_GPU_POWER_INSTANCE = env.str("JOBSTATS_NODE_GPU_POWER_INSTANCE", default="{node}:9445")
for _name in ("JOBSTATS_NODE_INSTANCE", "JOBSTATS_POWER_INSTANCE", "JOBSTATS_NODE_GPU_POWER_INSTANCE"):
    if "{node}" not in globals()[_name]:
        raise ImproperlyConfigured(f"{_name} must contain {{node}}, e.g. {{node}}:9100.")
JOBSTATS_LOCAL_SCRATCH = env.str("JOBSTATS_LOCAL_SCRATCH", default="/localscratch")
# Site data: a GPU model file merged over jobstats/data/gpu_models.json, extra advice rules
# (dotted modules with RULES, or .json files), built-in rules to switch off, and the docs they link to.
JOBSTATS_GPU_MODELS_FILE = env.str("JOBSTATS_GPU_MODELS_FILE", default="")
JOBSTATS_ADVICE_RULES = str_list("JOBSTATS_ADVICE_RULES")
JOBSTATS_ADVICE_DISABLED = str_list("JOBSTATS_ADVICE_DISABLED")
JOBSTATS_DOCS_URL = env.str("JOBSTATS_DOCS_URL", default=PORTAL_DOCS_URL)
# squeue for a pending job's estimated start (empty: never run it).
SLURM_SQUEUE = env.str("SLURM_SQUEUE", default="squeue")
SLURM_SQUEUE_TIMEOUT = strict_float("SLURM_SQUEUE_TIMEOUT", default=3.0, minimum=0.1)
# scontrol for the nodes' states (`scontrol show node --oneliner`; empty: never run it).
SLURM_SCONTROL = env.str("SLURM_SCONTROL", default="scontrol")
SLURM_SCONTROL_TIMEOUT = strict_float("SLURM_SCONTROL_TIMEOUT", default=5.0, minimum=0.1)
# nodes: rows per page of the node list, and the default window (seconds) of a node's page.
NODES_PAGE_SIZE = strict_int("NODES_PAGE_SIZE", default=50, minimum=1)
NODES_DEFAULT_WINDOW = strict_int("NODES_DEFAULT_WINDOW", default=2 * 86400, minimum=60)
# scheduler: days its analytics cover by default.
SCHEDULER_DEFAULT_DAYS = strict_int("SCHEDULER_DEFAULT_DAYS", default=30, minimum=1, maximum=366)


def _optional_figure(name: str, default: float) -> float | None:
    """A price or factor: unset gives TT's default, an empty value leaves the figure out of cost.json."""
    raw = os.environ.get(name)
    if raw is not None and raw.strip() == "":
        return None
    return strict_float(name, default=default, minimum=0.0)


# Energy, cost and CO2 of a job (domain 7.1; TT's defaults, in JOBSTATS_CURRENCY).
JOBSTATS_CURRENCY = env.str("JOBSTATS_CURRENCY", default="CAD")
JOBSTATS_ELECTRICITY_COST_PER_KWH = _optional_figure("JOBSTATS_ELECTRICITY_COST_PER_KWH", 0.04158)
JOBSTATS_COOLING_COST_PER_KWH = _optional_figure("JOBSTATS_COOLING_COST_PER_KWH", 0.010395)
JOBSTATS_CO2_KG_PER_MWH = _optional_figure("JOBSTATS_CO2_KG_PER_MWH", 0.5)
JOBSTATS_CAR_KM_PER_KWH = _optional_figure("JOBSTATS_CAR_KM_PER_KWH", 6.6225)
JOBSTATS_AMORTIZATION_YEARS = _optional_figure("JOBSTATS_AMORTIZATION_YEARS", 5.0)
JOBSTATS_HARDWARE_COST_PER_CORE_HOUR = _optional_figure("JOBSTATS_HARDWARE_COST_PER_CORE_HOUR", 0.0029431)
JOBSTATS_HARDWARE_COST_PER_GPU_HOUR = _optional_figure("JOBSTATS_HARDWARE_COST_PER_GPU_HOUR", 0.31393)
JOBSTATS_CLOUD_COST_PER_CORE_HOUR = _optional_figure("JOBSTATS_CLOUD_COST_PER_CORE_HOUR", 0.0478125)
JOBSTATS_CLOUD_COST_PER_GPU_HOUR = _optional_figure("JOBSTATS_CLOUD_COST_PER_GPU_HOUR", 1.7725)
# Rated power of one allocated core, for energy estimates when no node power is measured.
JOBSTATS_WATTS_PER_CORE = strict_float("JOBSTATS_WATTS_PER_CORE", default=8.0, minimum=0.0)

# --- priorities ------------------------------------------------------------------------------
# Temporary GPU priority (priorities app). Policy limits per GPU type read "a100=4,v100=8,*=4"
# ("*" for types not listed); the server enforces them and the form mirrors them.
SLURM_SACCTMGR = env.str("SLURM_SACCTMGR", default="sacctmgr")
SLURM_SACCTMGR_TIMEOUT = strict_float("SLURM_SACCTMGR_TIMEOUT", default=30.0, minimum=1.0)
PRIORITIES_APPLY_MODE = strict_choice("PRIORITIES_APPLY_MODE", default="manual", choices=("manual", "automatic"))
PRIORITIES_MAX_DAYS = strict_int("PRIORITIES_MAX_DAYS", default=14, minimum=1, maximum=365)
PRIORITIES_MAX_GPUS_PER_REQUEST = str_list("PRIORITIES_MAX_GPUS_PER_REQUEST", default=["*=4"])
PRIORITIES_MAX_GPUS_PER_ACCOUNT = str_list("PRIORITIES_MAX_GPUS_PER_ACCOUNT", default=["*=8"])
PRIORITIES_MAX_ACTIVE_PER_ACCOUNT = strict_int("PRIORITIES_MAX_ACTIVE_PER_ACCOUNT", default=2, minimum=1)
PRIORITIES_QOS_PRIORITY = strict_int("PRIORITIES_QOS_PRIORITY", default=1000, minimum=0)
PRIORITIES_CLUSTER_GPUS = str_list("PRIORITIES_CLUSTER_GPUS")
PRIORITIES_END_WARNING_HOURS = strict_int("PRIORITIES_END_WARNING_HOURS", default=24, minimum=1)
PRIORITIES_RECONCILE_MINUTES = strict_int("PRIORITIES_RECONCILE_MINUTES", default=5, minimum=1)
PRIORITIES_TICKET_URL = env.str("PRIORITIES_TICKET_URL", default="")
for _name in ("PRIORITIES_MAX_GPUS_PER_REQUEST", "PRIORITIES_MAX_GPUS_PER_ACCOUNT", "PRIORITIES_CLUSTER_GPUS"):
    for _item in globals()[_name]:
        _key, _sep, _count = _item.partition("=")
        if not _sep or not _key.strip() or not _count.strip().isdigit():
            raise ImproperlyConfigured(f"{_name}: {_item!r} is not <gpu type>=<count>, e.g. a100=4 or *=4.")
if PRIORITIES_TICKET_URL and "{ticket}" not in PRIORITIES_TICKET_URL:
    raise ImproperlyConfigured(
        "PRIORITIES_TICKET_URL must contain {ticket}, e.g. https://bugzilla.example.org/show_bug.cgi?id={ticket}."
    )
# The Bugzilla workflow (priorities.bugzilla): the form checks the ticket through Bugzilla's REST API.
PRIORITIES_BUGZILLA_URL = env.str("PRIORITIES_BUGZILLA_URL", default="")  # e.g. https://bugzilla.example.org
PRIORITIES_BUGZILLA_API_KEY = env.str("PRIORITIES_BUGZILLA_API_KEY", default="")
PRIORITIES_BUGZILLA_APPROVAL = env.str("PRIORITIES_BUGZILLA_APPROVAL", default="")  # flag:<name> or field:<name>
PRIORITIES_BUGZILLA_TIMEOUT = strict_float("PRIORITIES_BUGZILLA_TIMEOUT", default=5.0, minimum=0.1)
if PRIORITIES_BUGZILLA_URL and not PRIORITIES_BUGZILLA_URL.startswith(("http://", "https://")):
    raise ImproperlyConfigured(
        "PRIORITIES_BUGZILLA_URL must be Bugzilla's http(s) address, e.g. https://bugzilla.example.org."
    )
if PRIORITIES_BUGZILLA_APPROVAL and not re.fullmatch(r"(flag|field):[A-Za-z0-9_.-]+", PRIORITIES_BUGZILLA_APPROVAL):
    raise ImproperlyConfigured("PRIORITIES_BUGZILLA_APPROVAL is flag:<name> or field:<name>, e.g. flag:pi-approval.")
CELERY_BEAT_SCHEDULE = globals().get("CELERY_BEAT_SCHEDULE", {})
CELERY_BEAT_SCHEDULE["priorities-reconcile"] = {
    "task": "priorities.reconcile",
    "schedule": PRIORITIES_RECONCILE_MINUTES * 60.0,
}

# --- extensions (walltime extension requests) -------------------------------------------------
EXTENSIONS_MAX_HOURS = strict_int("EXTENSIONS_MAX_HOURS", default=24, minimum=1)  # one request
EXTENSIONS_MAX_TOTAL_HOURS = strict_int("EXTENSIONS_MAX_TOTAL_HOURS", default=72, minimum=1)  # all of a job's
if EXTENSIONS_MAX_HOURS > EXTENSIONS_MAX_TOTAL_HOURS:
    raise ImproperlyConfigured(
        f"EXTENSIONS_MAX_HOURS={EXTENSIONS_MAX_HOURS} is more than EXTENSIONS_MAX_TOTAL_HOURS="
        f"{EXTENSIONS_MAX_TOTAL_HOURS}: no request could be that large."
    )
# Who may ask (besides owning the job): these users or the jobs of these Slurm accounts; both empty: everyone.
EXTENSIONS_ALLOWED_USERS = str_list("EXTENSIONS_ALLOWED_USERS")
EXTENSIONS_ALLOWED_ACCOUNTS = str_list("EXTENSIONS_ALLOWED_ACCOUNTS")
# Accepted without staff up to this many hours when no reservation holds the job's nodes (0: never).
EXTENSIONS_AUTO_ACCEPT_HOURS = strict_int("EXTENSIONS_AUTO_ACCEPT_HOURS", default=0, minimum=0)
# The Slurm operator account scontrol update runs as (runuser, when the worker is root; "": the worker's own user).
EXTENSIONS_SLURM_OPERATOR = env.str("EXTENSIONS_SLURM_OPERATOR", default="slurm")
EXTENSIONS_EXPIRE_MINUTES = strict_int("EXTENSIONS_EXPIRE_MINUTES", default=5, minimum=1)
CELERY_BEAT_SCHEDULE["extensions-expire"] = {
    "task": "extensions.expire",
    "schedule": EXTENSIONS_EXPIRE_MINUTES * 60.0,
}

# --- billing ---------------------------------------------------------------------------------
# Job sources tried in order (slurm.jobsource): database, slurmrestd, sacct, csv. Unconfigured ones are skipped.
BILLING_SOURCES = str_list("BILLING_SOURCES", default=["database", "slurmrestd", "sacct", "csv"])
for _source in BILLING_SOURCES:
    if _source not in ("database", "slurmrestd", "sacct", "csv"):
        raise ImproperlyConfigured(f"BILLING_SOURCES names an unknown source {_source!r}.")
BILLING_CURRENCY = env.str("BILLING_CURRENCY", default="THB")
BILLING_DEFAULT_TIER = env.str("BILLING_DEFAULT_TIER", default="mu")  # tier of accounts without one
BILLING_DEFAULT_DAYS = strict_int("BILLING_DEFAULT_DAYS", default=30, minimum=1)  # usage page's default window
BILLING_SLURMRESTD_URL = env.str("BILLING_SLURMRESTD_URL", default="")
BILLING_SLURMRESTD_VERSION = env.str("BILLING_SLURMRESTD_VERSION", default="v0.0.38")
BILLING_SLURMRESTD_USER = env.str("BILLING_SLURMRESTD_USER", default="")
BILLING_SLURMRESTD_TOKEN = env.str("BILLING_SLURMRESTD_TOKEN", default="")
BILLING_SLURMRESTD_JWT_KEY = env.str("BILLING_SLURMRESTD_JWT_KEY", default="")
BILLING_SLURMRESTD_TIMEOUT = strict_float("BILLING_SLURMRESTD_TIMEOUT", default=20.0, minimum=0.1)
BILLING_SLURMRESTD_VERIFY_TLS = strict_bool("BILLING_SLURMRESTD_VERIFY_TLS", default=True)
BILLING_SACCT = env.str("BILLING_SACCT", default="sacct")
BILLING_SACCT_TIMEOUT = strict_float("BILLING_SACCT_TIMEOUT", default=60.0, minimum=0.1)
BILLING_CSV_FILE = env.str("BILLING_CSV_FILE", default="")
# Slurm AdminLevel as the billing role (billing.roles): Operator reads the billing staff pages,
# Administrator also changes rates and marks receipts paid; checked at sign-in and every N minutes.
BILLING_ROLES_FROM_SLURM = strict_bool("BILLING_ROLES_FROM_SLURM", default=False)
BILLING_ROLES_SOURCE = strict_choice("BILLING_ROLES_SOURCE", default="database", choices=("database", "sacctmgr"))
BILLING_ROLES_CHECK_MINUTES = strict_int("BILLING_ROLES_CHECK_MINUTES", default=15, minimum=1)
CELERY_BEAT_SCHEDULE["billing-slurm-roles"] = {  # also runs with the setting off: it empties the groups
    "task": "billing.sync_slurm_roles",
    "schedule": BILLING_ROLES_CHECK_MINUTES * 60.0,
}

# --- jobqueue --------------------------------------------------------------------------------
# The GPU job queue (jobqueue/): token API, executors (ssh to GPU nodes through a jump host, or
# Slurm), limits and code scanning. See README.md "GPU job queue".
JOBQUEUE_EXECUTOR = env.str("JOBQUEUE_EXECUTOR", default="ssh")  # ssh, slurm or a dotted class path
JOBQUEUE_DIR = Path(env.str("JOBQUEUE_DIR", default=str(VAR_DIR / "jobqueue")))  # job files and results/
JOBQUEUE_TOKEN_MAX_DAYS = strict_int("JOBQUEUE_TOKEN_MAX_DAYS", default=30, minimum=1, maximum=30)
JOBQUEUE_MAX_FILE_BYTES = strict_int("JOBQUEUE_MAX_FILE_BYTES", default=1024 * 1024, minimum=1024)
JOBQUEUE_MIN_EXPECTED_TIME = strict_int("JOBQUEUE_MIN_EXPECTED_TIME", default=1, minimum=1)
JOBQUEUE_MAX_EXPECTED_TIME = strict_int("JOBQUEUE_MAX_EXPECTED_TIME", default=86400, minimum=1)
# A job is stopped after expected_time x this factor (timeout on the node, --time in Slurm).
JOBQUEUE_TIME_LIMIT_FACTOR = strict_float("JOBQUEUE_TIME_LIMIT_FACTOR", default=2.0, minimum=1.0)
JOBQUEUE_MAX_ACTIVE_JOBS = strict_int("JOBQUEUE_MAX_ACTIVE_JOBS", default=1, minimum=1)
JOBQUEUE_SUBMIT_RATE = env.str("JOBQUEUE_SUBMIT_RATE", default="5/min")  # per user
JOBQUEUE_IP_RATES = env.dict(
    "JOBQUEUE_IP_RATES",
    default={
        "submit": "5/min", "status": "60/min", "results": "60/min", "cancel": "10/min",
        "jobs": "30/min", "nodes": "60/min", "dashboard": "30/min",
    },
)  # fmt: skip
JOBQUEUE_ADMIN_EXEMPT = strict_bool("JOBQUEUE_ADMIN_EXEMPT", default=True)  # admins skip rate and active-job limits
JOBQUEUE_MAX_OUTPUT_BYTES = strict_int("JOBQUEUE_MAX_OUTPUT_BYTES", default=1024 * 1024, minimum=1024)
JOBQUEUE_POLL_SECONDS = strict_float("JOBQUEUE_POLL_SECONDS", default=5.0, minimum=0.5)
JOBQUEUE_STALE_SECONDS = strict_int("JOBQUEUE_STALE_SECONDS", default=120, minimum=10)
JOBQUEUE_UNREACHABLE_SECONDS = strict_int("JOBQUEUE_UNREACHABLE_SECONDS", default=1800, minimum=10)
# ssh executor: GPU nodes as name=host[:port], reached through an optional jump host.
JOBQUEUE_NODES = str_list("JOBQUEUE_NODES", default=["gpu-node-0=127.0.0.1:22"])
JOBQUEUE_SSH_USER = env.str("JOBQUEUE_SSH_USER", default="jobqueue")
JOBQUEUE_SSH_JUMP = env.str("JOBQUEUE_SSH_JUMP", default="")  # [user@]host[:port]; empty: direct
JOBQUEUE_SSH_KEY = env.str("JOBQUEUE_SSH_KEY", default="")
JOBQUEUE_SSH_KNOWN_HOSTS = env.str("JOBQUEUE_SSH_KNOWN_HOSTS", default="")
JOBQUEUE_SSH_TIMEOUT = strict_float("JOBQUEUE_SSH_TIMEOUT", default=10.0, minimum=1.0)
JOBQUEUE_SSH_KEEPALIVE = strict_int("JOBQUEUE_SSH_KEEPALIVE", default=60, minimum=0)
JOBQUEUE_SSH_RETRIES = strict_int("JOBQUEUE_SSH_RETRIES", default=4, minimum=0)
# On the node, relative to the ssh user's home (never a shared /tmp).
JOBQUEUE_REMOTE_DIR = env.str("JOBQUEUE_REMOTE_DIR", default=".jobqueue")
JOBQUEUE_PYTHON = env.str("JOBQUEUE_PYTHON", default="python3")
# Each job runs in a bubblewrap sandbox on the node (jobqueue/executors/sandbox.py); "none" only
# on disposable nodes (a fresh container after each job: both settings below true).
JOBQUEUE_SANDBOX = strict_choice("JOBQUEUE_SANDBOX", default="bwrap", choices=("bwrap", "none"))
JOBQUEUE_SANDBOX_BWRAP = env.str("JOBQUEUE_SANDBOX_BWRAP", default="bwrap")  # on the nodes
JOBQUEUE_SANDBOX_PATHS = str_list("JOBQUEUE_SANDBOX_PATHS")  # more read-only paths: a venv, datasets
JOBQUEUE_NODES_DISPOSABLE = strict_bool("JOBQUEUE_NODES_DISPOSABLE", default=False)
JOBQUEUE_LXC_RESTART = strict_bool("JOBQUEUE_LXC_RESTART", default=False)
JOBQUEUE_LXC_COMMAND = env.str("JOBQUEUE_LXC_COMMAND", default="lxc restart {container}")  # run on the jump host
JOBQUEUE_LXC_PREFIX = env.str("JOBQUEUE_LXC_PREFIX", default="")
JOBQUEUE_LXC_WAIT = strict_int("JOBQUEUE_LXC_WAIT", default=30, minimum=0)
# slurm executor
JOBQUEUE_SLURM_PARTITION = env.str("JOBQUEUE_SLURM_PARTITION", default="gpu")
JOBQUEUE_SLURM_ACCOUNT = env.str("JOBQUEUE_SLURM_ACCOUNT", default="")
JOBQUEUE_SLURM_GRES = env.str("JOBQUEUE_SLURM_GRES", default="gpu:1")
JOBQUEUE_SLURM_USER = env.str("JOBQUEUE_SLURM_USER", default="")  # run sbatch/squeue/scancel as (runuser)
JOBQUEUE_SLURM_TIMEOUT = strict_float("JOBQUEUE_SLURM_TIMEOUT", default=30.0, minimum=1.0)
# code scanning: static (AST) always; an OpenAI-compatible LLM only when a URL is set
JOBQUEUE_SCAN_LLM_URL = env.str("JOBQUEUE_SCAN_LLM_URL", default="")
JOBQUEUE_SCAN_LLM_MODEL = env.str("JOBQUEUE_SCAN_LLM_MODEL", default="")
JOBQUEUE_SCAN_LLM_API_KEY = env.str("JOBQUEUE_SCAN_LLM_API_KEY", default="")
JOBQUEUE_SCAN_LLM_TIMEOUT = strict_float("JOBQUEUE_SCAN_LLM_TIMEOUT", default=20.0, minimum=1.0)
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "jobqueue.reconcile": {"task": "jobqueue.reconcile", "schedule": 60.0},
}

# --- accountstats ----------------------------------------------------------------------------
ACCOUNTSTATS_DEFAULT_DAYS = strict_int("ACCOUNTSTATS_DEFAULT_DAYS", default=30, minimum=1, maximum=366)
# Evaluation interval of the recording rules (scripts/stack.d/rules.yml): Σ samples × interval = unit-seconds.
ACCOUNTSTATS_RULES_INTERVAL = strict_int("ACCOUNTSTATS_RULES_INTERVAL", default=30, minimum=1)
ACCOUNTSTATS_LUSTRE = strict_bool("ACCOUNTSTATS_LUSTRE", default=False)  # lustre_exporter(_slurm) rules exist

# --- top -------------------------------------------------------------------------------------
TOP_DEFAULT_DAYS = strict_int("TOP_DEFAULT_DAYS", default=7, minimum=1, maximum=366)
TOP_RULES_INTERVAL = strict_int("TOP_RULES_INTERVAL", default=30, minimum=1)
TOP_LIMIT = strict_int("TOP_LIMIT", default=100, minimum=1, maximum=1000)
TOP_LARGEMEM_PARTITIONS = str_list("TOP_LARGEMEM_PARTITIONS", default=["large"])  # substrings of partition names
TOP_LUSTRE = strict_bool("TOP_LUSTRE", default=False)

# --- quotas ----------------------------------------------------------------------------------
# Robinhood's database (ACCT_STAT), read-only on its own alias (quotas.router.RobinhoodRouter).
DATABASES["robinhood"] = env.db("ROBINHOOD_URL", default=f"sqlite:///{VAR_DIR / 'robinhood_demo.sqlite3'}")
if DATABASES["robinhood"]["ENGINE"].endswith("mysql"):
    DATABASES["robinhood"].setdefault("OPTIONS", {}).setdefault("charset", "utf8mb4")
if DATABASES["robinhood"]["ENGINE"].endswith("sqlite3"):
    DATABASES["robinhood"].setdefault("OPTIONS", {}).setdefault("timeout", 20)
DATABASES["robinhood"].setdefault("CONN_MAX_AGE", strict_int("PORTAL_CONN_MAX_AGE", default=0, minimum=0))
QUOTAS_SOURCE = strict_choice("QUOTAS_SOURCE", default="model", choices=("model", "file", "ldap"))
QUOTAS_FILE = env.str("QUOTAS_FILE", default="")  # JSON or YAML, for QUOTAS_SOURCE=file
if QUOTAS_SOURCE == "file" and not QUOTAS_FILE:
    raise ImproperlyConfigured("QUOTAS_SOURCE=file needs QUOTAS_FILE.")
# QUOTAS_SOURCE=ldap: attributes of the groups' entries. The directory, bind DN and password default
# to the LDAP login's (AUTH_LDAP_*), but may be set apart so LDAP quotas need no LDAP login.
QUOTAS_LDAP_SERVER_URI = env.str("QUOTAS_LDAP_SERVER_URI", default="") or AUTH_LDAP_SERVER_URI
QUOTAS_LDAP_BIND_DN = env.str("QUOTAS_LDAP_BIND_DN", default="") or env.str("AUTH_LDAP_BIND_DN", default="")
QUOTAS_LDAP_BIND_PASSWORD = env.str("QUOTAS_LDAP_BIND_PASSWORD", default="") or env.str(
    "AUTH_LDAP_BIND_PASSWORD", default=""
)
QUOTAS_LDAP_START_TLS = strict_bool("QUOTAS_LDAP_START_TLS", default=strict_bool("AUTH_LDAP_START_TLS", default=False))
QUOTAS_LDAP_GROUP_SEARCH_BASE = env.str("QUOTAS_LDAP_GROUP_SEARCH_BASE", default="") or env.str(
    "AUTH_LDAP_GROUP_SEARCH_BASE", default=""
)
QUOTAS_LDAP_GROUP_FILTER = strict_ldap_filter(
    "QUOTAS_LDAP_GROUP_FILTER", default="(&(objectClass=posixGroup)(cn=%(group)s))", placeholder="group"
)
QUOTAS_LDAP_GROUP_NAME_ATTR = strict_ldap_attribute("QUOTAS_LDAP_GROUP_NAME_ATTR", default="cn")
# empty: that limit always comes from QUOTAS_DEFAULT_*
QUOTAS_LDAP_BYTES_ATTR = strict_ldap_attribute("QUOTAS_LDAP_BYTES_ATTR", default="hpcQuotaBytes", allow_empty=True)
QUOTAS_LDAP_INODES_ATTR = strict_ldap_attribute("QUOTAS_LDAP_INODES_ATTR", default="hpcQuotaInodes", allow_empty=True)
QUOTAS_LDAP_NEARLINE_BYTES_ATTR = strict_ldap_attribute(
    "QUOTAS_LDAP_NEARLINE_BYTES_ATTR", default="hpcQuotaNearlineBytes", allow_empty=True
)
QUOTAS_LDAP_CACHE_SECONDS = strict_int("QUOTAS_LDAP_CACHE_SECONDS", default=300, minimum=0)
QUOTAS_LDAP_TIMEOUT = strict_float("AUTH_LDAP_TIMEOUT", default=5.0, minimum=0.1)
if QUOTAS_SOURCE == "ldap" and not (QUOTAS_LDAP_SERVER_URI and QUOTAS_LDAP_GROUP_SEARCH_BASE):
    raise ImproperlyConfigured(
        "QUOTAS_SOURCE=ldap needs QUOTAS_LDAP_SERVER_URI (or AUTH_LDAP_SERVER_URI) and "
        "QUOTAS_LDAP_GROUP_SEARCH_BASE (or AUTH_LDAP_GROUP_SEARCH_BASE)."
    )
QUOTAS_DEFAULT_BYTES = strict_int("QUOTAS_DEFAULT_BYTES", default=1024**4, minimum=0)  # TT: 1 TB (x 1024^4)
QUOTAS_DEFAULT_INODES = strict_int("QUOTAS_DEFAULT_INODES", default=500_000, minimum=0)
QUOTAS_DEFAULT_NEARLINE_BYTES = strict_int("QUOTAS_DEFAULT_NEARLINE_BYTES", default=0, minimum=0)  # 0: none
QUOTAS_ALERT_THRESHOLDS: list[int] = []  # percent of a quota at which users are warned
for _value in str_list("QUOTAS_ALERT_THRESHOLDS", default=["80", "90", "100"]):
    if not _value.isdigit() or not 0 < int(_value) <= 1000:
        raise ImproperlyConfigured(f"QUOTAS_ALERT_THRESHOLDS: {_value!r} is not a percentage such as 90.")
    QUOTAS_ALERT_THRESHOLDS.append(int(_value))
QUOTAS_ALERT_THRESHOLDS.sort()
QUOTAS_TREND_DAYS = strict_int("QUOTAS_TREND_DAYS", default=14, minimum=2)
QUOTAS_CHECK_HOURS = strict_int("QUOTAS_CHECK_HOURS", default=6, minimum=1)
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "quotas.check": {"task": "quotas.check_quotas", "schedule": QUOTAS_CHECK_HOURS * 3600.0},
}

# --- cloudstats (OpenStack instances, from a libvirt exporter) ----------------------------------
# The exporter's metric and label names (cloudstats.presets): debian = prometheus-libvirt-exporter,
# trailblazingturtle = guilbaults/libvirtd_exporter (metadata branch).
CLOUDSTATS_EXPORTER = strict_choice("CLOUDSTATS_EXPORTER", default="debian", choices=("debian", "trailblazingturtle"))
CLOUDSTATS_EXPORTER_JOB = env.str("CLOUDSTATS_EXPORTER_JOB", default="libvirt")  # Prometheus' job label of its targets
CLOUDSTATS_DEFAULT_DAYS = strict_int("CLOUDSTATS_DEFAULT_DAYS", default=7, minimum=1, maximum=90)
CLOUDSTATS_IDLE_CPU_PERCENT = strict_float("CLOUDSTATS_IDLE_CPU_PERCENT", default=1.0, minimum=0.0)
CLOUDSTATS_CACHE_SECONDS = strict_int("CLOUDSTATS_CACHE_SECONDS", default=300, minimum=0)  # project members
CLOUDSTATS_PROJECTS_FILE = env.str("CLOUDSTATS_PROJECTS_FILE", default="")  # TT's YAML, for CLOUDSTATS_MEMBERSHIP=file
if CLOUDSTATS_MEMBERSHIP == "file" and not CLOUDSTATS_PROJECTS_FILE:
    raise ImproperlyConfigured("CLOUDSTATS_MEMBERSHIP=file needs CLOUDSTATS_PROJECTS_FILE.")
# CLOUDSTATS_MEMBERSHIP=ldap: the groups this filter finds for a user; the directory, bind DN and
# password default to the sign-in ones (AUTH_LDAP_*).
CLOUDSTATS_LDAP_SERVER_URI = env.str("CLOUDSTATS_LDAP_SERVER_URI", default="") or AUTH_LDAP_SERVER_URI
CLOUDSTATS_LDAP_BIND_DN = env.str("CLOUDSTATS_LDAP_BIND_DN", default="") or env.str("AUTH_LDAP_BIND_DN", default="")
CLOUDSTATS_LDAP_BIND_PASSWORD = env.str("CLOUDSTATS_LDAP_BIND_PASSWORD", default="") or env.str(
    "AUTH_LDAP_BIND_PASSWORD", default=""
)
CLOUDSTATS_LDAP_START_TLS = strict_bool(
    "CLOUDSTATS_LDAP_START_TLS", default=strict_bool("AUTH_LDAP_START_TLS", default=False)
)
CLOUDSTATS_LDAP_GROUP_SEARCH_BASE = env.str("CLOUDSTATS_LDAP_GROUP_SEARCH_BASE", default="") or env.str(
    "AUTH_LDAP_GROUP_SEARCH_BASE", default=""
)
CLOUDSTATS_LDAP_GROUP_FILTER = strict_ldap_filter(
    "CLOUDSTATS_LDAP_GROUP_FILTER", default="(&(objectClass=posixGroup)(memberUid=%(user)s))", placeholder="user"
)
CLOUDSTATS_LDAP_PROJECT_ATTR = strict_ldap_attribute("CLOUDSTATS_LDAP_PROJECT_ATTR", default="cn")
CLOUDSTATS_LDAP_TIMEOUT = strict_float("AUTH_LDAP_TIMEOUT", default=5.0, minimum=0.1)
if CLOUDSTATS_MEMBERSHIP == "ldap" and not (CLOUDSTATS_LDAP_SERVER_URI and CLOUDSTATS_LDAP_GROUP_SEARCH_BASE):
    raise ImproperlyConfigured(
        "CLOUDSTATS_MEMBERSHIP=ldap needs CLOUDSTATS_LDAP_SERVER_URI (or AUTH_LDAP_SERVER_URI) and "
        "CLOUDSTATS_LDAP_GROUP_SEARCH_BASE (or AUTH_LDAP_GROUP_SEARCH_BASE)."
    )
# CLOUDSTATS_MEMBERSHIP=keystone: the identity service (e.g. https://keystone.example.org:5000) and
# the portal's service account there: an application credential, or a user and password (scoped to
# CLOUDSTATS_KEYSTONE_PROJECT, or system-scoped when it is empty); it must be allowed to list role assignments.
CLOUDSTATS_KEYSTONE_URL = env.str("CLOUDSTATS_KEYSTONE_URL", default="")
CLOUDSTATS_KEYSTONE_APP_CREDENTIAL_ID = env.str("CLOUDSTATS_KEYSTONE_APP_CREDENTIAL_ID", default="")
CLOUDSTATS_KEYSTONE_APP_CREDENTIAL_SECRET = env.str("CLOUDSTATS_KEYSTONE_APP_CREDENTIAL_SECRET", default="")
CLOUDSTATS_KEYSTONE_USERNAME = env.str("CLOUDSTATS_KEYSTONE_USERNAME", default="")
CLOUDSTATS_KEYSTONE_PASSWORD = env.str("CLOUDSTATS_KEYSTONE_PASSWORD", default="")
CLOUDSTATS_KEYSTONE_PROJECT = env.str("CLOUDSTATS_KEYSTONE_PROJECT", default="")
CLOUDSTATS_KEYSTONE_PROJECT_DOMAIN_ID = env.str("CLOUDSTATS_KEYSTONE_PROJECT_DOMAIN_ID", default="default")
CLOUDSTATS_KEYSTONE_USER_DOMAIN_ID = env.str("CLOUDSTATS_KEYSTONE_USER_DOMAIN_ID", default="default")
CLOUDSTATS_KEYSTONE_TIMEOUT = strict_float("CLOUDSTATS_KEYSTONE_TIMEOUT", default=5.0, minimum=0.1)
if CLOUDSTATS_MEMBERSHIP == "keystone" and not (
    CLOUDSTATS_KEYSTONE_URL and (CLOUDSTATS_KEYSTONE_APP_CREDENTIAL_ID or CLOUDSTATS_KEYSTONE_USERNAME)
):
    raise ImproperlyConfigured(
        "CLOUDSTATS_MEMBERSHIP=keystone needs CLOUDSTATS_KEYSTONE_URL and an application credential "
        "(CLOUDSTATS_KEYSTONE_APP_CREDENTIAL_ID) or a user (CLOUDSTATS_KEYSTONE_USERNAME)."
    )

# --- billing (performance) -------------------------------------------------------------------
# A receipt's items reach a MariaDB/MySQL portal database as LOAD DATA LOCAL INFILE (a private
# tab-separated file): about 40% less server CPU than INSERT statements. Where the client library
# (MariaDB Connector/C allows it by default) or the server (local_infile) refuses it, INSERTs.
BILLING_RECEIPT_LOAD_DATA = strict_bool("BILLING_RECEIPT_LOAD_DATA", default=True)
# Seconds the usage pages keep the jobs of one (user or account, window) query: paging and tabs
# do not read the accounting database again. Prices and billed marks are always fresh. 0: off.
BILLING_USAGE_CACHE_SECONDS = strict_int("BILLING_USAGE_CACHE_SECONDS", default=120, minimum=0)
# The job index (billing.job_index): the finished jobs' billing inputs in the portal's database,
# synced by a beat task every BILLING_JOB_INDEX_SYNC_SECONDS; the whole-cluster pages read it, and
# read slurmdbd live when it is older than BILLING_JOB_INDEX_MAX_LAG_SECONDS (or never built).
BILLING_JOB_INDEX = strict_bool("BILLING_JOB_INDEX", default=True)
BILLING_JOB_INDEX_SYNC_SECONDS = strict_int("BILLING_JOB_INDEX_SYNC_SECONDS", default=300, minimum=10)
BILLING_JOB_INDEX_MAX_LAG_SECONDS = strict_int(
    "BILLING_JOB_INDEX_MAX_LAG_SECONDS", default=3 * BILLING_JOB_INDEX_SYNC_SECONDS + 60, minimum=10
)
# Every this often a sync compares every block with slurmdbd (a grouped pass of the job table): what
# the syncs between miss (a change to a job settled in the index, a purge) shows then. 0: every sync.
BILLING_JOB_INDEX_CHECK_SECONDS = strict_int("BILLING_JOB_INDEX_CHECK_SECONDS", default=3600, minimum=0)
# A job's steps may reach slurmdbd after its end: jobs that ended this recently are read live.
BILLING_JOB_INDEX_GRACE_SECONDS = strict_int("BILLING_JOB_INDEX_GRACE_SECONDS", default=600, minimum=0)
if BILLING_JOB_INDEX_MAX_LAG_SECONDS < BILLING_JOB_INDEX_SYNC_SECONDS:
    raise ImproperlyConfigured(
        "BILLING_JOB_INDEX_MAX_LAG_SECONDS is below BILLING_JOB_INDEX_SYNC_SECONDS: the index would never be read."
    )
if BILLING_JOB_INDEX and "database" in BILLING_SOURCES:  # it indexes the database source's rows
    CELERY_BEAT_SCHEDULE["billing-job-index"] = {
        "task": "billing.sync_job_index",
        "schedule": float(BILLING_JOB_INDEX_SYNC_SECONDS),
    }

# --- search (staff) --------------------------------------------------------------------------
# With LDAP sign-in configured (AUTH_LDAP_USER_SEARCH), the staff search also asks the directory
# for people whose uid, cn or mail contains the query, with the sign-in's bind and this timeout.
SEARCH_LDAP_TIMEOUT = strict_float("AUTH_LDAP_TIMEOUT", default=5.0, minimum=0.1)

# --- pages (public cluster status, no login) ------------------------------------------------------
# Which sections show: scheduler (cores and GPUs), filesystems (Lustre rules), logins (node_exporter
# on PAGES_LOGIN_NODES), software (core share per application category).
PAGES_SECTIONS = str_list("PAGES_SECTIONS", default=["scheduler", "software"])
for _section in PAGES_SECTIONS:
    if _section not in ("scheduler", "filesystems", "logins", "software"):
        raise ImproperlyConfigured(
            f"PAGES_SECTIONS names an unknown section {_section!r}; known: scheduler, filesystems, logins, software."
        )
PAGES_INTRO = env.str("PAGES_INTRO", default="")  # Markdown (PAGES_INTRO_FILE works); raw HTML is escaped
PAGES_LOGIN_NODES = str_list("PAGES_LOGIN_NODES")  # name=instance, e.g. login1=login1.example.org:9100
PAGES_LUSTRE = strict_bool("PAGES_LUSTRE", default=False)
PAGES_SOFTWARE = strict_patterns(
    "PAGES_SOFTWARE",
    default={
        "GROMACS": r"^gmx", "LAMMPS": r"^lmp", "NAMD": r"^namd", "OpenFOAM": r"Foam$", "Quantum ESPRESSO": r"^pw\.x$",
        "VASP": r"^vasp", "CP2K": r"^cp2k", "MATLAB": r"^(matlab|MATLAB)", "R": r"^R$", "Julia": r"^julia",
        "Python": r"^python", "Java": r"^java$",
    },
)  # fmt: skip
PAGES_CACHE_SECONDS = strict_int("PAGES_CACHE_SECONDS", default=60, minimum=0)

# --- outreach (efficiency reports mailed to users) -------------------------------------------------
# A beat task (outreach.send_reports, every OUTREACH_RUN_HOURS) reviews the jobs that ended in the
# last OUTREACH_WINDOW_DAYS with the job page's figures and mails each user what the rules find; it
# does nothing unless "outreach" is in PORTAL_MODULES. One mail per user per rule per OUTREACH_PERIOD_DAYS.
OUTREACH_RULE_IDS = ("idle-gpu", "low-cpu", "excess-memory", "short-jobs", "timeouts")
OUTREACH_RULES = str_list("OUTREACH_RULES", default=list(OUTREACH_RULE_IDS))
for _rule in OUTREACH_RULES:
    if _rule not in OUTREACH_RULE_IDS:
        raise ImproperlyConfigured(
            f"OUTREACH_RULES names an unknown rule {_rule!r}; known: {', '.join(OUTREACH_RULE_IDS)}."
        )
OUTREACH_WINDOW_DAYS = strict_int("OUTREACH_WINDOW_DAYS", default=7, minimum=1, maximum=90)
OUTREACH_PERIOD_DAYS = strict_int("OUTREACH_PERIOD_DAYS", default=7, minimum=1)
OUTREACH_RUN_HOURS = strict_int("OUTREACH_RUN_HOURS", default=24, minimum=1)
OUTREACH_MAX_JOBS = strict_int("OUTREACH_MAX_JOBS", default=50_000, minimum=1)  # reviewed per cluster and run
OUTREACH_JOBS_PER_MAIL = strict_int("OUTREACH_JOBS_PER_MAIL", default=5, minimum=1, maximum=100)
OUTREACH_EMAIL_DOMAIN = env.str("OUTREACH_EMAIL_DOMAIN", default="")  # <user>@<domain> for users without an address
OUTREACH_BCC = str_list("OUTREACH_BCC")  # staff copied on every report
OUTREACH_GPU_IDLE_PERCENT = strict_float("OUTREACH_GPU_IDLE_PERCENT", default=10.0, minimum=0.0)
OUTREACH_GPU_IDLE_HOURS = strict_float("OUTREACH_GPU_IDLE_HOURS", default=2.0, minimum=0.0)
OUTREACH_CPU_PERCENT = strict_float("OUTREACH_CPU_PERCENT", default=50.0, minimum=0.0)
OUTREACH_CPU_MIN_CORE_HOURS = strict_float("OUTREACH_CPU_MIN_CORE_HOURS", default=8.0, minimum=0.0)
OUTREACH_MEMORY_PERCENT = strict_float("OUTREACH_MEMORY_PERCENT", default=10.0, minimum=0.0)
OUTREACH_MEMORY_MIN_GB = strict_float("OUTREACH_MEMORY_MIN_GB", default=32.0, minimum=0.0)
OUTREACH_SHORT_MINUTES = strict_float("OUTREACH_SHORT_MINUTES", default=2.0, minimum=0.0)
OUTREACH_SHORT_JOBS = strict_int("OUTREACH_SHORT_JOBS", default=100, minimum=1)
OUTREACH_TIMEOUT_JOBS = strict_int("OUTREACH_TIMEOUT_JOBS", default=5, minimum=1)
OUTREACH_TIMEOUT_PERCENT = strict_float("OUTREACH_TIMEOUT_PERCENT", default=80.0, minimum=0.0)
# The portal's address, for the links in mail (the job pages, the opt-out page); empty: paths only.
PORTAL_BASE_URL = env.str("PORTAL_BASE_URL", default="").rstrip("/")
CELERY_BEAT_SCHEDULE = {
    **globals().get("CELERY_BEAT_SCHEDULE", {}),
    "outreach.send": {"task": "outreach.send_reports", "schedule": OUTREACH_RUN_HOURS * 3600.0},
}

"""Custos settings, read from the environment (django-environ).

A plain checkout runs with no configuration at all: DEBUG on, SQLite, Celery
eager, e-mail to the console. Production sets at least DJANGO_DEBUG=false,
DJANGO_SECRET_KEY, DJANGO_ALLOWED_HOSTS, DATABASE_URL and REDIS_URL.
"""

import datetime
from pathlib import Path
from urllib.parse import urlsplit

import environ
from celery.schedules import crontab
from csp.constants import NONCE, NONE, SELF
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

DEBUG = env.bool("DJANGO_DEBUG", default=True)

# Development gets a fixed, clearly unsafe key so `make run` works; production
# must provide one through the environment.
_DEV_SECRET_KEY = "django-insecure-custos-development-only-key-never-use-in-production"  # noqa: S105
SECRET_KEY = env.str("DJANGO_SECRET_KEY", default=_DEV_SECRET_KEY if DEBUG else "")
if not SECRET_KEY:
    raise ImproperlyConfigured("DJANGO_SECRET_KEY must be set when DJANGO_DEBUG is false")

ALLOWED_HOSTS = env.list("DJANGO_ALLOWED_HOSTS", default=["127.0.0.1", "localhost", "testserver"])
CSRF_TRUSTED_ORIGINS = env.list("DJANGO_CSRF_TRUSTED_ORIGINS", default=[])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "allauth",
    "allauth.account",
    "allauth.mfa",
    "allauth.socialaccount",
    "allauth.socialaccount.providers.openid_connect",
    "allauth.usersessions",
    "csp",
    "axes",
    "guardian",
    "simple_history",
    "rest_framework",
    "drf_spectacular",
    "drf_spectacular_sidecar",
    "governance",
    "consent",
    "analytics",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    # Below whitenoise: static files keep their own caching and need no policy.
    "csp.middleware.CSPMiddleware",
    "governance.middleware.NoStoreMiddleware",
    # Before anything reads a header, the session cookie, the query or the form: a NUL
    # in any of them is a 400.
    "governance.middleware.RejectNulMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "allauth.account.middleware.AccountMiddleware",
    "governance.middleware.SessionLimits",
    "governance.middleware.MFARequired",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "simple_history.middleware.HistoryRequestMiddleware",
    # Turns a locked sign-in attempt into the lockout page (governance/lockout.py).
    "axes.middleware.AxesMiddleware",
]

ROOT_URLCONF = "governance.urls"
WSGI_APPLICATION = "governance.wsgi.application"

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
                "governance.context_processors.navigation",
                "governance.context_processors.demo",
            ],
        },
    },
]

DATABASES = {
    "default": env.db_url("DATABASE_URL", default=f"sqlite:///{BASE_DIR / 'db.sqlite3'}"),
}
# Two PostgreSQL roles keep the audit trail out of the application's reach (README,
# "Database roles"): DATABASE_URL is the application's role, which may only read and
# add to the trail; DATABASE_OWNER_URL the role that owns the tables, which `migrate`
# uses. Without it DATABASE_URL serves both and `check --deploy` warns (custos.W001).
CUSTOS_DATABASE_OWNER = None
if _owner_url := env.str("DATABASE_OWNER_URL", default=""):
    _owner = environ.Env.db_url_config(_owner_url)
    _app = DATABASES["default"]
    if _app["ENGINE"] != "django.db.backends.postgresql" or any(
        _owner.get(key) != _app.get(key) for key in ("ENGINE", "NAME", "HOST", "PORT")
    ):
        raise ImproperlyConfigured(
            "DATABASE_OWNER_URL must name the same database as DATABASE_URL (PostgreSQL, "
            "same host, port and database name); only the role and its password differ."
        )
    if _owner["USER"] == _app["USER"]:
        raise ImproperlyConfigured(
            "DATABASE_OWNER_URL and DATABASE_URL name the same role: the owner of the "
            "tables and the application must be two different roles (or leave "
            "DATABASE_OWNER_URL unset)."
        )
    CUSTOS_DATABASE_OWNER = {"USER": _owner["USER"], "PASSWORD": _owner["PASSWORD"]}
# The application's role, kept apart: migrate and the tests' setup reconnect the
# default database as the owner for a while (governance/dbroles.py).
CUSTOS_DATABASE_APP = {key: DATABASES["default"].get(key) for key in ("USER", "PASSWORD")}
DATABASES["default"]["ATOMIC_REQUESTS"] = False
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Imports hold a write transaction for a while; wait for it instead of failing.
    DATABASES["default"].setdefault("OPTIONS", {})["timeout"] = 30
else:
    # A new PostgreSQL connection per request costs more than most pages' queries
    # (bench/mydata.py); keep it for a minute, checked before reuse.
    DATABASES["default"]["CONN_MAX_AGE"] = env.int("DJANGO_CONN_MAX_AGE", default=60)
    DATABASES["default"]["CONN_HEALTH_CHECKS"] = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_USER_MODEL = "governance.User"
AUTHENTICATION_BACKENDS = [
    # First: refuses a locked sign-in before any backend below hashes a password.
    "axes.backends.AxesStandaloneBackend",
    # allauth's backend is Django's ModelBackend signing in by e-mail (the admin's
    # "username" too); Django's own beside it would hash every wrong password twice.
    "allauth.account.auth_backends.AuthenticationBackend",
    "guardian.backends.ObjectPermissionBackend",
]
# The user model has no username: guardian must not create its anonymous user.
ANONYMOUS_USER_NAME = None
GUARDIAN_RAISE_403 = False

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
LOGIN_URL = "account_login"
LOGIN_REDIRECT_URL = "dashboard"
LOGOUT_REDIRECT_URL = "account_login"

# Accounts on django-allauth: sign-in by e-mail, password change and reset, MFA,
# single sign-on (OpenID Connect) and the list of one's sessions. Logins are made by
# administrators (and by SSO where the DPO allows it), never by self sign-up.
ACCOUNT_ADAPTER = "governance.adapters.AccountAdapter"
ACCOUNT_FORMS = {
    "login": "governance.account_forms.SignInForm",
    "change_password": "governance.account_forms.PasswordChangeForm",
}
# One address per login: it is what links a login to a person and to an SSO identity.
ACCOUNT_MAX_EMAIL_ADDRESSES = 1
ACCOUNT_CHANGE_EMAIL = False
ACCOUNT_USER_MODEL_USERNAME_FIELD = None
ACCOUNT_LOGIN_METHODS = {"email"}
ACCOUNT_SIGNUP_FIELDS = ["email*", "password1*", "password2*"]
ACCOUNT_EMAIL_VERIFICATION = "none"
ACCOUNT_UNIQUE_EMAIL = True
ACCOUNT_SESSION_REMEMBER = False
ACCOUNT_LOGOUT_REDIRECT_URL = "account_login"
ACCOUNT_PASSWORD_RESET_BY_CODE_ENABLED = False
ACCOUNT_EMAIL_SUBJECT_PREFIX = "[Custos] "
# Sessions are recorded at sign-in (for "sign out everywhere"), not touched per request.
USERSESSIONS_TRACK_ACTIVITY = False
# Failed sign-ins are limited by django-axes (below), not by allauth's cache counter.
# Wrong second-factor codes are limited per login instead (governance/account_forms.py):
# 5 in 15 minutes, then every code is refused until the window has passed.
ACCOUNT_RATE_LIMITS = {"login_failed": False, "mfa_code_failed": "5/900s/key"}
MFA_FORMS = {
    "authenticate": "governance.account_forms.MFAAuthenticateForm",
    "reauthenticate": "governance.account_forms.MFAReauthenticateForm",
}

# Single sign-on through OpenID Connect, configured from the environment (no database
# row): CUSTOS_OIDC_SERVER_URL is the issuer (its /.well-known/openid-configuration is
# read), the client is registered there with the callback
# <site>/accounts/oidc/<CUSTOS_OIDC_PROVIDER_ID>/login/callback/. Roles stay Custos's own:
# a login is matched by a verified e-mail address, or created as a data subject's only
# where the DPO's "sso-signup" rule allows it (governance/adapters.py).
CUSTOS_OIDC_SERVER_URL = env.str("CUSTOS_OIDC_SERVER_URL", default="")
SOCIALACCOUNT_PROVIDERS = {}
if CUSTOS_OIDC_SERVER_URL:
    SOCIALACCOUNT_PROVIDERS["openid_connect"] = {
        "OAUTH_PKCE_ENABLED": True,
        "APPS": [
            {
                "provider_id": env.str("CUSTOS_OIDC_PROVIDER_ID", default="sso"),
                "name": env.str("CUSTOS_OIDC_NAME", default="single sign-on"),
                "client_id": env.str("CUSTOS_OIDC_CLIENT_ID"),
                "secret": env.str("CUSTOS_OIDC_CLIENT_SECRET"),
                "settings": {"server_url": CUSTOS_OIDC_SERVER_URL},
            }
        ],
    }
SOCIALACCOUNT_ADAPTER = "governance.adapters.SocialAccountAdapter"
# Sign in to the login that has the provider's address, only if the provider says it
# verified that address; remember the identity for next time.
SOCIALACCOUNT_EMAIL_AUTHENTICATION = True
SOCIALACCOUNT_EMAIL_AUTHENTICATION_AUTO_CONNECT = True
SOCIALACCOUNT_EMAIL_REQUIRED = True
SOCIALACCOUNT_QUERY_EMAIL = True
SOCIALACCOUNT_AUTO_SIGNUP = True
SOCIALACCOUNT_STORE_TOKENS = False
# The provider's button posts a form (CSRF-protected); a plain link never starts a login.
SOCIALACCOUNT_LOGIN_ON_GET = False

# Lockout (django-axes, governance/lockout.py): 5 failed sign-ins for one login, or 20
# from one network address, within 15 minutes lock further attempts for 15 minutes,
# counted in the database (so every process agrees, and a lock and its lifting are
# audited). Locked attempts are refused before any password is hashed.
CUSTOS_LOCKOUT_ACCOUNT_FAILURES = env.int("CUSTOS_LOCKOUT_ACCOUNT_FAILURES", default=5)
CUSTOS_LOCKOUT_ADDRESS_FAILURES = env.int("CUSTOS_LOCKOUT_ADDRESS_FAILURES", default=20)
AXES_HANDLER = "governance.lockout.LockoutHandler"
AXES_FAILURE_LIMIT = CUSTOS_LOCKOUT_ACCOUNT_FAILURES
AXES_COOLOFF_TIME = datetime.timedelta(minutes=env.int("CUSTOS_LOCKOUT_MINUTES", default=15))
AXES_LOCKOUT_PARAMETERS = ["username", "ip_address"]
AXES_USERNAME_CALLABLE = "governance.lockout.login_of"
AXES_LOCKOUT_CALLABLE = "governance.lockout.lockout_response"
# Attempts during a lockout are refused without being counted: they cannot extend it.
AXES_RESET_COOL_OFF_ON_FAILURE_DURING_LOCKOUT = False
# A success does not wipe the count: an attacker cannot interleave their own sign-ins.
AXES_RESET_ON_SUCCESS = False
# Locks are lifted on Custos's page (audited), not by deleting rows in the admin.
AXES_ENABLE_ADMIN = False
AXES_VERBOSE = False
# Sign-ins are recorded in the audit trail (AccountEvent), not a second log of axes's.
AXES_DISABLE_ACCESS_LOG = True

# Two-factor authentication (allauth.mfa): an authenticator app (TOTP) with recovery
# codes, and security keys or passkeys (WebAuthn). Required for stewards, committee
# members, the DPO, auditors and administrators (governance.middleware.MFARequired).
MFA_SUPPORTED_TYPES = ["totp", "recovery_codes", "webauthn"]
MFA_TOTP_ISSUER = "Custos"
# A passkey sign-in is possession of the key plus its PIN or biometric (verification
# required), so it counts as two factors and replaces password plus code.
MFA_PASSKEY_LOGIN_ENABLED = True
MFA_WEBAUTHN_USER_VERIFICATION = "required"
# Browsers allow WebAuthn on http:// only for localhost; `make run` serves 127.0.0.1.
MFA_WEBAUTHN_ALLOW_INSECURE_ORIGIN = DEBUG
# Addresses are given by administrators (there is no self sign-up), so allauth's guard
# against a squatter's unverified address does not apply.
MFA_ALLOW_UNVERIFIED_EMAIL = True
# DEMO SETTING. With it on, nobody is asked to set up two-factor authentication (so the
# demo accounts of `make run` sign in with a password alone) and every page says so.
# On by default only with DEBUG on and CUSTOS_DEMO_SKIP_MFA unset; `check --deploy`
# refuses it (custos.E011).
CUSTOS_DEMO_SKIP_MFA = env.bool("CUSTOS_DEMO_SKIP_MFA", default=DEBUG)

# Sessions end when the browser closes, after 30 minutes without a request
# (SESSION_COOKIE_AGE; governance.middleware.SessionLimits renews it at most once a
# minute rather than saving the session on every request) and 12 hours after sign-in.
SESSION_EXPIRE_AT_BROWSER_CLOSE = True
SESSION_COOKIE_AGE = env.int("CUSTOS_SESSION_IDLE_SECONDS", default=30 * 60)
CUSTOS_SESSION_MAX_AGE = env.int("CUSTOS_SESSION_MAX_SECONDS", default=12 * 60 * 60)
CUSTOS_SESSION_RENEW_EVERY = 60

LANGUAGE_CODE = "en-gb"
TIME_ZONE = env.str("DJANGO_TIME_ZONE", default="UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
STATIC_ROOT = env.path("DJANGO_STATIC_ROOT", default=BASE_DIR / "staticfiles")
MEDIA_ROOT = env.path("DJANGO_MEDIA_ROOT", default=BASE_DIR / "media")
MEDIA_URL = "media/"
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
# Uploaded CSV files are streamed to disk, never held whole in memory; they are not
# counted in DATA_UPLOAD_MAX_MEMORY_SIZE, which bounds every other request body: a
# form's fields and an API call's JSON (413 with a JSON message, governance/parsers.py).
# 1 MiB holds the longest texts Custos accepts (governance/limits.py) many times over.
FILE_UPLOAD_MAX_MEMORY_SIZE = 2_621_440
DATA_UPLOAD_MAX_MEMORY_SIZE = env.int("CUSTOS_MAX_BODY_BYTES", default=1024 * 1024)

EMAIL_BACKEND = env.str(
    "DJANGO_EMAIL_BACKEND", default="django.core.mail.backends.console.EmailBackend"
)
DEFAULT_FROM_EMAIL = env.str("DJANGO_DEFAULT_FROM_EMAIL", default="custos@localhost")

# Celery: a real broker when REDIS_URL is set, otherwise tasks run in-process.
REDIS_URL = env.str("REDIS_URL", default="")
CELERY_BROKER_URL = REDIS_URL or "memory://"
CELERY_RESULT_BACKEND = None
CELERY_TASK_ALWAYS_EAGER = not REDIS_URL
CELERY_TASK_EAGER_PROPAGATES = True
# Every task survives a dying worker (docs/tasks.md): the message is acknowledged only
# when the task has finished, and given back to the broker, not acknowledged, when the
# pool process running it dies (SIGKILL, out of memory). The job row's claim makes the
# second delivery harmless.
CELERY_TASK_ACKS_LATE = True
CELERY_TASK_REJECT_ON_WORKER_LOST = True
CELERY_WORKER_PREFETCH_MULTIPLIER = 1
CELERY_TASK_IGNORE_RESULT = True
CELERY_BROKER_CONNECTION_RETRY_ON_STARTUP = True
CELERY_BROKER_CONNECTION_MAX_RETRIES = None  # a restarted Redis is waited for, forever
# Redis gives an unacknowledged message to another worker after the visibility timeout,
# counted from delivery, whether or not the first worker is still on it. It must
# therefore exceed the longest job: a million-row import takes about 30 s and a
# two-million-row extract about 15 s (docs/records.md, docs/access.md), so 2 hours
# leaves room for files a hundred times larger, and no live job is delivered twice. A
# dead worker's job does not wait that long: the sweeper (below) requeues it once its
# heartbeat is CUSTOS_JOB_STALE_SECONDS old, and the message that comes back after the
# timeout finds the job finished and does nothing. Retries with a countdown (ETA) must
# stay below it too.
CELERY_BROKER_TRANSPORT_OPTIONS = {
    "visibility_timeout": env.int("CUSTOS_BROKER_VISIBILITY_TIMEOUT", default=2 * 3600),
}
# Jobs (governance/jobs.py): a running job beats every HEARTBEAT seconds; one silent for
# STALE seconds has lost its worker and is requeued by the sweeper (every SWEEP
# seconds), or failed with a reason after MAX_ATTEMPTS claims; a job still queued after
# RESEND seconds (its message lost with a broker's queue) has its message sent again.
CUSTOS_JOB_HEARTBEAT_SECONDS = env.float("CUSTOS_JOB_HEARTBEAT_SECONDS", default=10)
CUSTOS_JOB_STALE_SECONDS = env.float("CUSTOS_JOB_STALE_SECONDS", default=90)
CUSTOS_JOB_SWEEP_SECONDS = env.float("CUSTOS_JOB_SWEEP_SECONDS", default=60)
CUSTOS_JOB_MAX_ATTEMPTS = env.int("CUSTOS_JOB_MAX_ATTEMPTS", default=3)
CUSTOS_JOB_RESEND_SECONDS = env.float("CUSTOS_JOB_RESEND_SECONDS", default=900)
# Periodic jobs (celery beat). Each is idempotent, so a missed or repeated run is harmless.
CELERY_BEAT_SCHEDULE = {
    "grants-expire": {
        "task": "analytics.tasks.grants_expire_task",
        "schedule": crontab(hour=0, minute=15),
    },
    "grants-warn-expiring": {
        "task": "analytics.tasks.grants_warn_expiring_task",
        "schedule": crontab(hour=7, minute=0),
    },
    "obligations-flag-overdue": {
        "task": "analytics.tasks.obligations_flag_overdue_task",
        "schedule": crontab(hour=7, minute=5),
    },
    "extracts-purge": {
        "task": "analytics.tasks.extracts_purge_task",
        "schedule": crontab(minute=30),
    },
    "exports-purge": {
        "task": "consent.tasks.exports_purge_task",
        "schedule": crontab(hour=3, minute=0),
    },
    "audit-verify": {
        "task": "governance.tasks.audit_verify_task",
        "schedule": crontab(hour=2, minute=30),
    },
    "jobs-sweep": {
        "task": "governance.tasks.jobs_sweep_task",
        "schedule": CUSTOS_JOB_SWEEP_SECONDS,
    },
}

if REDIS_URL:
    CACHES = {
        "default": {
            "BACKEND": "django.core.cache.backends.redis.RedisCache",
            "LOCATION": REDIS_URL,
            "KEY_PREFIX": env.str("CUSTOS_CACHE_PREFIX", default="custos"),
        }
    }
    # Sessions read from Redis, written through to the database: no query per page.
    SESSION_ENGINE = "django.contrib.sessions.backends.cached_db"
else:
    CACHES = {"default": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "governance.api_auth.BearerTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": [
        "rest_framework.permissions.IsAuthenticated",
        # A read-only token is refused every write, whatever the endpoint.
        "governance.api_auth.TokenScope",
    ],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    # JSON only, bounded in size and depth (governance/parsers.py); record uploads
    # stream through their own CSV parser.
    "DEFAULT_PARSER_CLASSES": ["governance.parsers.JSONParser"],
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.PageNumberPagination",
    "PAGE_SIZE": 100,
    "EXCEPTION_HANDLER": "governance.api.exception_handler",
    "UNAUTHENTICATED_USER": "django.contrib.auth.models.AnonymousUser",
}
SPECTACULAR_SETTINGS = {
    "TITLE": "Custos API",
    "DESCRIPTION": "Governance of learning-analytics data.",
    "VERSION": "1.0.0",
    "SERVE_INCLUDE_SCHEMA": False,
    "SERVE_PERMISSIONS": ["rest_framework.permissions.IsAuthenticated"],
    # Swagger UI is served from the vendored sidecar package, never a CDN.
    "SWAGGER_UI_DIST": "SIDECAR",
    # No badge fetched from the online validator: nothing leaves for another origin.
    "SWAGGER_UI_SETTINGS": {"deepLinking": True, "validatorUrl": None},
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Errors every operation can answer, described once (governance/api_schema.py).
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "governance.api_schema.document_errors",
    ],
}

CUSTOS_ORGANISATION = env.str("CUSTOS_ORGANISATION", default="Custos demo organisation")
# Links in e-mails point here.
CUSTOS_SITE_URL = env.str("CUSTOS_SITE_URL", default="http://127.0.0.1:8000")
# How many rows an import validates and writes per batch.
CUSTOS_IMPORT_BATCH_SIZE = env.int("CUSTOS_IMPORT_BATCH_SIZE", default=5000)
# How long a person's subject access export stays downloadable.
CUSTOS_EXPORT_KEEP_DAYS = env.int("CUSTOS_EXPORT_KEEP_DAYS", default=7)

SESSION_COOKIE_HTTPONLY = True
X_FRAME_OPTIONS = "DENY"
# Every page runs under a strict policy (docs/security.md): our own scripts, by nonce
# where a template gives one, our own stylesheets, no inline style or script, nothing
# from another origin, never framed. django-csp adds the nonce to the header only on
# responses that used it.
_SSO_ORIGINS = (
    ["{0.scheme}://{0.netloc}".format(urlsplit(CUSTOS_OIDC_SERVER_URL))]
    if CUSTOS_OIDC_SERVER_URL
    else []
)
CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        # Swagger UI's stylesheet draws its icons as data: images, which run nothing.
        "img-src": [SELF, "data:"],
        "object-src": [NONE],
        "base-uri": [SELF],
        # The SSO button posts to Custos, which redirects the form to the provider:
        # browsers check that redirect against form-action too.
        "form-action": [SELF, *_SSO_ORIGINS],
        "frame-ancestors": [NONE],
    },
}
SECURE_CONTENT_TYPE_NOSNIFF = True
SECURE_REFERRER_POLICY = "same-origin"
if not DEBUG:
    SECURE_SSL_REDIRECT = env.bool("DJANGO_SECURE_SSL_REDIRECT", default=True)
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    SESSION_COOKIE_SECURE = True
    CSRF_COOKIE_SECURE = True
    SECURE_HSTS_SECONDS = env.int("DJANGO_HSTS_SECONDS", default=31_536_000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = True
    SECURE_HSTS_PRELOAD = True

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env.str("DJANGO_LOG_LEVEL", default="WARNING")},
}

"""maximui settings: one file, read from the environment.

Local runs keep their generated secrets in the git-ignored `.env.local` (see
`maximui/localenv.py`, which `make run` calls); values in the real environment
win over that file. With DEBUG off a missing secret stops start-up.
"""

from __future__ import annotations

import os
import sys
from datetime import timedelta
from pathlib import Path

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

BASE_DIR = Path(__file__).resolve().parent.parent
# MAXIMUI_ENV_FILE points at another env file; set it empty to read none (tests, containers).
_ENV_FILE_SETTING = os.environ.get("MAXIMUI_ENV_FILE")
LOCAL_ENV_FILE = BASE_DIR / ".env.local" if _ENV_FILE_SETTING is None else Path(_ENV_FILE_SETTING)
if _ENV_FILE_SETTING and not LOCAL_ENV_FILE.is_file():
    raise ImproperlyConfigured(f"MAXIMUI_ENV_FILE={_ENV_FILE_SETTING!r} is not a file")


def _read_env_file(path: Path) -> dict[str, str]:
    values: dict[str, str] = {}
    if _ENV_FILE_SETTING == "" or not path.exists():
        return values
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            raise ImproperlyConfigured(f"{path.name} line {lineno}: expected NAME=value")
        name, value = line.split("=", 1)
        values[name.strip()] = value.strip()
    return values


_LOCAL = _read_env_file(LOCAL_ENV_FILE)


def env(name: str, default: str | None = None) -> str | None:
    if name in os.environ:
        return os.environ[name]
    return _LOCAL.get(name, default)


def env_bool(name: str, default: bool) -> bool:
    raw = env(name)
    if raw is None or raw == "":
        return default
    lowered = raw.strip().lower()
    if lowered in {"1", "true", "yes", "on"}:
        return True
    if lowered in {"0", "false", "no", "off"}:
        return False
    raise ImproperlyConfigured(f"{name}={raw!r} is not a boolean: use 1/0, true/false, yes/no or on/off")


def env_int(name: str, default: int, *, minimum: int = 0) -> int:
    raw = env(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name}={raw!r} is not a whole number") from None
    if value < minimum:
        raise ImproperlyConfigured(f"{name}={raw!r} must be at least {minimum}")
    return value


def env_list(name: str, default: list[str]) -> list[str]:
    raw = env(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_secret(name: str, *, debug: bool, dev_default: str) -> str:
    value = env(name)
    if value:
        return value
    if debug:
        return dev_default
    raise ImproperlyConfigured(
        f"{name} is not set. Set it in the environment, or run `make run` once to "
        f"generate a local .env.local with fresh secrets."
    )


DEBUG = env_bool("DEBUG", False)
# pytest runs get throwaway secrets and unhashed static files, however it is started.
TESTING = env_bool("MAXIMUI_TESTING", False) or "pytest" in " ".join(Path(sys.argv[0]).parts[-2:])

SECRET_KEY = env_secret("SECRET_KEY", debug=DEBUG or TESTING, dev_default="insecure-dev-only-" + "x" * 40)

# Comma-separated Fernet keys: the first encrypts, every one decrypts (rotation).
_DEV_FERNET_KEY = "ZGV2LW9ubHkta2V5LWRvLW5vdC11c2UtaW4tcHJvZCE="
MAXIMUI_ENCRYPTION_KEYS = env_list(
    "MAXIMUI_ENCRYPTION_KEYS",
    [_DEV_FERNET_KEY] if (DEBUG or TESTING) else [],
)
if not MAXIMUI_ENCRYPTION_KEYS:
    env_secret("MAXIMUI_ENCRYPTION_KEYS", debug=False, dev_default="")

MAXIM_BASE_URL = env("MAXIM_BASE_URL", "https://api.getmaxim.ai")

# The outbound policy (README, "Outbound policy"): the only origins a workspace's base URL may
# use; the client refuses every other one before opening a socket. `http://` only where listed so.
MAXIMUI_ALLOWED_BASE_URLS = env_list("MAXIMUI_ALLOWED_BASE_URLS", ["https://api.getmaxim.ai"])
if TESTING:
    # The suite's fake Maxims: reserved `.test` hosts answered by respx/MockTransport, and
    # devtools/maxim_server.py on loopback ports picked at random. Policy tests override this list.
    MAXIMUI_ALLOWED_BASE_URLS += [
        "https://maxim.test",
        "https://eu.maxim.test",
        "https://maxim.example.test",
        "https://api.maxim.example.test",
        "https://other.example.test",
        "https://api.example-maxim.test",
        "http://127.0.0.1:*",
    ]
try:
    from prompts_app.maxim.outbound import PolicyError, parse_allow_list

    parse_allow_list(MAXIMUI_ALLOWED_BASE_URLS)
except PolicyError as exc:
    raise ImproperlyConfigured(str(exc)) from None

# Requests held open per process until a run is stored (comparison pages, pending runs): keep
# it below gunicorn's --threads so other pages always have a thread (see services/run_watch.py).
MAXIMUI_HELD_REQUESTS = env_int("MAXIMUI_HELD_REQUESTS", 4, minimum=1)

# Work done outside the request (a comparison's runs; prompts_app/runner.py): "thread" sends
# on a bounded pool of server threads; "immediate" runs each in the caller's thread, for tests
# whose data lives in one uncommitted transaction (tests/conftest.py chooses it).
MAXIMUI_RUNNER = env("MAXIMUI_RUNNER", "thread")
if MAXIMUI_RUNNER not in ("thread", "immediate"):
    raise ImproperlyConfigured(f"MAXIMUI_RUNNER must be 'thread' or 'immediate', not {MAXIMUI_RUNNER!r}")
# Eight columns times ten repeats must not open eighty connections to Maxim at once.
MAXIMUI_RUNNER_THREADS = env_int("MAXIMUI_RUNNER_THREADS", 16, minimum=1)

ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]"])
if DEBUG and not set(ALLOWED_HOSTS) <= {"127.0.0.1", "localhost", "[::1]", "::1"}:
    # Debug pages show local variables and settings; they must never face a network.
    raise ImproperlyConfigured(
        f"DEBUG=1 is only for a loopback server, but ALLOWED_HOSTS={','.join(ALLOWED_HOSTS)!r}: "
        "turn DEBUG off or serve on 127.0.0.1/localhost only."
    )
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "whitenoise.runserver_nostatic",
    "django.contrib.staticfiles",
    "django.contrib.humanize",
    "django.forms",  # its widget templates, for the project-wide FORM_RENDERER below
    "django_htmx",
    "axes",
    "csp",
    "template_partials",
    # Before django_tasks_db: its own `db_worker` command (which resumes batches first) wins.
    "prompts_app",
    "django_tasks",
    "django_tasks_db",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "csp.middleware.CSPMiddleware",
    "whitenoise.middleware.WhiteNoiseMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
    "django_htmx.middleware.HtmxMiddleware",
    "prompts_app.middleware.HistoryRestoreMiddleware",  # Back to a pushed URL draws the whole page
    "axes.middleware.AxesMiddleware",  # last: it turns a locked-out login into the lockout page
]

ROOT_URLCONF = "maximui.urls"

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
                "prompts_app.context_processors.nav",
            ],
        },
    },
]

# Forms render through the project's templates: one field template (prompts_app/field.html) for every field.
FORM_RENDERER = "prompts_app.forms.renderer.FormRenderer"

WSGI_APPLICATION = "maximui.wsgi.application"

VAR_DIR = Path(env("MAXIMUI_VAR_DIR", str(BASE_DIR / "var")) or BASE_DIR / "var")
if not env("DATABASE_URL"):
    VAR_DIR.mkdir(parents=True, exist_ok=True)  # a fresh clone has no var/ yet (it is git-ignored)
DATABASES = {
    "default": dj_database_url.parse(
        env("DATABASE_URL") or f"sqlite:///{VAR_DIR / 'db.sqlite3'}",
        conn_max_age=60,
        conn_health_checks=True,
    )
}
if DATABASES["default"]["ENGINE"] == "django.db.backends.sqlite3":
    # Connections are kept (CONN_MAX_AGE=60 and health checks, from above): a new one per
    # request ran the PRAGMAs and started with an empty page cache, which a history page at
    # 1M runs then filled again from the OS (bench/bench_history.py). One connection per
    # thread, as Django keeps them, is safe under gunicorn's threads.
    # WAL lets the history page read while a run is being written; IMMEDIATE
    # transactions avoid "database is locked" when parallel runs write at once.
    # mmap: pages are read from the OS cache without a copy per page (a text search's totals
    # read tens of thousands of pages); cache_size -32000 = 32 MB per connection.
    DATABASES["default"]["OPTIONS"] = {
        "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA mmap_size=1073741824; PRAGMA cache_size=-32000;",
        "transaction_mode": "IMMEDIATE",
        "timeout": 20,
    }
    if TESTING:
        # A file, not SQLite's shared-cache memory database: that one fails at once with
        # "table is locked" when the live server and the comparison threads write together,
        # where a WAL file waits its turn, as in production.
        import tempfile

        DATABASES["default"]["TEST"] = {
            "NAME": os.path.join(tempfile.gettempdir(), f"maximui-test-{os.getpid()}.sqlite3")
        }

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]

# -- login throttling (django-axes) ---------------------------------------------------------
# Five wrong passwords for one username from one address lock that pair out for 15 minutes
# (the combination, so a stranger cannot lock a colleague out from elsewhere). A locked-out
# attempt is refused before the password is hashed, and a success clears the count.
AUTHENTICATION_BACKENDS = [
    "axes.backends.AxesStandaloneBackend",
    "django.contrib.auth.backends.ModelBackend",
]
AXES_FAILURE_LIMIT = 5
AXES_COOLOFF_TIME = timedelta(minutes=15)
AXES_LOCKOUT_PARAMETERS = [["username", "ip_address"]]
AXES_RESET_ON_SUCCESS = True
AXES_LOCKOUT_CALLABLE = "prompts_app.views.accounts.locked_out"
AXES_VERBOSE = False
# Behind a reverse proxy REMOTE_ADDR is the proxy: name the header it sets with the client address.
AXES_IPWARE_META_PRECEDENCE_ORDER = tuple(env_list("MAXIMUI_CLIENT_IP_HEADERS", ["REMOTE_ADDR"]))

if TESTING:
    # Accounts: tests create users in every fixture; a slow hash would dominate the suite's time.
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LOGIN_URL = "login"
LOGIN_REDIRECT_URL = "home"
LOGOUT_REDIRECT_URL = "login"

# The version builder posts every row of a version at once: up to 100 messages of up to
# 100,000 characters, each with parts and tool calls. Django's defaults (1,000 fields,
# 2.5 MB) would answer 400 to a version well inside those limits.
DATA_UPLOAD_MAX_NUMBER_FIELDS = 20_000
DATA_UPLOAD_MAX_MEMORY_SIZE = 12 * 1024 * 1024

LANGUAGE_CODE = "en-us"
TIME_ZONE = env("TIME_ZONE", "UTC")
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATICFILES_DIRS = [BASE_DIR / "static"]
# Tests serve static files from the finders; there is nothing collected to look at.
STATIC_ROOT = None if TESTING else BASE_DIR / "staticfiles"
STORAGES = {
    "default": {"BACKEND": "django.core.files.storage.FileSystemStorage"},
    "staticfiles": {
        "BACKEND": (
            "django.contrib.staticfiles.storage.StaticFilesStorage"
            if TESTING
            else "whitenoise.storage.CompressedManifestStaticFilesStorage"
        )
    },
}

WHITENOISE_USE_FINDERS = TESTING

SESSION_COOKIE_HTTPONLY = True
SESSION_COOKIE_SECURE = env_bool("SECURE_COOKIES", False)
CSRF_COOKIE_SECURE = SESSION_COOKIE_SECURE
X_FRAME_OPTIONS = "DENY"
SECURE_CONTENT_TYPE_NOSNIFF = True

# -- transport and browser security headers ---------------------------------------------------
# Behind TLS set SECURE_SSL_REDIRECT=1 and SECURE_HSTS_SECONDS (e.g. 31536000); behind a proxy
# that terminates TLS also SECURE_PROXY_SSL_HEADER=1, and only if the proxy always sets (and
# overwrites) X-Forwarded-Proto: otherwise a client could claim https itself.
SECURE_SSL_REDIRECT = env_bool("SECURE_SSL_REDIRECT", False)
try:
    SECURE_HSTS_SECONDS = int(env("SECURE_HSTS_SECONDS", "0") or 0)
except ValueError:
    raise ImproperlyConfigured(
        f"SECURE_HSTS_SECONDS={env('SECURE_HSTS_SECONDS')!r} is not a whole number of seconds"
    ) from None
SECURE_HSTS_INCLUDE_SUBDOMAINS = env_bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", False)
SECURE_HSTS_PRELOAD = env_bool("SECURE_HSTS_PRELOAD", False)
if env_bool("SECURE_PROXY_SSL_HEADER", False):
    SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
SECURE_REFERRER_POLICY = "same-origin"
SECURE_CROSS_ORIGIN_OPENER_POLICY = "same-origin"

# Content-Security-Policy (django-csp): only this origin's files, no inline script or style,
# no eval (htmx runs with allowEval off, see base.html), never framed. Script tags carry the
# request's nonce as well.
from csp.constants import NONCE, NONE, SELF  # noqa: E402

CONTENT_SECURITY_POLICY = {
    "DIRECTIVES": {
        "default-src": [SELF],
        "script-src": [SELF, NONCE],
        "style-src": [SELF],
        "img-src": [SELF, "data:"],
        "font-src": [SELF],
        "connect-src": [SELF],
        "object-src": [NONE],
        "frame-ancestors": [NONE],
        "form-action": [SELF],
        "base-uri": [NONE],
    },
}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "handlers": {"console": {"class": "logging.StreamHandler"}},
    "root": {"handlers": ["console"], "level": env("LOG_LEVEL", "INFO")},
    "loggers": {
        # httpx logs full URLs at INFO; keep it quiet, the client logs what matters.
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
        # axes logs every login at INFO; its warnings (failures, lock-outs) are what matters.
        "axes": {"level": "WARNING"},
    },
}

# Background work (batch comparisons, issue #12): django-tasks, the backport of Django 6's
# django.tasks. Tasks are stored in the database and run by `manage.py db_worker` (make run
# starts one beside gunicorn); tests run them at once, in the caller's thread.
_DB_TASKS = {"BACKEND": "django_tasks_db.DatabaseBackend", "QUEUES": ["default"]}
TASKS = {"default": _DB_TASKS}
if TESTING:
    # "database" is for the tests that run a real `db_worker --backend database` and kill it.
    TASKS = {"default": {"BACKEND": "django_tasks.backends.immediate.ImmediateBackend"}, "database": _DB_TASKS}
# How long one batch task sends before it hands over to a fresh task: a worker told to stop
# finishes its current task first, so this bounds how long a graceful stop waits.
MAXIMUI_BATCH_SLICE_SECONDS = env_int("MAXIMUI_BATCH_SLICE_SECONDS", 15, minimum=1)
# Task chains a batch starts with: workers that may drive one batch at once (services.batches.chains_per_batch).
MAXIMUI_BATCH_CHAINS = env_int("MAXIMUI_BATCH_CHAINS", 1, minimum=1)

"""Settings for the test suite: the real settings with test-friendly environment defaults.

Only defaults are set here; a variable already in the environment (DATABASE_URL to run the suite
on PostgreSQL or MariaDB, for example) wins.
"""

import os

os.environ.setdefault("SECRET_KEY", "test-only-secret-key")
os.environ.setdefault("PORTAL_HTTPS", "false")
os.environ.setdefault("PORTAL_MANIFEST_STATIC", "false")
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# Every module is mounted in tests, so the access walk covers it.
os.environ.setdefault("PORTAL_MODULES", "all")
# cloudstats: the members of the tests' cloud projects (the owner's account's name: owner and member)
os.environ.setdefault("CLOUDSTATS_MEMBERSHIP", "file")
os.environ.setdefault("CLOUDSTATS_PROJECTS_FILE", os.path.join(_ROOT, "tests", "cloudstats", "projects.yaml"))
# Every section of the public pages, so the access walk and the tests see them all.
os.environ.setdefault("PAGES_SECTIONS", "scheduler,filesystems,logins,software")
os.environ.setdefault("EMAIL_URL", "memorymail://")
os.environ.setdefault("CELERY_TASK_ALWAYS_EAGER", "true")
os.environ.setdefault("PROMETHEUS_URL", "http://127.0.0.1:9")  # nothing listens: unit tests see "unavailable"
os.environ.setdefault("PROMETHEUS_TIMEOUT", "0.5")
os.environ.setdefault("SLURM_SCONTROL", "")  # no slurmctld in unit tests: the nodes pages say so
# Rate-limit counters in local memory, even with the stack's REDIS_URL: tests clear them, and
# clearing a Redis cache flushes its whole database (Celery's queues with it).
os.environ.setdefault("PORTAL_THROTTLE_CACHE_URL", "locmemcache://throttle")
os.environ.setdefault("PORTAL_CACHE_URL", "locmemcache://portal")
# The portal's metrics in this process's memory (tests/test_metrics.py points them at Redis itself).
os.environ.setdefault("PORTAL_METRICS_REDIS_URL", "")
os.environ.setdefault("PORTAL_METRICS_FLUSH_SECONDS", "0")  # each request's counts added before it ends

from userportal.settings import *  # noqa: E402, F403

if "demo" not in INSTALLED_APPS:  # noqa: F405
    INSTALLED_APPS.append("demo")  # noqa: F405 - the suite tests manage.py seed_demo whatever PORTAL_DEBUG says
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]  # fast logins in tests

# WhiteNoise warns when STATIC_ROOT does not exist; tests serve static files through the finders.
STATIC_ROOT.mkdir(parents=True, exist_ok=True)  # noqa: F405
WHITENOISE_USE_FINDERS = True
AXES_VERBOSE = False

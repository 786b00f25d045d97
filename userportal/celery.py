"""The portal's Celery app (Redis broker). Workers: `celery -A userportal worker`."""

from __future__ import annotations

import os

from celery import Celery

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "userportal.settings")

app = Celery("userportal")
app.config_from_object("django.conf:settings", namespace="CELERY")
app.autodiscover_tasks()

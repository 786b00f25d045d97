"""The WSGI entry point. A missing or bad setting prints one line naming it and exits 2 (userportal/startup.py)."""

import os

from userportal.startup import wsgi_application

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "userportal.settings")

application = wsgi_application()

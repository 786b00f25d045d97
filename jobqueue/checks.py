"""System checks for the job queue: `manage.py check` refuses the ssh executor without a sandbox on lasting nodes."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks


@checks.register()
def check_sandbox(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    if "jobqueue" not in settings.PORTAL_MODULES or settings.JOBQUEUE_EXECUTOR != "ssh":
        return []
    if settings.JOBQUEUE_SANDBOX == "none" and not (
        settings.JOBQUEUE_NODES_DISPOSABLE and settings.JOBQUEUE_LXC_RESTART
    ):
        return [
            checks.Error(
                "JOBQUEUE_SANDBOX=none on nodes that are not disposable: every job would see the ssh user's "
                "files and the other jobs' directories, and could leave processes behind.",
                hint="Keep JOBQUEUE_SANDBOX=bwrap (bubblewrap on the nodes), or reset the nodes after each job: "
                "JOBQUEUE_NODES_DISPOSABLE=true with JOBQUEUE_LXC_RESTART=true. The ssh executor refuses jobs until then.",
                id="jobqueue.E001",
            )
        ]
    return []

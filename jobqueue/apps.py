from django.apps import AppConfig


class JobqueueConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "jobqueue"

    def ready(self) -> None:
        from jobqueue import (
            checks,  # noqa: F401 - registers the sandbox check
            summary,
        )
        from userportal.summary import register_section

        register_section(*summary.SECTIONS)  # the user summary's job-queue section

from django.apps import AppConfig


class JobstatsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "jobstats"

    def ready(self) -> None:
        from jobstats import checks  # noqa: F401 - registers the site-data checks

from django.apps import AppConfig


class UserportalConfig(AppConfig):
    name = "userportal"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from userportal import checks, signals  # noqa: F401  (registers system checks and audit receivers)

from django.apps import AppConfig


class TopConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "top"

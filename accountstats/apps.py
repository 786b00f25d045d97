from django.apps import AppConfig


class AccountstatsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "accountstats"

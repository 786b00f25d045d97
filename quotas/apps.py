from django.apps import AppConfig


class QuotasConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "quotas"

    def ready(self) -> None:
        from quotas import summary
        from userportal.summary import register_section

        register_section(*summary.SECTIONS)  # the user summary's storage section

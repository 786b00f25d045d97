from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class UsersummaryConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "usersummary"
    verbose_name = _("User summary")

    def ready(self) -> None:
        from userportal.summary import register_section
        from usersummary import services

        register_section(*services.SECTIONS)  # identity and Slurm associations; the other apps register theirs

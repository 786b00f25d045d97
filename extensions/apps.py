from django.apps import AppConfig
from django.utils.translation import gettext_lazy as _


class ExtensionsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "extensions"
    verbose_name = _("Time extensions")
    # userportal.powers: plain staff read the requests; accepting (which runs scontrol update) and refusing needs this.
    staff_powers = {
        "extension-decisions": (
            "Accept and refuse walltime extension requests",
            ("extensions.change_extensionrequest",),
        )
    }

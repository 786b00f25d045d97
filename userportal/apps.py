from django.apps import AppConfig


class UserportalConfig(AppConfig):
    name = "userportal"
    default_auto_field = "django.db.models.BigAutoField"
    # userportal.powers: the audit log (billing's staff pages show it).
    staff_powers = {"audit-readers": ("Read the audit log", ("userportal.view_auditentry",))}

    def ready(self) -> None:
        from userportal import checks, signals  # noqa: F401  (registers system checks and audit receivers)

from django.apps import AppConfig


class UserportalConfig(AppConfig):
    name = "userportal"
    default_auto_field = "django.db.models.BigAutoField"
    # userportal.powers: the audit log (billing's staff pages show it).
    staff_powers = {"audit-readers": ("Read the audit log", ("userportal.view_auditentry",))}

    def ready(self) -> None:
        from userportal import beat, checks, metrics, signals  # noqa: F401  (system checks, audit receivers)

        beat.connect_signals()  # the periodic tasks' last run and success
        metrics.connect_signals()  # every task's outcome, for /metrics

from django.apps import AppConfig


class PrioritiesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "priorities"
    # userportal.powers: accept, refuse and change requests (accepting runs sacctmgr in automatic mode).
    staff_powers = {"priority-decisions": ("Decide GPU priority requests", ("priorities.change_priorityrequest",))}

from django.apps import AppConfig


class PrioritiesConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "priorities"
    # userportal.powers: accept, refuse and change requests (accepting runs sacctmgr in automatic mode).
    staff_powers = {"priority-decisions": ("Decide GPU priority requests", ("priorities.change_priorityrequest",))}

    def ready(self) -> None:
        from priorities import summary
        from userportal.search import register_search_provider
        from userportal.summary import register_section

        register_section(*summary.SECTIONS)  # the user summary's GPU priority section
        register_search_provider(summary.SEARCH)  # requests by ticket in the staff search

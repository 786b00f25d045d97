from django.apps import AppConfig


class BillingConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "billing"
    # userportal.powers: what plain staff may not do without these groups.
    staff_powers = {
        "billing-rates": ("Change billing rates", ("billing.add_rate",)),
        "billing-payments": ("Mark receipts paid", ("billing.change_receipt",)),
    }

    def ready(self) -> None:
        from billing import summary
        from userportal.summary import register_section

        register_section(*summary.SECTIONS)  # the user summary's billing section

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
        from django.contrib.auth.signals import user_logged_in

        from billing import roles, summary
        from userportal.summary import register_section

        register_section(*summary.SECTIONS)  # the user summary's billing section
        # Slurm AdminLevel -> billing role groups at each sign-in (BILLING_ROLES_FROM_SLURM).
        user_logged_in.connect(roles.on_login, dispatch_uid="billing-slurm-roles")

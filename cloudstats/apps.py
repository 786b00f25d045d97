from django.apps import AppConfig


class CloudstatsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "cloudstats"

    def ready(self) -> None:
        # Rule.PROJECT_MEMBER: members of the cloud project in the URL, from the site's membership source.
        from cloudstats.membership import is_member
        from userportal.access import Rule, register_member_check

        register_member_check(Rule.PROJECT_MEMBER, "project", is_member)

from django.apps import AppConfig


class JobstatsConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "jobstats"
    # userportal.powers: staff uploads through /api/jobscripts/ (service accounts need none); reading.
    staff_powers = {
        "jobscript-uploaders": ("Upload job scripts", ("jobstats.add_jobscript",)),
        "jobscript-readers": ("Read job scripts", ("jobstats.view_jobscript",)),
    }

    def warm_up(self) -> None:
        """At a server process's start (userportal.warmup): the statements of every user's first pages, compiled."""
        from django.conf import settings

        from jobstats import listing, queries

        for cluster in settings.SLURM_CLUSTERS:
            listing.prepare_user_page(str(cluster))
            queries.prepare_first_pages(str(cluster))

    def ready(self) -> None:
        from jobstats import (
            api_jobscripts_upload,
            checks,  # noqa: F401 - registers the site-data checks
            review,
            summary,
        )
        from userportal.jobreview import register_reviewer
        from userportal.summary import register_section
        from userportal.token_posts import register_token_post

        register_token_post("jobstats:jobscript-list", api_jobscripts_upload.upload)  # the uploader's hot path
        register_section(*summary.SECTIONS)  # the user summary's job sections
        register_reviewer(review.review)  # finished jobs with their page's figures and advice (outreach)

from __future__ import annotations

from django.apps import AppConfig
from django.db import models
from django.utils.translation import gettext_lazy as _


class SlurmConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "slurm"
    verbose_name = _("Slurm accounting")

    def get_model(self, model_name: str, require_ready: bool = True) -> type[models.Model]:
        """Also find per-cluster models not built yet in this process (``Job_narval``).

        Per-cluster classes exist once slurm.models.cluster_models() has run; Django looks
        models up by name when unpickling instances (cached querysets) and in contenttypes,
        possibly in a fresh process, so build them on demand here.
        """
        try:
            return super().get_model(model_name, require_ready)
        except LookupError:
            from slurm.models import cluster_model_by_name  # the models module imports this app's registry

            model = cluster_model_by_name(model_name)
            if model is None:
                raise
            return model

    def warm_up(self) -> None:
        """At a server process's start (userportal.warmup): the per-cluster models of every configured cluster."""
        from django.conf import settings

        from slurm.models import cluster_models

        for cluster in settings.SLURM_CLUSTERS:
            cluster_models(str(cluster))

    def ready(self) -> None:
        # userportal's access rules ask slurm who belongs to an account; userportal imports nothing of slurm.
        from slurm.visibility import is_account_member  # models need the app registry: import once it is ready
        from userportal.access import register_membership

        register_membership(is_account_member)

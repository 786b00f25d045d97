"""System checks for jobstats' site data: `manage.py check` names a bad GPU model file or advice rule."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks

from jobstats.domain.advice import RuleError, registry
from jobstats.domain.gpu_models import GpuModelsError, load_table


@checks.register()
def check_site_data(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    errors: list[checks.CheckMessage] = []
    try:
        load_table(getattr(settings, "JOBSTATS_GPU_MODELS_FILE", "") or "")
    except GpuModelsError as exc:
        errors.append(
            checks.Error(
                str(exc), hint="Fix JOBSTATS_GPU_MODELS_FILE; pages use the shipped table.", id="jobstats.E001"
            )
        )
    try:
        registry(list(settings.JOBSTATS_ADVICE_RULES), settings.JOBSTATS_ADVICE_DISABLED)
    except RuleError as exc:
        errors.append(
            checks.Error(str(exc), hint="Fix JOBSTATS_ADVICE_RULES; pages use the built-in rules.", id="jobstats.E002")
        )
    return errors

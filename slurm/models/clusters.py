"""The concrete per-cluster model classes, built on first use for a cluster in ``settings.SLURM_CLUSTERS``."""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from typing import Any, cast

from django.conf import settings
from django.db import models

from slurm.models.base import SlurmModel
from slurm.models.cluster_tables import Assoc, ClusterModel, ClusterModels, Event, Job, JobScript, Step
from slurm.models.global_tables import GLOBAL_MODELS

_CLUSTER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]*$")
_cache: dict[str, ClusterModels] = {}
_lock = threading.Lock()


def default_cluster() -> str:
    """The first cluster of ``settings.SLURM_CLUSTERS``, read at call time."""
    return str(settings.SLURM_CLUSTERS[0])


def cluster_models(cluster: str) -> ClusterModels:
    """The model classes for ``cluster``'s tables, built on first use and cached.

    The cluster must be in ``settings.SLURM_CLUSTERS`` (read on every call, so
    ``override_settings`` works and a cluster removed from the settings stops resolving).
    """
    clusters = [str(name) for name in settings.SLURM_CLUSTERS]
    if cluster not in clusters:
        raise ValueError(f"Unknown Slurm cluster {cluster!r}: SLURM_CLUSTERS is {clusters!r}.")
    found = _cache.get(cluster)
    if found is not None:
        return found
    with _lock:
        # Django refuses to register a model name twice, so build each cluster's classes once.
        found = _cache.get(cluster)
        if found is None:
            found = _build_cluster_models(cluster)
            _cache[cluster] = found
    return found


def _index_name(cluster: str, name: str) -> str:
    # Index names are global in SQLite and PostgreSQL and limited to 30 characters by Django's
    # checks: a short digest of the cluster keeps them unique and short.
    digest = hashlib.sha1(cluster.encode(), usedforsecurity=False).hexdigest()[:8]
    return f"{name}_{digest}"


def _concrete(base: type, cluster: str, table: str, meta: dict[str, Any]) -> type:
    # `base` is typed as a plain class: mypy refuses abstract models where type[Model] is expected.
    # The Meta options are explicit: a dynamically built class does not inherit an abstract
    # base's Meta unless it subclasses it, and the db_table must carry the cluster name.
    meta_class = type("Meta", (), {"managed": False, "app_label": "slurm", "db_table": f"{cluster}_{table}", **meta})
    attrs = {
        "__module__": "slurm.models",  # where callers import the models from
        "__qualname__": f"{base.__name__}_{cluster}",
        "Meta": meta_class,
        "cluster": cluster,
    }
    return type(f"{base.__name__}_{cluster}", (base,), attrs)


def _build_cluster_models(cluster: str) -> ClusterModels:
    if not _CLUSTER_NAME.match(cluster):
        raise ValueError(f"{cluster!r} is not a valid Slurm cluster name.")
    # The indexes and unique keys below are the 22.05 ones the portal relies on; they only
    # matter for tables that slurm.schema.create_tables() builds (the demo and the tests).
    job = _concrete(
        Job,
        cluster,
        "job_table",
        {
            "constraints": [
                models.UniqueConstraint(fields=["id_job", "time_submit"], name=_index_name(cluster, "job_id"))
            ],
            "indexes": [
                models.Index(fields=["id_assoc"], name=_index_name(cluster, "job_assoc")),
                models.Index(fields=["id_user", "time_start", "time_end"], name=_index_name(cluster, "job_sacct")),
                models.Index(fields=["time_end", "time_eligible"], name=_index_name(cluster, "job_rollup2")),
                models.Index(fields=["id_array_job"], name=_index_name(cluster, "job_array")),
                models.Index(fields=["time_submit", "time_end"], name=_index_name(cluster, "job_purge")),
            ],
        },
    )
    step = _concrete(
        Step,
        cluster,
        "step_table",
        {"indexes": [models.Index(fields=["time_start", "time_end"], name=_index_name(cluster, "step_time"))]},
    )
    assoc = _concrete(
        Assoc,
        cluster,
        "assoc_table",
        {
            "constraints": [
                models.UniqueConstraint(fields=["user", "acct", "partition"], name=_index_name(cluster, "assoc_udex"))
            ],
            "indexes": [models.Index(fields=["acct"], name=_index_name(cluster, "assoc_acct"))],
        },
    )
    event = _concrete(
        Event,
        cluster,
        "event_table",
        {"indexes": [models.Index(fields=["time_start", "time_end"], name=_index_name(cluster, "event_time"))]},
    )
    job_script = _concrete(JobScript, cluster, "job_script_table", {})
    found = ClusterModels(
        job=cast("type[Job]", job),
        step=cast("type[Step]", step),
        assoc=cast("type[Assoc]", assoc),
        event=cast("type[Event]", event),
        job_script=cast("type[JobScript]", job_script),
    )
    for model in found.all():
        model.cluster_classes = found
    return found


def cluster_model_by_name(model_name: str) -> type[ClusterModel] | None:
    """The per-cluster model named ``Job_<cluster>`` (any case), building it if needed; None if there is none."""
    base_name, sep, cluster = model_name.partition("_")
    bases = {"job": "job", "step": "step", "assoc": "assoc", "event": "event", "jobscript": "job_script"}
    if not sep or base_name.lower() not in bases:
        return None
    configured = {str(name).lower(): str(name) for name in settings.SLURM_CLUSTERS}
    if cluster.lower() not in configured:
        return None
    model: type[ClusterModel] = getattr(cluster_models(configured[cluster.lower()]), bases[base_name.lower()])
    return model


def models_for(clusters: Sequence[str] | None = None) -> list[type[SlurmModel]]:
    """The global models plus the per-cluster models of ``clusters`` (default: every configured cluster)."""
    names = list(settings.SLURM_CLUSTERS) if clusters is None else list(clusters)
    result: list[type[SlurmModel]] = list(GLOBAL_MODELS)
    for name in names:
        result.extend(cluster_models(name).all())
    return result

"""Read-only, unmanaged models of the Slurm accounting database (slurmdbd on MariaDB).

Only columns that every supported Slurm release (22.05 through 25.x) has are declared, so a
plain ``Job.objects.filter(...)`` never selects a column a newer slurmdbd dropped: TT's assoc
pages broke on 25.05 with "Unknown column lft" for exactly that reason (domain 1.18). Column
names and types follow the 22.05 DDL; tinytext columns are CharField(max_length=255) (a
tinytext holds at most 255 bytes), which also lets the demo schema index them on MariaDB.

Global tables have fixed names (``qos_table`` ...). Per-cluster tables are named after the
cluster (``<cluster>_job_table``), so their model classes are built on first use by
:func:`cluster_models` for a cluster in ``settings.SLURM_CLUSTERS``, read at call time.

Writes raise :class:`slurm.router.ReadOnlySlurmDatabase` outside ``allow_writes()``: through
the router for everything Django routes, and again in ``save()``, ``delete()`` and the
queryset's write methods for code that names the database with ``using=``.

Notes for callers:

* ``Job``, ``Step``, ``Assoc``, ``Event`` and ``JobScript`` are abstract: use them in type
  hints, and ``cluster_models(cluster).job`` (etc.) for queries. Each concrete class has its
  own ``DoesNotExist``; catch ``django.core.exceptions.ObjectDoesNotExist`` (or use
  ``get_object_or_404``) in code that serves several clusters.
* The step and event tables have composite primary keys and use Django 5.2's
  ``CompositePrimaryKey`` (``step.pk == (job_db_inx, id_step, step_het_comp)``). Reads,
  ``pk``/``pk__in`` lookups and the demo's inserts work with it on SQLite, PostgreSQL and
  MySQL/MariaDB (row-value comparisons); nothing here needs what it lacks (foreign keys to
  these tables, the admin).

The package's modules: ``base`` (SlurmModel and its write-refusing queryset), ``global_tables``,
``cluster_tables`` (the abstract per-cluster models) and ``clusters`` (their concrete classes).
Import the models from ``slurm.models``, where Django finds them.
"""

from slurm.models.base import SlurmManager, SlurmModel, SlurmQuerySet
from slurm.models.cluster_tables import Assoc, ClusterModel, ClusterModels, Event, Job, JobScript, Step
from slurm.models.clusters import cluster_model_by_name, cluster_models, default_cluster, models_for
from slurm.models.global_tables import GLOBAL_MODELS, Account, AdminLevel, Qos, SlurmUser, Tres

__all__ = [
    "GLOBAL_MODELS",
    "Account",
    "AdminLevel",
    "Assoc",
    "ClusterModel",
    "ClusterModels",
    "Event",
    "Job",
    "JobScript",
    "Qos",
    "SlurmManager",
    "SlurmModel",
    "SlurmQuerySet",
    "SlurmUser",
    "Step",
    "Tres",
    "cluster_model_by_name",
    "cluster_models",
    "default_cluster",
    "models_for",
]

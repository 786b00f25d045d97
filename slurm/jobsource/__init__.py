"""One interface to finished jobs, with four backends tried in a configured order.

Every backend answers a :class:`~slurm.jobsource.frame.JobQuery` with the same pandas DataFrame
(:data:`~slurm.jobsource.frame.COLUMNS`), so billing and efficiency code never knows where the
rows came from. The modules:

* ``frame``: the query, the frame's columns and types, the errors, the TRES normalisation;
* ``database``: the Slurm accounting database through the read-only models, read *packed* on
  MariaDB (``expressions``: the GROUP_CONCAT/CONCAT_WS SQL; ``packed``: their parsing);
* ``slurmrestd``: ``/slurmdb/<version>/jobs`` with the JWT headers (domain 3);
* ``sacct``: ``sacct --parsable2`` through :mod:`slurm.commands` (domain 2.1);
* ``csvfile``: a file with sacct's column names, the seed's last resort;
* ``cascade``: :func:`~slurm.jobsource.cascade.fetch_jobs`, the backends in ``settings.BILLING_SOURCES`` order.

This package is part of the source app: it imports nothing from feature apps.
"""

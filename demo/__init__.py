"""The demo data generator: a synthetic Slurm cluster for ``make run`` (``manage.py seed_demo``).

Installed only when PORTAL_DEBUG is true (and in the test settings): production has no demo
command. A leaf like a feature app: it imports slurm/ and userportal/, and nothing imports it.
"""

"""The portal's feature modules, for the navigation bar and the home page."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.utils.functional import Promise
from django.utils.translation import gettext_lazy as _


@dataclass(frozen=True)
class Module:
    name: str
    title: str | Promise
    description: str | Promise
    url_name: str
    icon: str
    staff_only: bool = False


MODULES = [
    Module(
        "jobstats",
        _("Jobs"),
        _("Your running and past jobs, their efficiency and their graphs."),
        "jobstats:index",
        "bi-cpu",
    ),
    Module(
        "accountstats", _("Accounts"), _("Use of the Slurm accounts you belong to."), "accountstats:index", "bi-people"
    ),
    Module(
        "quotas",
        _("Storage"),
        _("Your storage quotas and who uses your group's space."),
        "quotas:index",
        "bi-hdd-stack",
    ),
    Module(
        "priorities",
        _("GPU priority"),
        _("Request temporary priority on GPUs."),
        "priorities:index",
        "bi-lightning-charge",
    ),
    Module("billing", _("Billing"), _("Costs of your jobs, receipts and payments."), "billing:index", "bi-receipt"),
    Module("jobqueue", _("GPU job queue"), _("Submit Python jobs to the GPU nodes."), "jobqueue:index", "bi-list-task"),
    Module(
        "cloudstats",
        _("Cloud"),
        _("Your OpenStack projects' virtual machines: their use, graphs and idle instances."),
        "cloudstats:index",
        "bi-cloud",
    ),
    Module(
        "top",
        _("Top users"),
        _("Who uses the most, and who wastes the most."),
        "top:index",
        "bi-bar-chart",
        staff_only=True,
    ),
    Module(
        "nodes",
        _("Nodes"),
        _("Every node's state, use, events, jobs and graphs."),
        "nodes:index",
        "bi-hdd-rack",
        staff_only=True,
    ),
    Module(
        "scheduler",
        _("Scheduler"),
        _("Waits, run times, time-outs and fair share by partition."),
        "scheduler:index",
        "bi-hourglass-split",
        staff_only=True,
    ),
    Module(
        "extensions",
        _("Time extensions"),
        _("Ask for more time for a pending or running job; staff decide."),
        "extensions:index",
        "bi-clock-history",
    ),
    Module(
        "usersummary",
        _("Summary"),
        _("Everything about one user at a glance: accounts, jobs, storage, priorities, billing."),
        "usersummary:index",
        "bi-person-vcard",
    ),
    Module(
        "notes",
        _("Notes"),
        _("Staff notes on users, accounts and jobs."),
        "notes:index",
        "bi-sticky",
        staff_only=True,
    ),
    Module(
        "search",
        _("Search"),
        _("Find users, accounts, jobs, notes and tickets."),
        "search:index",
        "bi-search",
        staff_only=True,
    ),
    Module(
        "pages",
        _("Cluster status"),
        _("The cluster's load, filesystems, login nodes and software in use: public, no sign-in."),
        "pages:index",
        "bi-activity",
    ),
    Module(
        "outreach",
        _("Efficiency reports"),
        _("The reports mailed to you about jobs that held resources they did not use, and which you get."),
        "outreach:preferences",
        "bi-envelope",
    ),
]


def enabled_modules() -> list[Module]:
    enabled = set(settings.PORTAL_MODULES)
    return [module for module in MODULES if module.name in enabled]

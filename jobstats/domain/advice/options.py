"""Built-in rules on the submit line and #SBATCH directives: dependencies, node choices, requeue, reservations."""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

from jobstats.domain.advice.facts import AdviceRule, Severity

RULES: tuple[AdviceRule, ...] = (
    AdviceRule(
        "singleton",
        Severity.INFO,
        _("The job waits for the user's other jobs of the same name (--dependency=singleton)."),
        "dependencies",
        lambda f: f.singleton,
    ),
    AdviceRule(
        "depends-on-jobs",
        Severity.INFO,
        _("The job depends on other jobs; it can only start once they allow it."),
        "dependencies",
        lambda f: bool(f.dependencies),
    ),
    AdviceRule(
        "has-dependents",
        Severity.INFO,
        _("Other jobs of yours wait for this one."),
        "dependencies",
        lambda f: bool(f.dependents),
    ),
    AdviceRule(
        "exclusive",
        Severity.INFO,
        _("The job asked for whole nodes (--exclusive): it waits longer, and is charged for every core of its nodes."),
        "exclusive",
        lambda f: f.exclusive,
    ),
    AdviceRule(
        "licenses",
        Severity.INFO,
        _("The job asked for licences ({licenses}); it waits until they are free."),
        "licenses",
        lambda f: bool(f.licenses),
    ),
    AdviceRule(
        "nodelist",
        Severity.INFO,
        _("The job asked for specific nodes ({requested_nodelist}); it can only run there."),
        "nodelist",
        lambda f: bool(f.requested_nodelist),
    ),
    AdviceRule(
        "excluded-nodes",
        Severity.WARNING,
        _(
            "The job excluded nodes ({excluded_nodes}). If a node misbehaves, tell us instead: excluding nodes makes jobs wait longer."
        ),
        "exclude",
        lambda f: bool(f.excluded_nodes),
    ),
    AdviceRule(
        "requeue",
        Severity.INFO,
        _("The job may be requeued (--requeue): make sure it can restart from the beginning or a checkpoint."),
        "requeue",
        lambda f: f.requeue,
    ),
    AdviceRule(
        "no-requeue",
        Severity.INFO,
        _("The job may not be requeued (--no-requeue): after a node failure it ends instead of starting again."),
        "requeue",
        lambda f: f.no_requeue,
    ),
    AdviceRule(
        "reservation",
        Severity.INFO,
        _("The job ran in the reservation {reservation}."),
        "reservations",
        lambda f: bool(f.reservation),
    ),
    AdviceRule(
        "switches",
        Severity.INFO,
        _("The job asked for a maximum number of network switches ({switches}); it may wait longer for such nodes."),
        "switches",
        lambda f: bool(f.switches),
    ),
)

"""Errors shared by the portal's data sources, and the 400 for malformed input.

Every client of an external system (Prometheus, the Slurm database, slurmrestd, sacct, Robinhood)
raises a subclass of DataSourceError when the system is down or answers nonsense. Pages catch it
and render a notice; the API's exception handler turns it into a JSON 503 (or 502).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from django.core.exceptions import BadRequest
from django.utils.translation import gettext_lazy as _


class InvalidInput(BadRequest):
    """Input a page or a JSON endpoint refuses: a 400 naming each field and what is wrong with it
    (userportal.views.bad_request renders it as a page or as JSON)."""

    def __init__(self, errors: Mapping[str, Sequence[Any]], labels: Mapping[str, Any] | None = None) -> None:
        self.errors = {name: [str(message) for message in messages] for name, messages in errors.items()}
        self.labels = {name: str((labels or {}).get(name) or name) for name in self.errors}
        super().__init__("; ".join(f"{name}: {' '.join(m)}" for name, m in self.errors.items()))


class DataSourceError(Exception):
    """A data source did not answer, or answered something unusable."""

    source = "data source"
    status_code = 503
    user_message = _("A data source is not answering. Try again in a few minutes.")


class PrometheusUnavailable(DataSourceError):
    source = "prometheus"
    user_message = _("Live metrics are unavailable right now: Prometheus is not answering.")


class PrometheusBadResponse(PrometheusUnavailable):
    status_code = 502
    user_message = _("Prometheus returned an answer the portal could not read.")


class SlurmDatabaseUnavailable(DataSourceError):
    source = "slurmdb"
    user_message = _("The Slurm accounting database is not answering. Job data cannot be shown right now.")


def as_data_source_error(exc: BaseException) -> DataSourceError | None:
    """The DataSourceError behind `exc`, or None when it is a genuine bug.

    Only a connection-level error (OperationalError, InterfaceError) is an outage, and it is blamed
    on the Slurm database when the portal's own database still answers: Django's wrapped driver
    errors do not say which connection failed. Integrity errors, a write refused by the Slurm
    router and the like are bugs, not outages.
    """
    from django.db import DatabaseError, InterfaceError, OperationalError, connections

    if isinstance(exc, DataSourceError):
        return exc
    if not isinstance(exc, OperationalError | InterfaceError):
        return None
    try:
        with connections["default"].cursor() as cursor:
            cursor.execute("SELECT 1")
    except DatabaseError:
        return None
    return SlurmDatabaseUnavailable(str(exc))

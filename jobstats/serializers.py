"""Serializers of the jobs API: the query (validated, bounded) and the job records it answers."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Any

from django.utils.translation import gettext_lazy as _
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from jobstats import queries
from jobstats.pagination import MAX_PAGE
from slurm.decoders import ISO_UTC, STATE_FILTER_CHOICES, epoch_to_datetime, epoch_to_iso

NAME = r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$"


@extend_schema_field(OpenApiTypes.STR)
class MomentField(serializers.Field):
    """Epoch seconds, an ISO-8601 date (UTC midnight) or an ISO-8601 date-time (UTC if no zone)."""

    default_error_messages = {"invalid": _("Use epoch seconds, YYYY-MM-DD or an ISO-8601 date-time.")}

    def to_internal_value(self, data: Any) -> int:
        text = str(data).strip()
        try:
            if text.isdigit():
                value = int(text)
            elif len(text) == 10:
                day = date.fromisoformat(text)
                value = int(datetime(day.year, day.month, day.day, tzinfo=UTC).timestamp())
            else:
                moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
                if moment.tzinfo is None:
                    moment = moment.replace(tzinfo=UTC)
                value = int(moment.timestamp())
        except (ValueError, OverflowError):
            self.fail("invalid")
        if not 0 <= value < 253402300800:
            self.fail("invalid")
        return value

    def to_representation(self, value: Any) -> Any:
        return value


class JobQuerySerializer(serializers.Serializer):
    """The jobs API's query string. DataTables' bracketed names are read by the view and mapped here."""

    format = serializers.ChoiceField(
        choices=["json", "datatables"],
        required=False,
        help_text=_("datatables: DataTables' server-side envelope; json (default): a paginated list."),
    )
    draw = serializers.IntegerField(
        min_value=0, required=False, help_text=_("DataTables' request counter, echoed back.")
    )
    start = serializers.IntegerField(
        min_value=0, max_value=10**9, required=False, help_text=_("DataTables: offset of the first row.")
    )
    length = serializers.IntegerField(
        min_value=1, max_value=MAX_PAGE, required=False, help_text=_("DataTables: rows per page (at most 1000).")
    )
    offset = serializers.IntegerField(
        min_value=0, max_value=10**9, required=False, help_text=_("json: offset of the first row.")
    )
    limit = serializers.IntegerField(
        min_value=1, max_value=MAX_PAGE, required=False, help_text=_("json: rows per page (at most 1000, default 100).")
    )
    username = serializers.RegexField(
        NAME,
        required=False,
        help_text=_("Jobs of this user (staff; others may only name themselves, other names are ignored)."),
    )
    account = serializers.RegexField(
        NAME,
        required=False,
        help_text=_("Jobs of this Slurm account: members see every user's jobs in it, staff any account."),
    )
    state = serializers.CharField(
        required=False,
        max_length=400,
        help_text=_("Comma-separated state names or labels, e.g. RUNNING,OUT_OF_MEMORY."),
    )
    status = serializers.CharField(
        required=False,
        max_length=400,
        help_text=_("TrailblazingTurtle's name for state (labels such as Running, Oom)."),
    )
    partition = serializers.CharField(required=False, max_length=400, help_text=_("Comma-separated partition names."))
    submitted_after = MomentField(required=False, help_text=_("Submitted at or after (epoch, date or date-time, UTC)."))
    submitted_before = MomentField(required=False, help_text=_("Submitted before."))
    ended_after = MomentField(required=False, help_text=_("Ended at or after."))
    ended_before = MomentField(required=False, help_text=_("Ended before."))
    search = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text=_("Text in the name, partition or account, or a job id (DataTables: search[value])."),
    )
    ordering = serializers.CharField(
        required=False,
        max_length=200,
        help_text=_(
            "Comma-separated columns, '-' for descending, e.g. -time_start (DataTables: order[i][column] and order[i][dir])."
        ),
    )

    def _names(self, value: str) -> tuple[str, ...]:
        return tuple(part.strip() for part in value.split(",") if part.strip())

    def validate_partition(self, value: str) -> tuple[str, ...]:
        names = self._names(value)
        bad = [name for name in names if not re.fullmatch(NAME, name)]
        if bad:
            raise serializers.ValidationError(_("Not a partition name: %(name)s") % {"name": bad[0]})
        return names

    def _states(self, value: str) -> tuple[str, ...]:
        states = []
        for part in self._names(value):
            try:
                states.append(queries.resolve_state(part))
            except ValueError:
                choices = ", ".join(name for name, _label in STATE_FILTER_CHOICES)
                raise serializers.ValidationError(
                    _("Unknown state %(state)s; use one of %(choices)s.") % {"state": part, "choices": choices}
                ) from None
        return tuple(states)

    def validate_state(self, value: str) -> tuple[str, ...]:
        return self._states(value)

    def validate_status(self, value: str) -> tuple[str, ...]:
        return self._states(value)

    def validate_ordering(self, value: str) -> tuple[str, ...]:
        order = []
        for part in self._names(value)[:3]:
            name = part.lstrip("-")
            if name not in queries.ORDERABLE:
                raise serializers.ValidationError(
                    _("Cannot sort by %(name)s; sortable: %(names)s.")
                    % {"name": name, "names": ", ".join(sorted(queries.ORDERABLE))}
                )
            order.append(("-" if part.startswith("-") else "") + queries.ORDERABLE[name])
        return tuple(order)

    def to_query(self) -> queries.JobListQuery:
        data = self.validated_data
        order = tuple(data.get("ordering") or ())
        if order:
            order = (*order, "-job_db_inx")
        return queries.JobListQuery(
            username=data.get("username"),
            account=data.get("account"),
            states=tuple(data.get("state") or ()) + tuple(data.get("status") or ()),
            partitions=tuple(data.get("partition") or ()),
            submitted_after=data.get("submitted_after"),
            submitted_before=data.get("submitted_before"),
            ended_after=data.get("ended_after"),
            ended_before=data.get("ended_before"),
            search=(data.get("search") or "").strip(),
            order=order,
        )


class BlankCharField(serializers.CharField):
    """Text the job table may hold as NULL, answered as "" (as TT's rows)."""

    def get_attribute(self, instance: Any) -> Any:
        return super().get_attribute(instance) or ""


class EpochTimeField(serializers.DateTimeField):
    """Slurm's epoch seconds as ISO-8601 UTC (``2026-03-01T12:00:00Z``); 0 (not yet) is null."""

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(format=ISO_UTC, default_timezone=UTC, allow_null=True, **kwargs)

    def get_attribute(self, instance: Any) -> Any:
        epoch: Any = super().get_attribute(instance)
        return epoch_to_datetime(epoch)


class JobRecordSerializer(serializers.Serializer):
    """One job record (TT's row keys, plus job_db_inx, display_id, partition and state)."""

    # Reads job model instances given their ``username`` (jobstats.queries.with_username).

    job_db_inx = serializers.IntegerField(help_text=_("The record's key (a job id can have several records)."))
    id_job = serializers.IntegerField()
    display_id = serializers.CharField(help_text=_("As sacct prints it: 1234, 1234_7, 1240+1."))
    job_name = BlankCharField()
    account = BlankCharField()
    partition = BlankCharField()
    time_submit = EpochTimeField()
    time_eligible = EpochTimeField()
    time_start = EpochTimeField()
    time_end = EpochTimeField()
    timelimit = serializers.IntegerField(
        source="timelimit_minutes", allow_null=True, help_text=_("Minutes; null when unlimited or not recorded.")
    )
    state = serializers.CharField(source="state_info.name", help_text=_("The state name, e.g. OUT_OF_MEMORY."))
    get_state_display = serializers.CharField(
        source="state_info.label", help_text=_("The state's label in the request's language.")
    )
    nodes = serializers.ListField(child=serializers.CharField())
    username = BlankCharField()

    def to_representation(self, instance: Any) -> dict[str, Any]:
        """The fields above, built directly (a page of 1,000 rows goes through here).

        DRF's generic path (a get_attribute and a to_representation per field and row) was
        the largest part of a page's time; tests compare both on every kind of record.
        """
        state = instance.state_info
        labels = self.__dict__.setdefault("_labels", {})  # by raw state: a page's rows share this (many=True's child)
        label = labels.get(instance.state)
        if label is None:
            label = labels[instance.state] = str(state.label)
        return {
            "job_db_inx": instance.job_db_inx,
            "id_job": instance.id_job,
            "display_id": instance.display_id,
            "job_name": instance.job_name or "",
            "account": instance.account or "",
            "partition": instance.partition or "",
            "time_submit": epoch_to_iso(instance.time_submit),
            "time_eligible": epoch_to_iso(instance.time_eligible),
            "time_start": epoch_to_iso(instance.time_start),
            "time_end": epoch_to_iso(instance.time_end),
            "timelimit": instance.timelimit_minutes,
            "state": state.name,
            "get_state_display": label,
            "nodes": [str(node) for node in instance.nodes],
            "username": getattr(instance, "username", None) or "",
        }

"""The SQL expressions of the database source's reads: a job's values, packed or one per column.

A packed read returns a chunk of jobs as a few strings: ``GroupConcat`` of the rows, each row
``Joined`` from its values with a constant separator. The separators are written into the SQL
text, so only the constants below are accepted.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from django.db import NotSupportedError
from django.db.models import Aggregate, BigIntegerField, Case, F, Func, TextField, Value, When
from django.db.models.functions import Cast, Coalesce

#: A job's integer columns, in this order (``run_seconds`` is computed in SQL), and its texts in
#: two strings per row: each pair has few distinct values (hundreds or thousands, not one per
#: job, as the four together nearly have), each parsed once.
INT_FIELDS = ("job_db_inx", "id_job", "time_submit", "id_assoc", "state", "time_end", "run_seconds")
TEXT_GROUPS = (("account", "partition"), ("tres_req", "tres_alloc"))
VALUE_SEPARATOR = ","
TEXT_SEPARATOR = "\t"
ROW_SEPARATOR = "\n"
_SEPARATORS = frozenset((VALUE_SEPARATOR, TEXT_SEPARATOR, ROW_SEPARATOR))


def _separator(separator: str) -> str:
    if separator not in _SEPARATORS:  # it is written into the SQL text: constants only
        raise ValueError(f"unsupported separator {separator!r}")
    return separator


class Joined(Func):
    """Values joined by a constant separator in one string: ``CONCAT_WS`` (``||`` on SQLite).

    No argument may be NULL (CONCAT_WS skips NULLs, ``||`` makes the whole NULL): coalesce texts.
    """

    output_field = TextField()

    def __init__(self, *expressions: Any, separator: str) -> None:
        super().__init__(*expressions, output_field=TextField())
        self.separator = _separator(separator)

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> Any:
        template = f"CONCAT_WS('{self.separator}', %(expressions)s)"
        return super().as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        joiner = f" || '{self.separator}' || "
        return super().as_sql(compiler, connection, template="(%(expressions)s)", arg_joiner=joiner, **extra_context)


class GroupConcat(Aggregate):
    """The rows' values in one string, in the order the rows are read (MariaDB/MySQL and SQLite).

    Several GroupConcat of one query see the same rows in the same order. MariaDB cuts the
    result at ``group_concat_max_len`` (at most max_allowed_packet) with warning 1260.
    """

    function = "GROUP_CONCAT"
    output_field = TextField()

    def __init__(self, expression: Any, separator: str) -> None:
        super().__init__(expression, output_field=TextField())
        self.separator = _separator(separator)

    def as_sql(
        self,
        compiler: Any,
        connection: Any,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> Any:
        raise NotSupportedError(f"GROUP_CONCAT is not available on {connection.vendor}")

    def as_mysql(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = f"%(function)s(%(distinct)s%(expressions)s SEPARATOR '{self.separator}')"
        return super().as_sql(compiler, connection, template=template, **extra_context)

    def as_sqlite(self, compiler: Any, connection: Any, **extra_context: Any) -> Any:
        template = f"%(function)s(%(distinct)s%(expressions)s, '{self.separator}')"
        return super().as_sql(compiler, connection, template=template, **extra_context)


def run_seconds() -> Any:
    big = BigIntegerField()
    return Case(
        When(time_start__gt=0, then=Cast("time_end", big) - Cast("time_start", big) - Cast("time_suspended", big)),
        default=Value(0),
        output_field=big,
    )


def int_values() -> list[Any]:
    return [*(F(name) for name in INT_FIELDS[:-1]), run_seconds()]


def joined_texts(model: Any, group: Sequence[str]) -> Joined:
    """A group's texts joined; NULL only where the schema allows it (``account``) reads as ""."""
    values = [
        Coalesce(name, Value(""), output_field=TextField()) if model._meta.get_field(name).null else F(name)
        for name in group
    ]
    return Joined(*values, separator=TEXT_SEPARATOR)


def step_values() -> list[Any]:
    return [F("job_db_inx"), F("user_sec") + F("sys_sec"), F("user_usec") + F("sys_usec")]


#: The row path's text columns (each on its own: values may hold any character).
ROW_TEXTS = tuple(f"text_{name}" for group in TEXT_GROUPS for name in group)


def job_values(jobs: Any) -> Any:
    texts = {
        f"text_{name}": Coalesce(name, Value(""), output_field=TextField()) for group in TEXT_GROUPS for name in group
    }
    return jobs.annotate(run_seconds=run_seconds(), **texts).values_list(*INT_FIELDS, *ROW_TEXTS)

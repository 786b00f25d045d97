"""Model fields for slurmdbd's unsigned MySQL columns, portable to SQLite and PostgreSQL.

slurmdbd declares many columns ``bigint unsigned`` (times, ``mem_req``, hash indexes) and
``int unsigned`` (job ids, ``NO_VAL``/``INFINITE`` sentinels). MariaDB stores them natively.
The demo database and the test suite use SQLite (or PostgreSQL), whose integers are signed
64-bit, so:

* ``UnsignedBigIntegerField`` maps values >= 2**63 to their two's complement (negative) on the
  way in and back on the way out. That keeps ``mem_req`` with the ``MEM_PER_CPU`` bit
  (2**63 + n) and ``NO_VAL64`` intact. Equality and ``IN`` work on every backend; ordering
  comparisons across the 2**63 boundary only make sense on MySQL/MariaDB.
* ``UnsignedIntegerField`` is a 64-bit integer outside MySQL, so 4294967294 (``NO_VAL``) fits
  in PostgreSQL, whose ``integer`` is signed 32-bit.
* ``BlobTextField`` reads the ``blob`` columns (``assoc_table.qos``, ``delta_qos``) as text:
  mysqlclient returns ``bytes`` for them.
"""

from __future__ import annotations

from typing import Any

from django.db import models
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import lookups
from django.db.models.expressions import Expression

TWO_64 = 2**64
TWO_63 = 2**63


def to_signed64(value: int) -> int:
    """Two's complement of an unsigned 64-bit value, as SQLite and PostgreSQL store it."""
    return value - TWO_64 if value >= TWO_63 else value


def to_unsigned64(value: int) -> int:
    return value + TWO_64 if value < 0 else value


class UnsignedBigIntegerField(models.BigIntegerField):
    """A MySQL ``bigint unsigned`` column; two's complement on backends without unsigned types."""

    description = "Unsigned 64-bit integer"

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        if connection.vendor == "mysql":
            return "bigint UNSIGNED"
        return super().db_type(connection)

    def get_db_prep_value(self, value: Any, connection: BaseDatabaseWrapper, prepared: bool = False) -> Any:
        value = super().get_db_prep_value(value, connection, prepared)
        if isinstance(value, int) and connection.vendor != "mysql":
            return to_signed64(value)
        return value

    def from_db_value(self, value: Any, expression: Expression, connection: BaseDatabaseWrapper) -> Any:
        # MySQL hands back unsigned values already; a negative can only be our own encoding.
        if isinstance(value, int):
            return to_unsigned64(value)
        return value


# IntegerField's lookups raise EmptyResultSet for values outside the signed 64-bit range, which
# would make `mem_req=2**63 + 500` match nothing on MySQL. These plain lookups skip that check;
# get_db_prep_value above takes care of the encoding.
@UnsignedBigIntegerField.register_lookup
class UnsignedExact(lookups.Exact):
    pass


@UnsignedBigIntegerField.register_lookup
class UnsignedGreaterThan(lookups.GreaterThan):
    pass


@UnsignedBigIntegerField.register_lookup
class UnsignedGreaterThanOrEqual(lookups.GreaterThanOrEqual):
    pass


@UnsignedBigIntegerField.register_lookup
class UnsignedLessThan(lookups.LessThan):
    pass


@UnsignedBigIntegerField.register_lookup
class UnsignedLessThanOrEqual(lookups.LessThanOrEqual):
    pass


class UnsignedIntegerField(models.BigIntegerField):
    """A MySQL ``int unsigned`` column (0 .. 4294967295), stored as ``bigint`` elsewhere."""

    description = "Unsigned 32-bit integer"

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        if connection.vendor == "mysql":
            return "integer UNSIGNED"
        return super().db_type(connection)


class BlobTextField(models.TextField):
    """A MySQL ``blob`` column holding ASCII text, read as ``str`` on every backend."""

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        if connection.vendor == "mysql":
            return "blob"
        return super().db_type(connection)

    def from_db_value(self, value: Any, expression: Expression, connection: BaseDatabaseWrapper) -> Any:
        if isinstance(value, bytes | bytearray | memoryview):
            return bytes(value).decode("utf-8", errors="replace")
        return value

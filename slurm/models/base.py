"""The base of every slurm model: unmanaged, in the ``slurm`` app, writes only inside ``allow_writes()``.

Writes raise :class:`slurm.router.ReadOnlySlurmDatabase` outside ``allow_writes()``: through
the router for everything Django routes, and again in ``save()``, ``delete()`` and the
queryset's write methods for code that names the database with ``using=``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, TypeVar

from django.db import models

from slurm.router import check_writes_allowed

_M = TypeVar("_M", bound=models.Model)


class SlurmQuerySet(models.QuerySet[_M]):
    """A queryset whose write methods refuse to run outside ``allow_writes()``.

    The router already refuses writes it is asked about, but ``.using("slurm")`` skips the
    router, so each write method checks again.
    """

    def update(self, **kwargs: Any) -> int:
        check_writes_allowed("QuerySet.update()")
        return super().update(**kwargs)

    def delete(self) -> tuple[int, dict[str, int]]:
        check_writes_allowed("QuerySet.delete()")
        return super().delete()

    def create(self, **kwargs: Any) -> _M:
        check_writes_allowed("QuerySet.create()")
        return super().create(**kwargs)

    def bulk_create(self, objs: Iterable[_M], *args: Any, **kwargs: Any) -> list[_M]:
        check_writes_allowed("QuerySet.bulk_create()")
        return super().bulk_create(objs, *args, **kwargs)

    def bulk_update(self, objs: Iterable[_M], fields: Iterable[str], batch_size: int | None = None) -> int:
        check_writes_allowed("QuerySet.bulk_update()")
        return super().bulk_update(objs, fields, batch_size=batch_size)

    def get_or_create(self, defaults: Any = None, **kwargs: Any) -> tuple[_M, bool]:
        check_writes_allowed("QuerySet.get_or_create()")
        return super().get_or_create(defaults=defaults, **kwargs)

    def update_or_create(self, defaults: Any = None, create_defaults: Any = None, **kwargs: Any) -> tuple[_M, bool]:
        check_writes_allowed("QuerySet.update_or_create()")
        return super().update_or_create(defaults=defaults, create_defaults=create_defaults, **kwargs)


SlurmManager = models.Manager.from_queryset(SlurmQuerySet)


class SlurmModel(models.Model):
    """Base of every slurm model: unmanaged, in the ``slurm`` app, writes only inside allow_writes()."""

    objects = SlurmManager()

    class Meta:
        abstract = True
        managed = False
        app_label = "slurm"

    def save(self, *args: Any, **kwargs: Any) -> None:
        check_writes_allowed(f"{type(self).__name__}.save()")
        super().save(*args, **kwargs)

    def delete(self, *args: Any, **kwargs: Any) -> tuple[int, dict[str, int]]:
        check_writes_allowed(f"{type(self).__name__}.delete()")
        return super().delete(*args, **kwargs)


def tinytext(**kwargs: Any) -> models.CharField[Any, Any]:
    return models.CharField(max_length=255, **kwargs)

"""factory_boy factories for the portal's own models (Slurm rows come from slurm_factories)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import factory
from django.contrib.auth import get_user_model

from billing.models import Receipt


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = get_user_model()
        django_get_or_create = ("username",)
        skip_postgeneration_save = True

    username = factory.Sequence(lambda n: f"user{n}")
    email = factory.LazyAttribute(lambda user: f"{user.username}@example.org")
    password = factory.PostGenerationMethodCall("set_password", "pw")
    is_staff = False

    @factory.post_generation
    def saved(self, create: bool, extracted: object, **kwargs: object) -> None:
        if create:
            self.save()


class StaffFactory(UserFactory):
    is_staff = True


def sample_receipt(username: str, *, cluster: str = "testcluster", total: str = "12.50") -> Receipt:
    """A pending receipt of ``username`` with no items."""
    start = datetime(2026, 1, 1, tzinfo=UTC)
    return Receipt.objects.create(
        username=username,
        cluster=cluster,
        currency="THB",
        total=Decimal(total),
        job_count=0,
        period_start=start,
        period_end=datetime(2026, 1, 31, tzinfo=UTC),
        created_by=username,
    )

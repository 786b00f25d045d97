"""quotas fixtures: ACCT_STAT in the test copy of the robinhood database, and a row factory."""

from __future__ import annotations

import pytest

from quotas.demo import create_table, row
from quotas.router import allow_writes


@pytest.fixture(scope="session")
def django_db_setup(django_db_setup, django_db_blocker):
    with django_db_blocker.unblock():
        create_table("robinhood")


class Robinhood:
    def add(self, uid, gid, status="", *, size=0, count=0, blocks=None, type_="file"):
        with allow_writes():
            item = row(uid, gid, type_, status, size=size, count=count, blocks=blocks)
            item.save(using="robinhood", force_insert=True)
        return item


@pytest.fixture
def robinhood(db):
    return Robinhood()

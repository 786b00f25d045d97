"""Deterministic demo rows for Robinhood's ACCT_STAT (manage.py seed_robinhood, tests).

Each (user, group) pair gets files and directories with no HSM status (project space), and one
group in three also gets nearline rows: archived copies on disk (synchro, modified) and released
files on tape (0 blocks, only their size). Sizes follow a log-uniform spread, as real groups do.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator

from django.db import connections

from quotas.models import BLOCK_BYTES, AcctStat
from quotas.router import ROBINHOOD_DB_ALIAS, allow_writes

GIB = 1024**3


def create_table(using: str = ROBINHOOD_DB_ALIAS) -> bool:
    """Create ACCT_STAT on ``using`` if it is missing (demo and tests only). True when created."""
    connection = connections[using]
    if AcctStat._meta.db_table in connection.introspection.table_names():
        return False
    with allow_writes(), connection.schema_editor() as editor:
        editor.create_model(AcctStat)
    return True


def row(uid: str, gid: str, type_: str, status: str, *, size: int, count: int, blocks: int | None = None) -> AcctStat:
    if blocks is None:
        blocks = 0 if status == "released" else -(-size // BLOCK_BYTES)
    return AcctStat(uid=uid, gid=gid, type=type_, lhsm_status=status, size=size, blocks=blocks, count=count,
                    sz32K=count // 2, sz1M=count // 4, sz1G=count // 100)  # fmt: skip


def demo_rows(pairs: Iterable[tuple[str, str]], *, seed: int = 1) -> Iterator[AcctStat]:
    rng = random.Random(seed)  # noqa: S311 - demo data, not cryptography
    groups_nearline: dict[str, bool] = {}
    for user, group in sorted(set(pairs)):
        if user == "root":
            continue  # Slurm's root/root association: root's own rows come once per group below
        nearline = groups_nearline.setdefault(group, rng.random() < 0.35)
        files = int(10 ** rng.uniform(1.5, 5.2))
        size = int(10 ** rng.uniform(8.0, 12.3))
        yield row(user, group, "file", "", size=size, count=files)
        yield row(user, group, "dir", "", size=4096 * max(files // 40, 1), count=max(files // 40, 1))
        if rng.random() < 0.3:
            yield row(user, group, "symlink", "", size=64 * 12, count=12)
        if nearline:
            archived = int(10 ** rng.uniform(9.0, 12.0))
            yield row(user, group, "file", "synchro", size=archived, count=max(files // 10, 1))
            yield row(user, group, "file", "released", size=archived * 3, count=max(files // 5, 1))
            if rng.random() < 0.5:
                yield row(user, group, "file", "modified", size=archived // 8, count=max(files // 50, 1))
    for group in sorted(groups_nearline):
        yield row("root", group, "dir", "", size=4096, count=1)


def seed(pairs: Iterable[tuple[str, str]], *, seed: int = 1, using: str = ROBINHOOD_DB_ALIAS) -> int:
    """Replace every ACCT_STAT row with the demo rows for ``pairs``: the same input gives the same rows."""
    create_table(using)
    rows = list(demo_rows(pairs, seed=seed))
    with allow_writes():
        AcctStat.objects.using(using).all().delete()
        AcctStat.objects.using(using).bulk_create(rows, batch_size=500)
    return len(rows)

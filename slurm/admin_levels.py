"""Slurm's AdminLevel of users (None, Operator, Administrator), from the accounting database or sacctmgr.

slurmdbd keeps it in ``user_table.admin_level`` (1 None, 2 Operator, 3 Administrator; domain 1.14),
one value per slurmdbd for every cluster. ``sacctmgr show user format=User,AdminLevel`` prints the
same as a word. A user Slurm does not know (or a deleted one) has no level: NONE; so has a portal
user whose name is no valid Slurm entity name (``ops@example.org``): Slurm cannot know it, and it is
never put on sacctmgr's command line.
"""

from __future__ import annotations

from collections.abc import Iterable

from django.db import DatabaseError

from slurm.models import AdminLevel, SlurmUser
from slurm.sacctmgr import check_entity_name, get_client
from userportal.errors import SlurmDatabaseUnavailable

SOURCES = ("database", "sacctmgr")
_WORDS = {"none": AdminLevel.NONE, "operator": AdminLevel.OPERATOR, "administrator": AdminLevel.ADMINISTRATOR}


def from_word(word: str) -> AdminLevel:
    """sacctmgr's word ("Operator", "Administrator", "None", "Not Set") as an AdminLevel."""
    return _WORDS.get(word.strip().lower(), AdminLevel.NONE)


def _valid(name: str) -> bool:
    try:
        check_entity_name(name, "user name")
    except ValueError:
        return False
    return True


def elevated_levels(source: str = "database", users: Iterable[str] | None = None) -> dict[str, AdminLevel]:
    """{user: OPERATOR or ADMINISTRATOR} for the users (all when None) whose level is above None.

    Raises a DataSourceError (SlurmDatabaseUnavailable, SacctmgrError) when the source does not answer.
    """
    names = None if users is None else sorted(set(users))
    if source == "sacctmgr":
        if names is not None:
            names = [name for name in names if _valid(name)]
            if not names:
                return {}
        client = get_client()
        if names is not None and len(names) == 1:
            words = client.admin_levels(names[0])
        else:
            words = client.admin_levels()
        levels = {name: from_word(word) for name, word in words.items() if names is None or name in names}
    elif source == "database":
        rows = SlurmUser.objects.filter(deleted=0, admin_level__gte=AdminLevel.OPERATOR)
        if names is not None:
            rows = rows.filter(name__in=names)
        try:
            levels = {name: AdminLevel(min(level, 3)) for name, level in rows.values_list("name", "admin_level")}
        except DatabaseError as exc:
            raise SlurmDatabaseUnavailable(f"user_table: {exc}") from exc
    else:
        raise ValueError(f"unknown AdminLevel source {source!r}: one of {', '.join(SOURCES)}")
    return {name: level for name, level in levels.items() if level >= AdminLevel.OPERATOR}

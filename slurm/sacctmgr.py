"""A small sacctmgr client: ``-i -P`` through :mod:`slurm.commands`, strict names.

sacctmgr is the only way the portal changes Slurm's accounting (slurmdbd owns its database; the
portal's database account there is SELECT-only). Every name that reaches an argv is checked
against a strict pattern first, so a QOS, user or account name can never smuggle in another
option (``where``, ``=``, a leading ``-``) or a second entity.

``add`` of something that exists prints "Nothing new added" and exits 1, ``delete`` of something
missing prints "Nothing deleted" and exits 1 (domain 2.2): both are treated as success, so every
call here is idempotent and safe to retry from a Celery task.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass

from django.conf import settings
from django.utils.translation import gettext_lazy as _

from slurm.commands import SlurmCommandError, run_command
from userportal.errors import DataSourceError

logger = logging.getLogger(__name__)

# QOS names: letters, digits, "_" and "-", starting with a letter or digit (a leading "-" would be an option).
QOS_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# Slurm user and account names: what Unix logins and sacctmgr accept, without anything sacctmgr parses.
ENTITY_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}")
GPU_TYPE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")

NO_OP_MESSAGES = ("Nothing new added", "Nothing deleted", "Nothing modified")


class SacctmgrError(DataSourceError):
    """sacctmgr failed, timed out or could not be run."""

    source = "sacctmgr"
    user_message = _("Slurm's sacctmgr did not answer. The change was not applied; try again in a few minutes.")


def is_valid_qos_name(name: str) -> bool:
    return bool(QOS_NAME.fullmatch(name or ""))


def _check(pattern: re.Pattern[str], value: str, what: str) -> str:
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise ValueError(f"not a valid {what}: {value!r}")
    return value


def check_qos_name(name: str) -> str:
    return _check(QOS_NAME, name, "QOS name")


def check_entity_name(name: str, what: str = "Slurm name") -> str:
    return _check(ENTITY_NAME, name, what)


@dataclass(frozen=True)
class QosSpec:
    """What the portal creates: ``add qos <name> GrpTRES=gres/gpu:<type>=<count> MaxWall=<days>-0 Priority=<p>``."""

    name: str
    gpu_type: str
    gpu_count: int
    days: int
    priority: int

    def __post_init__(self) -> None:
        check_qos_name(self.name)
        _check(GPU_TYPE, self.gpu_type, "GPU type")
        for field, value in (("gpu_count", self.gpu_count), ("days", self.days), ("priority", self.priority)):
            if not isinstance(value, int) or value < 0:
                raise ValueError(f"{field} must be a non-negative integer, got {value!r}")

    @property
    def grp_tres(self) -> str:
        return f"gres/gpu:{self.gpu_type}={self.gpu_count}"

    @property
    def max_wall(self) -> str:
        return f"{self.days}-0"

    @property
    def max_wall_minutes(self) -> int:
        return self.days * 24 * 60


def add_qos_args(spec: QosSpec) -> list[str]:
    return [
        "add",
        "qos",
        spec.name,
        f"GrpTRES={spec.grp_tres}",
        f"MaxWall={spec.max_wall}",
        f"Priority={spec.priority}",
    ]


def modify_qos_args(spec: QosSpec) -> list[str]:
    return [
        "modify",
        "qos",
        "where",
        f"name={spec.name}",
        "set",
        f"GrpTRES={spec.grp_tres}",
        f"MaxWall={spec.max_wall}",
        f"Priority={spec.priority}",
    ]


def delete_qos_args(name: str) -> list[str]:
    return ["delete", "qos", check_qos_name(name)]


def user_qos_args(user: str, account: str, qos: str, *, add: bool) -> list[str]:
    operator = "+=" if add else "-="
    return [
        "modify",
        "user",
        check_entity_name(user, "user name"),
        "set",
        f"qos{operator}{check_qos_name(qos)}",
        "where",
        f"account={check_entity_name(account, 'account name')}",
    ]


def display(args: Sequence[str]) -> str:
    """The command as staff copy it into a terminal (names are validated, so no quoting is needed)."""
    return " ".join(["sacctmgr", *args])


@dataclass(frozen=True)
class Result:
    args: tuple[str, ...]
    changed: bool  # False for sacctmgr's "Nothing new added" / "Nothing deleted"
    output: str


class SacctmgrClient:
    """Runs ``sacctmgr -i -P <args>`` with a timeout; raises SacctmgrError on failure."""

    def __init__(self, executable: str = "sacctmgr", *, timeout: float = 30.0) -> None:
        self.executable = executable
        self.timeout = timeout

    def run(self, args: Sequence[str]) -> Result:
        try:
            proc = run_command([self.executable, "-i", "-P", *args], timeout=self.timeout, check=False)
        except SlurmCommandError as exc:
            if exc.timed_out:
                raise SacctmgrError(f"{display(args)} timed out after {self.timeout:g} s") from exc
            raise SacctmgrError(f"cannot run {self.executable}: {exc}") from exc
        stdout = proc.stdout
        both = stdout + proc.stderr
        if proc.returncode == 0:
            logger.info("%s: done", display(args))
            return Result(tuple(args), True, stdout)
        if proc.returncode == 1 and any(message in both for message in NO_OP_MESSAGES):
            logger.info("%s: nothing to do", display(args))
            return Result(tuple(args), False, stdout)
        raise SacctmgrError(f"{display(args)} exited {proc.returncode}: {both.strip()[:500]}")

    # --- the operations the portal needs -----------------------------------------------------
    def add_qos(self, spec: QosSpec) -> Result:
        """Create the QOS; when it exists already, set its limits to the spec (idempotent)."""
        result = self.run(add_qos_args(spec))
        if not result.changed:
            self.run(modify_qos_args(spec))
        return result

    def delete_qos(self, name: str) -> Result:
        """Delete the QOS (Slurm also removes it from every association). Missing is fine."""
        return self.run(delete_qos_args(name))

    def add_user_qos(self, user: str, account: str, qos: str) -> Result:
        """Add the QOS to the user's association with the account (adding it twice changes nothing)."""
        result = self.run(user_qos_args(user, account, qos, add=True))
        if not result.changed:
            # "Nothing modified": there is no such association, so the user cannot use the QOS.
            raise SacctmgrError(f"{user} has no association with account {account}: cannot add QOS {qos}")
        return result

    def remove_user_qos(self, user: str, account: str, qos: str) -> Result:
        return self.run(user_qos_args(user, account, qos, add=False))

    def admin_levels(self, user: str | None = None) -> dict[str, str]:
        """{user: AdminLevel} from ``sacctmgr -P -n show user [<user>] format=User,AdminLevel`` ("None", "Operator", "Administrator")."""
        target = [check_entity_name(user, "user name")] if user else []
        result = self.run(["-n", "show", "user", *target, "format=User,AdminLevel"])
        levels = {}
        for line in result.output.splitlines():
            name, _sep, level = line.strip().partition("|")
            if name:
                levels[name] = level.strip()
        return levels

    def qos_names(self) -> set[str]:
        """Names of the existing QOS, from ``sacctmgr -P -n show qos format=name``."""
        result = self.run(["-n", "show", "qos", "format=name"])
        return {line.strip() for line in result.output.splitlines() if line.strip()}


@functools.cache
def get_client() -> SacctmgrClient:
    """The client built from settings on first use (tests call ``get_client.cache_clear()``)."""
    return SacctmgrClient(
        getattr(settings, "SLURM_SACCTMGR", "sacctmgr"), timeout=getattr(settings, "SLURM_SACCTMGR_TIMEOUT", 30.0)
    )

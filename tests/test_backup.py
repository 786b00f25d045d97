"""Backups: the portal database copied with its engine's own tool, restored into a fresh instance,
migrated forward and verified (README, "Operating the portal": pg_dump and mariadb-dump on the
servers; here SQLite's online backup). dumpdata is no backup: it keeps milliseconds of the audit
log's timestamps, whose hashes cover microseconds, so a restored chain no longer verifies."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SEED = """
from django.contrib.auth.models import User
from userportal.audit import audit
from userportal.tokens import issue_token
alice = User.objects.create_user("alice", email="alice@example.org", password="alice-pw")
issue_token(alice, name="uploader")
for n in range(3):
    audit("backup.test", actor="alice", target=f"row {n}")
"""

CHECK = """
from django.contrib.auth.models import User
from userportal.models import ApiToken, AuditEntry, BeatRun
alice = User.objects.get(username="alice")
assert alice.check_password("alice-pw")
assert ApiToken.objects.filter(user=alice, name="uploader").count() == 1
assert BeatRun.objects.create(task="priorities.reconcile", runs=3).pk  # the table the forward migration added
assert AuditEntry.objects.filter(action="backup.test").count() == 3
print("restored")
"""


def _manage(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, f"manage.py {' '.join(args)}:\n{result.stdout}\n{result.stderr}"
    return result


def _instance(tmp_path: Path, name: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PORTAL_", "DJANGO_", "DATABASE_", "REDIS_"))}
    var = tmp_path / name
    var.mkdir()
    env.update(
        DJANGO_SETTINGS_MODULE="userportal.settings",
        SECRET_KEY="backup-test-secret-" + "x" * 40,
        AUDIT_HMAC_KEY="backup-test-audit-key-" + "y" * 40,  # the same key on both: the chain verifies
        PORTAL_HTTPS="false",
        PORTAL_VAR_DIR=str(var),
        DATABASE_URL=f"sqlite:///{var / 'portal.sqlite3'}",
    )
    return env


def test_backup_restore_into_a_fresh_instance_and_migrate_forward(tmp_path):
    old = _instance(tmp_path, "old")
    _manage(old, "migrate", "--noinput", "-v", "0")
    _manage(old, "migrate", "userportal", "0006", "--noinput", "-v", "0")  # the previous release's schema
    _manage(old, "shell", "-c", SEED)
    backup = tmp_path / "portal-backup.sqlite3"
    with sqlite3.connect(tmp_path / "old" / "portal.sqlite3") as source, sqlite3.connect(backup) as target:
        source.backup(target)  # as `sqlite3 portal.sqlite3 ".backup portal-backup.sqlite3"`

    new = _instance(tmp_path, "new")  # a fresh instance with the new code: the backup put in place
    shutil.copy(backup, tmp_path / "new" / "portal.sqlite3")
    assert "userportal.0007_beat_run" in _manage(new, "migrate", "--plan").stdout
    _manage(new, "migrate", "--noinput", "-v", "0")  # forward
    assert "restored" in _manage(new, "shell", "-c", CHECK).stdout
    _manage(new, "audit_verify")  # the restored audit chain is intact
    _manage(new, "check")


def test_dumpdata_is_no_backup_of_the_audit_log(tmp_path):
    old = _instance(tmp_path, "old")
    _manage(old, "migrate", "--noinput", "-v", "0")
    _manage(old, "shell", "-c", SEED)
    dump = tmp_path / "portal.json"
    _manage(old, *"dumpdata --natural-foreign --natural-primary -e contenttypes -e auth.permission".split(),
            *"-e sessions -e admin.logentry -o".split(), str(dump))  # fmt: skip
    # only the portal's own tables: nothing of the read-only Slurm and Robinhood databases
    assert '"model": "slurm.' not in dump.read_text()
    new = _instance(tmp_path, "new")
    _manage(new, "migrate", "--noinput", "-v", "0")
    _manage(new, "loaddata", str(dump))
    env = new
    result = subprocess.run([sys.executable, "manage.py", "audit_verify"], cwd=ROOT, env=env, capture_output=True,
                            text=True, timeout=300, check=False)  # fmt: skip
    assert result.returncode == 1 and "does not match its hash" in result.stderr

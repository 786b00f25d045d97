"""The audit log: append-only, hash-chained, and audit_verify finds tampering."""

from __future__ import annotations

import itertools
import threading

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command
from django.db import connection
from django.test import Client
from django.urls import reverse

from userportal.audit import audit, verify_chain
from userportal.models import AuditEntry

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def raw_update(where_seq: int, **fields) -> None:
    """Tamper the way an attacker with database access would: bypassing the model."""
    table = AuditEntry._meta.db_table
    with connection.cursor() as cursor:
        for column, value in fields.items():
            cursor.execute(f"UPDATE {table} SET {column} = %s WHERE seq = %s", [value, where_seq])  # noqa: S608


def raw_delete(seq: int) -> None:
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AuditEntry._meta.db_table} WHERE seq = %s", [seq])  # noqa: S608


@pytest.fixture
def chain():
    return [audit(f"test.action{i}", actor="alice", target=f"t{i}", extra={"n": i, "price": "1.50"}) for i in range(5)]


def test_entries_form_a_chain(chain):
    assert [e.seq for e in chain] == [1, 2, 3, 4, 5]
    assert all(b.prev_hash == a.hash for a, b in itertools.pairwise(chain))
    assert list(verify_chain()) == []
    call_command("audit_verify", verbosity=0)


def test_entries_cannot_be_changed_or_deleted_through_django(chain):
    entry = AuditEntry.objects.get(pk=chain[0].pk)
    entry.actor = "mallory"
    with pytest.raises(PermissionError):
        entry.save()
    with pytest.raises(PermissionError):
        entry.delete()
    with pytest.raises(PermissionError):
        AuditEntry.objects.filter(pk=entry.pk).update(actor="mallory")
    with pytest.raises(PermissionError):
        AuditEntry.objects.all().delete()


def test_verify_finds_an_edited_entry(chain):
    raw_update(chain[2].seq, actor="mallory")
    problems = list(verify_chain())
    assert [(p.seq, "edited" in p.message) for p in problems] == [(chain[2].seq, True)]
    with pytest.raises(CommandError, match="audit log broken"):
        call_command("audit_verify", verbosity=0)


def test_verify_finds_a_deleted_entry(chain):
    raw_delete(chain[1].seq)
    problems = list(verify_chain())
    assert problems
    assert problems[0].seq == chain[2].seq
    assert "missing" in problems[0].message


def test_verify_finds_a_deleted_tail(chain):
    raw_delete(chain[-1].seq)
    assert any("tail deleted" in p.message for p in verify_chain())


def test_rebuilding_the_chain_without_the_key_is_detected(chain):
    # An attacker edits an entry and recomputes plain SHA-256 hashes for the rest of the chain.
    import hashlib
    import json

    from userportal.audit import _canonical

    raw_update(chain[2].seq, actor="mallory")
    prev = chain[1].hash
    for entry in AuditEntry.objects.filter(seq__gte=chain[2].seq).order_by("seq"):
        content = json.loads(_canonical({"seq": entry.seq, "actor": entry.actor}))
        forged = hashlib.sha256((prev + json.dumps(content)).encode()).hexdigest()
        raw_update(entry.seq, prev_hash=prev, hash=forged)
        prev = forged
    assert any("edited" in p.message for p in verify_chain())


def test_a_deleted_head_is_reported_and_writing_goes_on(chain):
    from userportal.models import AuditHead

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AuditHead._meta.db_table}")  # noqa: S608
    assert any("head row is missing" in p.message for p in verify_chain())
    entry = audit("test.after_head_loss", actor="alice")
    rebuilt = AuditEntry.objects.get(action="audit.head_rebuilt")  # the loss is recorded in the chain
    assert (rebuilt.seq, rebuilt.prev_hash) == (chain[-1].seq + 1, chain[-1].hash)
    assert (entry.seq, entry.prev_hash) == (rebuilt.seq + 1, rebuilt.hash)


def test_verify_finds_reordered_entries(chain):
    a, b = chain[1], chain[2]
    raw_update(a.seq, seq=999)
    raw_update(b.seq, seq=a.seq)
    raw_update(999, seq=b.seq)
    assert any("previous-hash" in p.message for p in verify_chain())


def test_sign_in_events_are_audited():
    get_user_model().objects.create_user("ivan", password="right-password")
    client = Client()
    client.post(reverse("login"), {"username": "ivan", "password": "wrong"})
    client.post(reverse("login"), {"username": "ivan", "password": "right-password"})
    client.post(reverse("logout"))
    actions = list(AuditEntry.objects.order_by("seq").values_list("action", "actor", "status"))
    assert actions == [
        ("auth.login_failed", "ivan", "failed"),
        ("auth.login", "ivan", "ok"),
        ("auth.logout", "ivan", "ok"),
    ]
    assert AuditEntry.objects.get(action="auth.login").path == reverse("login")


@pytest.mark.server_db  # run in the PostgreSQL and MariaDB passes (SQLite serialises writers itself)
@pytest.mark.django_db(transaction=True, databases=["default", "slurm"])
def test_concurrent_writers_never_fork_the_chain():
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(10):
                audit("test.concurrent", actor=f"w{n}", target=str(i))
        except BaseException as exc:  # a failed writer is reported below, not lost in the thread
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert AuditEntry.objects.count() == 40
    assert list(verify_chain()) == []


# --- the head: signed, rebuilt inside the chain, compared with the copy in the log ---------------
def head_row() -> tuple:
    from userportal.models import AuditHead

    with connection.cursor() as cursor:
        cursor.execute(f"SELECT seq, hash, signature FROM {AuditHead._meta.db_table} WHERE id = 1")  # noqa: S608
        return cursor.fetchone()


def set_head(seq: int, hash_: str, signature: str | None = None) -> None:
    from userportal.models import AuditHead

    table = AuditHead._meta.db_table
    with connection.cursor() as cursor:
        cursor.execute(f"UPDATE {table} SET seq = %s, hash = %s WHERE id = 1", [seq, hash_])  # noqa: S608
        if signature is not None:
            cursor.execute(f"UPDATE {table} SET signature = %s WHERE id = 1", [signature])  # noqa: S608


def test_a_deleted_tail_with_a_rewritten_head_is_detected(chain):
    # The attacker deletes the last two entries and points the head at the new last one: without
    # the key the head's signature no longer matches.
    raw_delete(chain[4].seq)
    raw_delete(chain[3].seq)
    set_head(chain[2].seq, chain[2].hash)
    assert any("signature" in p.message for p in verify_chain())
    # The next write does not quietly go on from the forged head: the rebuild is in the chain.
    audit("test.after", actor="alice")
    rebuilt = AuditEntry.objects.get(action="audit.head_rebuilt")
    assert (rebuilt.seq, rebuilt.prev_hash, rebuilt.status) == (chain[2].seq + 1, chain[2].hash, "alert")
    assert rebuilt.extra["head_seq"] == chain[2].seq
    problems = list(verify_chain())
    assert [p.seq for p in problems] == [rebuilt.seq]
    assert "rebuilt" in problems[0].message
    with pytest.raises(CommandError, match="audit log broken"):
        call_command("audit_verify", verbosity=0)
    call_command("audit_verify", f"--accept-rebuild={rebuilt.seq}", verbosity=0)  # staff looked into it


def test_a_deleted_head_row_is_rebuilt_inside_the_chain(chain):
    from userportal.models import AuditHead

    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {AuditHead._meta.db_table}")  # noqa: S608
    raw_delete(chain[4].seq)
    entry = audit("test.after_head_loss", actor="alice")
    rebuilt = AuditEntry.objects.get(action="audit.head_rebuilt")
    assert rebuilt.seq == chain[3].seq + 1
    assert entry.seq == rebuilt.seq + 1
    assert [p.seq for p in verify_chain()] == [rebuilt.seq]


def test_an_old_signed_head_put_back_is_caught_by_the_head_in_the_log(chain, caplog, tmp_path):
    # Someone with a copy of an older head row (a backup) deletes the tail and puts that row back:
    # the chain and its head agree, but the log, kept outside the database, recorded more.
    old_head = head_row()
    with caplog.at_level("INFO", logger="userportal.audit"):
        later = [audit("test.later", actor="alice", target=str(i)) for i in range(2)]
    log = tmp_path / "portal.log"
    log.write_text(
        "".join(f"2026-12-07 10:00:00,000 INFO userportal.audit: {r.getMessage()}\n" for r in caplog.records)
    )
    for entry in reversed(later):
        raw_delete(entry.seq)
    set_head(*old_head)
    assert list(verify_chain()) == []  # undetectable from the database alone
    head = f"{later[-1].seq}:{later[-1].hash}"
    assert any("tail deleted" in p.message for p in verify_chain(known_heads={later[-1].seq: later[-1].hash}))
    for option in (f"--head={head}", f"--head-from={log}"):
        with pytest.raises(CommandError, match="audit log broken"):
            call_command("audit_verify", option, verbosity=0)


def test_audit_verify_accepts_the_head_in_the_log_of_an_intact_chain(chain, caplog, tmp_path):
    log = tmp_path / "portal.log"
    with caplog.at_level("INFO", logger="userportal.audit"):
        audit("test.more", actor="alice")
    log.write_text("\n".join(r.getMessage() for r in caplog.records))
    call_command("audit_verify", f"--head-from={log}", verbosity=0)
    call_command("audit_verify", f"--head={chain[2].seq}:{chain[2].hash}", verbosity=0)
    with pytest.raises(CommandError, match="audit log broken"):
        call_command("audit_verify", f"--head={chain[2].seq}:{'0' * 64}", verbosity=0)
    with pytest.raises(CommandError, match="SEQ:HASH"):
        call_command("audit_verify", "--head=nonsense", verbosity=0)


def test_check_deploy_refuses_an_audit_key_derived_from_the_secret_key(settings):
    from userportal.checks import check_audit_key

    settings.AUDIT_HMAC_KEY_DERIVED = True
    assert [m.id for m in check_audit_key()] == ["portal.E010"]
    settings.AUDIT_HMAC_KEY_DERIVED = False
    settings.AUDIT_HMAC_KEY = settings.SECRET_KEY
    assert [m.id for m in check_audit_key()] == ["portal.E010"]
    settings.AUDIT_HMAC_KEY = "short"
    assert [m.id for m in check_audit_key()] == ["portal.E010"]
    settings.AUDIT_HMAC_KEY = "a-separate-key-of-forty-random-characters-xx"
    assert check_audit_key() == []

"""The portal's tamper-evident audit log, shared by every module.

    from userportal.audit import audit
    audit("billing.rate_change", request=request, target="tier:mu", extra={"cpu": "0.05"})

Entries are appended to a chain: hash = HMAC-SHA-256(AUDIT_HMAC_KEY, previous hash + the entry's
canonical JSON). Without the key (it lives in the environment, not the database), someone who can
write the database cannot rebuild a valid chain after editing it. The chain's head row is locked
while appending, so concurrent writers never fork it; it is signed with the key too, so deleting
the tail and pointing the head at the new last entry shows. A head found missing or unsigned is
rebuilt from the last entry, and the rebuild is itself an entry of the chain (audit.head_rebuilt),
never silent. Each new head is also written to the log ("audit head seq=N hash=H"), a copy outside
the database that verify_chain(known_heads=...) (`manage.py audit_verify --head-from LOG`) compares
with: it catches an older, validly signed head row put back from a backup. verify_chain()
recomputes every hash and reports each edited, deleted, reordered or truncated entry.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import IntegrityError, transaction
from django.http import HttpRequest

from userportal.clientip import client_ip
from userportal.models import AuditEntry, AuditHead

logger = logging.getLogger(__name__)

GENESIS = "0" * 64


def _canonical(fields: dict[str, Any]) -> str:
    return json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False, cls=DjangoJSONEncoder)


def entry_hash(entry: AuditEntry) -> str:
    content = {
        "seq": entry.seq,
        "timestamp": entry.timestamp.astimezone(UTC).isoformat(timespec="microseconds"),
        "actor": entry.actor,
        "ip": entry.ip or "",
        "user_agent": entry.user_agent,
        "method": entry.method,
        "path": entry.path,
        "action": entry.action,
        "target": entry.target,
        "status": entry.status,
        "extra": entry.extra,
    }
    key = str(settings.AUDIT_HMAC_KEY).encode()
    return hmac.new(key, (entry.prev_hash + _canonical(content)).encode(), hashlib.sha256).hexdigest()


def head_signature(seq: int, hash_: str) -> str:
    key = str(settings.AUDIT_HMAC_KEY).encode()
    return hmac.new(key, f"audit-head:{seq}:{hash_}".encode(), hashlib.sha256).hexdigest()


def _signed(head: AuditHead) -> bool:
    return hmac.compare_digest(head.signature, head_signature(head.seq, head.hash))


def audit(
    action: str,
    *,
    request: HttpRequest | None = None,
    actor: str | None = None,
    target: str = "",
    status: str = "ok",
    extra: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry. `actor` defaults to the request's user; request details are recorded."""
    if actor is None and request is not None:
        user = getattr(request, "user", None)
        actor = user.get_username() if user is not None and user.is_authenticated else ""
    # What is hashed is exactly what the database gives back: extra goes through JSON once.
    clean_extra = json.loads(_canonical(extra or {}))
    fields = {
        "actor": (actor or "")[:150],
        "ip": client_ip(request) if request is not None else None,
        "user_agent": (request.headers.get("User-Agent", "") if request is not None else "")[:300],
        "method": (request.method or "")[:10] if request is not None else "",
        "path": request.path[:500] if request is not None else "",
        "action": action[:64],
        "target": str(target)[:200],
        "status": str(status)[:32],
        "extra": clean_extra,
    }
    _ensure_head()
    with transaction.atomic():
        head = AuditHead.objects.select_for_update().get(pk=1)
        if not _signed(head):
            _rebuild_head(head)
        entry = _append(head, fields)
    return entry


def _append(head: AuditHead, fields: dict[str, Any]) -> AuditEntry:
    """Append one entry after the (locked) head and move the head to it."""
    entry = AuditEntry(seq=head.seq + 1, timestamp=datetime.now(tz=UTC), prev_hash=head.hash, **fields)
    entry.hash = entry_hash(entry)
    entry.save()
    head.seq, head.hash = entry.seq, entry.hash
    head.signature = head_signature(head.seq, head.hash)
    head.save(update_fields=["seq", "hash", "signature"])
    logger.info("audit head seq=%d hash=%s action=%s", entry.seq, entry.hash, entry.action)
    return entry


def _rebuild_head(head: AuditHead) -> None:
    # The head was missing, or changed without the key (a deleted tail hidden by pointing the head
    # at the new last entry). Go on from the last entry, and say so inside the chain.
    last = AuditEntry.objects.order_by("-seq").first()
    found = {"head_seq": head.seq, "head_hash": head.hash, "reason": "missing" if not head.signature else "signature"}
    logger.error("the audit chain's head was %s: rebuilt from entry %s", found["reason"], last.seq if last else 0)
    head.seq, head.hash = (last.seq, last.hash) if last else (0, GENESIS)
    _append(
        head,
        {"actor": "", "action": "audit.head_rebuilt", "status": "alert", "extra": {**found, "last_seq": head.seq}},
    )


def _ensure_head() -> None:
    # Created by migration 0003. If someone removed it, it is created unsigned (audit() then records
    # the rebuild), outside the lock: locking a row that does not exist takes gap locks on MariaDB,
    # where two writers would deadlock.
    # An empty log (a new database) starts from a signed genesis head: there is nothing to rebuild.
    if not AuditHead.objects.filter(pk=1).exists():
        empty = not AuditEntry.objects.exists()
        try:
            with transaction.atomic():
                if empty:
                    AuditHead.objects.create(pk=1, seq=0, hash=GENESIS, signature=head_signature(0, GENESIS))
                else:
                    AuditHead.objects.create(pk=1, signature="")
        except IntegrityError:
            pass  # another writer created it first


@dataclass(frozen=True)
class Problem:
    seq: int | None
    message: str


def verify_chain(
    *, batch_size: int = 5000, known_heads: dict[int, str] | None = None, accepted_rebuilds: Iterable[int] = ()
) -> Iterator[Problem]:
    """Every problem in the chain, in order: edited, deleted, reordered or inserted entries, a head
    that is unsigned or does not end the chain, and each rebuild of the head (but those accepted).

    `known_heads` ({seq: hash}, from the log lines audit() writes) are heads kept outside the
    database: each must still be in the chain, with that hash.
    """
    known = dict(known_heads or {})
    accepted = set(accepted_rebuilds)
    expected_seq = 1
    prev_hash = GENESIS
    last_seq, last_hash = 0, GENESIS
    queryset = AuditEntry.objects.order_by("seq")
    for entry in queryset.iterator(chunk_size=batch_size):
        if entry.seq != expected_seq:
            yield Problem(entry.seq, f"entries {expected_seq} to {entry.seq - 1} are missing (deleted)")
        if entry.prev_hash != prev_hash:
            yield Problem(entry.seq, "its previous-hash does not match the entry before it (deleted or reordered)")
        if entry_hash(entry) != entry.hash:
            yield Problem(entry.seq, "its content does not match its hash (edited)")
        if entry.action == "audit.head_rebuilt" and entry.seq not in accepted:
            yield Problem(
                entry.seq,
                f"the chain's head was rebuilt here ({entry.extra.get('reason', '')}; it recorded entry "
                f"{entry.extra.get('head_seq')}): entries before it may have been deleted",
            )
        if entry.seq in known and known.pop(entry.seq) != entry.hash:
            yield Problem(entry.seq, "its hash differs from the one the log recorded (edited or rewritten)")
        expected_seq = entry.seq + 1
        prev_hash = entry.hash
        last_seq, last_hash = entry.seq, entry.hash
    for seq in sorted(known):
        yield Problem(seq, f"the log recorded entry {seq} but the chain ends at entry {last_seq} (tail deleted)")
    head = AuditHead.objects.filter(pk=1).first()
    if head is None:
        if last_seq:
            yield Problem(None, "the chain's head row is missing (deleted)")
        return
    if not _signed(head):
        yield Problem(head.seq, "the chain's head signature does not match (the head was changed without the key)")
    if (head.seq, head.hash) != (last_seq, last_hash):
        yield Problem(
            head.seq, f"the chain ends at entry {last_seq} but its head records entry {head.seq} (tail deleted)"
        )

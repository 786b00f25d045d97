from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from userportal.audit import verify_chain
from userportal.models import AuditEntry

# The line audit() logs for each new head (userportal.audit._append).
HEAD_LINE = re.compile(r"audit head seq=(\d+) hash=([0-9a-f]{64})")


def _head(value: str) -> tuple[int, str]:
    seq, _, hash_ = value.partition(":")
    if not seq.isdigit() or not re.fullmatch(r"[0-9a-f]{64}", hash_):
        raise CommandError(f"--head {value!r}: expected SEQ:HASH, as in the log line 'audit head seq=SEQ hash=HASH'")
    return int(seq), hash_


class Command(BaseCommand):
    help = (
        "Verify the audit log's hash chain: report every edited, deleted or reordered entry, a head "
        "changed without the key and each rebuild of the head. With --head or --head-from, also "
        "compare with heads kept outside the database (the portal's log lines 'audit head seq=N "
        "hash=H'), which catches a deleted tail behind an older head row put back. Exits non-zero "
        "when the chain is broken. Reads only."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--head", action="append", default=[], metavar="SEQ:HASH", help="A head from the log.")
        parser.add_argument(
            "--head-from", action="append", default=[], metavar="LOG", help="A log file: every head line in it."
        )
        parser.add_argument(
            "--accept-rebuild",
            action="append",
            default=[],
            type=int,
            metavar="SEQ",
            help="A head rebuild (audit.head_rebuilt entry SEQ) staff looked into: not reported again.",
        )

    def handle(self, *args: Any, verbosity: int = 1, **options: Any) -> None:
        known = dict(_head(value) for value in options["head"])
        for name in options["head_from"]:
            try:
                text = Path(name).read_text(errors="replace")
            except OSError as exc:
                raise CommandError(f"--head-from {name}: {exc}") from exc
            known.update((int(seq), hash_) for seq, hash_ in HEAD_LINE.findall(text))
        total = AuditEntry.objects.count()
        problems = 0
        for problem in verify_chain(known_heads=known, accepted_rebuilds=options["accept_rebuild"]):
            problems += 1
            where = f"entry {problem.seq}" if problem.seq is not None else "chain"
            self.stderr.write(f"{where}: {problem.message}")
        if problems:
            raise CommandError(f"audit log broken: {problems} problem(s) in {total} entries")
        if verbosity:
            compared = f", {len(known)} head(s) from the log found in it" if known else ""
            self.stdout.write(f"audit log intact: {total} entries verified{compared}")

"""The demo seeder copes with Slurm's root/root association (seen in every real assoc table)."""

from __future__ import annotations

from quotas.demo import demo_rows


def test_root_association_gives_no_duplicate_rows():
    rows = list(demo_rows([("root", "root"), ("alice", "root"), ("alice", "physics")], seed=3))
    keys = [(r.uid, r.gid, r.type, r.lhsm_status) for r in rows]
    assert len(keys) == len(set(keys))
    assert ("root", "root", "dir", "") in keys

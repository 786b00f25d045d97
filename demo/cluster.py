"""The demo cluster's inventory and people: nodes, TRES, QOS, accounts, users, associations, node events."""

from __future__ import annotations

import random
from collections import Counter

from demo.catalog import DAY, DEPARTMENTS, EVENT_REASONS, FIRST_NAMES, NODE_GROUPS, SURNAMES, DemoUser, Node
from slurm.decoders import TRES_BILLING, TRES_CPU, TRES_ENERGY, TRES_MEM, TRES_NODE, format_tres
from slurm.hostlists import compress_hostlist
from slurm.models import Account, Assoc, ClusterModels, Event, Qos, SlurmUser, Tres


class Cluster:
    """One cluster's fixed inventory and its people, drawn from the seeding run's one Random."""

    def __init__(
        self, models: ClusterModels, rng: random.Random, *, users: int, accounts: int, days: int, now: int
    ) -> None:
        self.models = models
        self.rng = rng
        self.n_users, self.n_accounts, self.days, self.now = users, accounts, days, now
        self.window_start = now - days * DAY
        self.installed = self.window_start - 30 * DAY
        self.nodes = self._nodes()
        self.by_partition: dict[str, list[Node]] = {}
        for node in self.nodes:
            self.by_partition.setdefault(node.group.partition, []).append(node)
        self.tres_gpu, self.tres_gpu_types = 1001, {"a100": 1002, "v100": 1003}
        self.users: list[DemoUser] = []  # filled by account_and_assoc_rows()
        self.leaf_accounts: list[str] = []

    @staticmethod
    def _nodes() -> list[Node]:
        nodes: list[Node] = []
        for group in NODE_GROUPS:
            for number in range(1, group.count + 1):
                nodes.append(Node(f"{group.prefix}{number:0{group.width}d}", len(nodes), group))
        return nodes

    def tres_rows(self) -> list[Tres]:
        static = [(1, "cpu", ""), (2, "mem", ""), (3, "energy", ""), (4, "node", ""), (5, "billing", "")]
        static += [(6, "fs", "disk"), (7, "vmem", ""), (8, "pages", "")]
        rows = [Tres(id=i, type=t, name=n, creation_time=self.installed, deleted=0) for i, t, n in static]
        rows.append(Tres(id=1000, type="dynamic_offset", name="", creation_time=self.installed, deleted=1))
        # AccountingStorageTRES=gres/gpu,gres/gpu:a100,gres/gpu:v100: dynamic ids in that order.
        for tres_id, name in ((1001, "gpu"), (1002, "gpu:a100"), (1003, "gpu:v100")):
            rows.append(Tres(id=tres_id, type="gres", name=name, creation_time=self.installed + 1, deleted=0))
        return rows

    def qos_rows(self) -> list[Qos]:
        made = self.installed + 60
        return [
            Qos(id=1, name="normal", description="Normal QOS default", priority=0, creation_time=made, mod_time=made),
            Qos(
                id=2,
                name="gpuprio",
                description="gpuprio",
                priority=1000,
                grp_tres=f"{self.tres_gpu_types['a100']}=8",
                max_wall_duration_per_job=20160,
                creation_time=made,
                mod_time=made,
            ),
            Qos(
                id=3,
                name="long",
                description="long jobs, few at a time",
                priority=0,
                max_jobs_per_user=4,
                max_wall_duration_per_job=43200,
                creation_time=made,
                mod_time=made,
            ),
        ]

    def _usernames(self) -> list[str]:
        names = ["alice", "bob"]
        taken = set(names)
        pool = [name for name in FIRST_NAMES if name not in taken]
        self.rng.shuffle(pool)
        round_ = 0
        while len(names) < self.n_users:
            for first in pool:
                if len(names) >= self.n_users:
                    break
                # First names first; later rounds use first initial + surname, as many sites do.
                candidate = first if round_ == 0 else f"{first[0]}{self.rng.choice(SURNAMES)}"
                suffix = 2
                base = candidate
                while candidate in taken:
                    candidate = f"{base}{suffix}"
                    suffix += 1
                taken.add(candidate)
                names.append(candidate)
            round_ += 1
        return names

    def account_and_assoc_rows(self) -> tuple[list[Account], list[Assoc], list[SlurmUser]]:
        rng = self.rng
        assoc_model = self.models.assoc
        made = self.installed + 120
        surnames = SURNAMES[:]
        rng.shuffle(surnames)
        leaves: list[tuple[str, str]] = []
        for i in range(self.n_accounts):
            surname = surnames[i % len(surnames)] + (str(i // len(surnames) + 1) if i >= len(surnames) else "")
            kind = "rrg" if i % 4 == 3 else "def"
            # The first lab sits under physics, so alice's second account is a physics lab.
            parent = "physics" if i == 0 else rng.choice(DEPARTMENTS)
            leaves.append((f"{kind}-{surname}", parent))
        self.leaf_accounts = [name for name, _parent in leaves]

        accounts = [
            Account(
                name="root", description="default root account", organization="root", creation_time=made, mod_time=made
            )
        ]
        accounts += [
            Account(
                name=dept,
                description=f"department of {dept}",
                organization="science",
                creation_time=made,
                mod_time=made,
            )
            for dept in DEPARTMENTS
        ]
        accounts += [
            Account(
                name=name,
                description=f"{name.split('-', 1)[1]} lab",
                organization=parent,
                creation_time=made,
                mod_time=made,
            )
            for name, parent in leaves
        ]

        assocs: list[Assoc] = []

        def add(**values: str | int) -> int:
            row = assoc_model(id_assoc=len(assocs) + 1, creation_time=made, mod_time=made, **values)
            assocs.append(row)
            return len(assocs)

        add(user="", acct="root", parent_acct="", qos=",1,", shares=1)
        add(user="root", acct="root", is_def=1)
        for dept in DEPARTMENTS:
            add(user="", acct=dept, parent_acct="root", shares=rng.choice((1000, 2000, 5000)))
        for name, parent in leaves:
            gpu_alloc = name.startswith("rrg-")
            add(
                user="",
                acct=name,
                parent_acct=parent,
                shares=rng.randint(1, 100),
                qos=",1,2," if gpu_alloc else "",
                grp_tres=f"{self.tres_gpu}=16" if gpu_alloc else "",
            )

        users: list[SlurmUser] = [
            SlurmUser(name="root", admin_level=3, creation_time=self.installed, mod_time=self.installed)
        ]
        for index, username in enumerate(self._usernames()):
            person = DemoUser(
                name=username,
                uid=1001 + index,
                weight=min(rng.paretovariate(1.3), 20.0),
                gpu_user=username == "alice" or (username != "bob" and rng.random() < 0.3),
                mem_per_cpu_habit=rng.random() < 0.25,
                efficiency=0.8 if username == "alice" else rng.betavariate(2.0, 1.6),
                preferred_gpu="a100" if rng.random() < 0.55 else "v100",
            )
            if username == "alice":
                memberships = ["physics", self.leaf_accounts[0]]
            elif username == "bob":
                memberships = ["chem", "physics"]
            else:
                memberships = [self.leaf_accounts[(index - 2) % len(self.leaf_accounts)]]
                extra = rng.choices((0, 1, 2), weights=(60, 30, 10))[0]
                for candidate in rng.sample(self.leaf_accounts, min(extra, len(self.leaf_accounts))):
                    if candidate not in memberships:
                        memberships.append(candidate)
            for position, account in enumerate(memberships):
                person.accounts.append(
                    (
                        account,
                        add(
                            user=username,
                            acct=account,
                            is_def=int(position == 0),
                            delta_qos=",+2," if person.gpu_user and position == 0 and rng.random() < 0.3 else "",
                        ),
                    )
                )
            # Some people left an account during the window: a deleted association whose old jobs remain.
            if username == "bob" or (username != "alice" and rng.random() < 0.05):
                old = "biology" if username == "bob" else rng.choice(self.leaf_accounts)
                if old not in memberships:
                    removed = self.window_start + self.days * DAY // 2
                    assoc_id = add(user=username, acct=old, deleted=1)
                    assocs[-1].mod_time = removed
                    person.old_assocs.append((old, assoc_id, removed))
            users.append(SlurmUser(name=username, admin_level=1, creation_time=made, mod_time=made))
            self.users.append(person)
        return accounts, assocs, users

    def event_rows(self) -> list[Event]:
        rng, event_model = self.rng, self.models.event
        total = {TRES_CPU: 0, TRES_MEM: 0, TRES_ENERGY: 0, TRES_NODE: len(self.nodes), TRES_BILLING: 0}
        gpus: Counter[int] = Counter()
        for node in self.nodes:
            total[TRES_CPU] += node.group.cpus
            total[TRES_MEM] += node.group.mem_mb
            total[TRES_BILLING] += node.group.cpus
            if node.group.gpus:
                gpus[self.tres_gpu] += node.group.gpus
                gpus[self.tres_gpu_types[node.group.gpu_type]] += node.group.gpus
        cluster_tres = format_tres({**total, **gpus})
        all_nodes = compress_hostlist(node.name for node in self.nodes)
        rows: dict[tuple[str, int], Event] = {}
        # Cluster-level rows (node_name ''): the TRES the cluster registered, the current one open.
        registered = self.installed + 300
        rows[("", registered)] = event_model(
            node_name="",
            time_start=registered,
            time_end=self.window_start + DAY,
            cluster_nodes=all_nodes,
            reason="",
            state=0,
            tres=cluster_tres,
        )
        rows[("", self.window_start + DAY)] = event_model(
            node_name="",
            time_start=self.window_start + DAY,
            time_end=0,
            cluster_nodes=all_nodes,
            reason="",
            state=0,
            tres=cluster_tres,
        )
        for index in range(max(4, self.days // 4)):
            node = rng.choice(self.nodes)
            reason, uid, state = rng.choice(EVENT_REASONS)
            if node.group.gpus == 0 and "GPU" in reason:
                reason, uid, state = EVENT_REASONS[0]
            start = rng.randint(self.window_start, self.now - 3600)
            end = 0 if index == 0 else min(start + rng.randint(600, 3 * DAY), self.now - 60)
            node_tres = {
                TRES_CPU: node.group.cpus,
                TRES_MEM: node.group.mem_mb,
                TRES_NODE: 1,
                TRES_BILLING: node.group.cpus,
            }
            if node.group.gpus:
                node_tres[self.tres_gpu] = node.group.gpus
                node_tres[self.tres_gpu_types[node.group.gpu_type]] = node.group.gpus
            rows[(node.name, start)] = event_model(
                node_name=node.name,
                time_start=start,
                time_end=end,
                cluster_nodes="",
                reason=reason,
                reason_uid=uid,
                state=state,
                tres=format_tres(node_tres),
            )
        return list(rows.values())

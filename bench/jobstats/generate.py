"""Fill a Slurm 22.05 accounting database in MariaDB for the jobstats benchmark.

    .venv/bin/python bench/jobstats/generate.py                 # 2,000,000 jobs, 5,000 users
    .venv/bin/python bench/jobstats/generate.py --jobs 200000 --users 500 --heavy-jobs 5000  # smaller
    nice -n 10 .venv/bin/python bench/jobstats/generate.py --jobs 8000000 --database bench8m_slurm_acct_db

A database of more than ``--base-jobs`` (2,000,000) jobs is the base database plus an older history:
its newest ``--base-jobs`` jobs are exactly the base database's rows (same users, the same heavy
user's 50,000 jobs, the same light user ``--light-user`` with its ~400 jobs; ``job_db_inx`` and
``id_job`` shifted by the number of older jobs), and the extra jobs come before them, at the same
rate (so over a longer history: 6,000,000 more jobs are 2,190 more days), spread over every user
but the heavy and the light one. A request of the heavy or the light user then has the same work
to do at both sizes, and only what grows with the whole history shows up as a difference.

Creates ``bench_slurm_acct_db`` on 127.0.0.1:3306 (root, empty password) with the real schema
(the stack's slurm_acct_db.schema.sql, cluster tables renamed to ``<cluster>_*``), generates
the rows in Python with a fixed seed (deterministic) into TSV files and loads them with LOAD
DATA LOCAL INFILE. The job table is loaded without its secondary indexes, which are then added
back exactly as the schema declares them (one sort instead of 2M random index inserts): the
final table is the real one, with no extra index. Steps are written for the heavy user's jobs
only. A SELECT-only account (``bench_portal``/``bench``) is created for the portal.

Re-runnable: when ``bench_params`` already holds the same parameters, nothing is done
(``--force`` rebuilds). ``--dry-run`` prints what would be done.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import sys
import tempfile
import time
from pathlib import Path

import MySQLdb

SCHEMA = Path("/work/shared/reference/stack/infra/samples/slurm_acct_db.schema.sql")
HEAVY_USER = "heavy"
FIRST_UID = 20000
SPAN_DAYS = 730
PARTITIONS = ("cpubase_bycore_b1", "cpubase_bycore_b2", "gpubase_bynode_b1", "cpularge_bycore_b3")
STATE_WEIGHTS = ((3, 80), (5, 8), (4, 6), (6, 3), (11, 2), (7, 1))  # COMPLETED FAILED CANCELLED TIMEOUT OOM NODE_FAIL
NAMES = ("train", "sim", "analysis", "md_run", "preprocess", "bench", "gromacs", "namd", "cp2k", "pytorch")
JOB_COLUMNS = (
    "job_db_inx", "mod_time", "account", "array_task_str", "cpus_req", "job_name", "id_assoc", "id_array_job",
    "id_array_task", "id_job", "id_qos", "id_resv", "id_wckey", "id_user", "id_group", "het_job_id",
    "het_job_offset", "state_reason_prev", "mem_req", "nodelist", "nodes_alloc", "node_inx", "partition",
    "priority", "state", "timelimit", "time_submit", "time_eligible", "time_start", "time_end", "exit_code",
    "work_dir", "submit_line", "tres_alloc", "tres_req",
)  # fmt: skip
STEP_COLUMNS = (
    "job_db_inx", "id_step", "nodelist", "nodes_alloc", "state", "step_name", "task_cnt", "time_start",
    "time_end", "user_sec", "sys_sec", "tres_alloc", "tres_usage_in_max",
)  # fmt: skip


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--jobs", type=int, default=2_000_000)
    parser.add_argument(
        "--base-jobs", type=int, default=2_000_000, help="newest jobs, the base database's; more --jobs are older"
    )
    parser.add_argument(
        "--light-user", default="u00001", help="a user given none of the older jobs (the benchmark's light user)"
    )
    parser.add_argument("--users", type=int, default=5000)
    parser.add_argument("--heavy-jobs", type=int, default=50_000, help="jobs of the user 'heavy'")
    parser.add_argument("--running", type=int, default=40, help="running jobs of the heavy user")
    parser.add_argument("--pending", type=int, default=30, help="pending jobs of the heavy user")
    parser.add_argument("--cluster", default="bench")
    parser.add_argument("--database", default="bench_slurm_acct_db")
    parser.add_argument("--seed", type=int, default=2205)
    parser.add_argument(
        "--now", type=int, default=1_760_000_000, help="'now' of the data (epoch), fixed for determinism"
    )
    parser.add_argument("--force", action="store_true", help="rebuild even when loaded with the same parameters")
    parser.add_argument("--dry-run", action="store_true")
    return parser.parse_args(argv)


def params_of(args: argparse.Namespace) -> dict[str, object]:
    keys = ("jobs", "users", "heavy_jobs", "running", "pending", "cluster", "seed", "now")
    params = {key: getattr(args, key) for key in keys} | {"version": 1}
    if older_jobs(args):  # a base database's parameters are unchanged (it is not rebuilt)
        params |= {"base_jobs": args.base_jobs, "light_user": args.light_user}
    return params


def older_jobs(args: argparse.Namespace) -> int:
    """Jobs before the base database's history (0 for a base database)."""
    return max(args.jobs - args.base_jobs, 0)


def base_jobs(args: argparse.Namespace) -> int:
    return args.jobs - older_jobs(args)


def connect(database: str | None = None) -> MySQLdb.Connection:
    kwargs: dict[str, object] = {"host": "127.0.0.1", "port": 3306, "user": "root", "passwd": "", "local_infile": 1}
    if database:
        kwargs["db"] = database
    return MySQLdb.connect(charset="utf8mb4", **kwargs)


def schema_statements(cluster: str) -> list[str]:
    text = SCHEMA.read_text().replace("`testcluster_", f"`{cluster}_")
    text = re.sub(r"/\*!?M?!?[^*]*\*/;?", "", text)
    return [s.strip() for s in text.split(";") if s.strip().startswith("CREATE TABLE")]


def split_job_indexes(statement: str) -> tuple[str, list[str]]:
    """The job table's CREATE without its secondary keys, and those keys (added back after the load)."""
    keep, keys = [], []
    for line in statement.splitlines():
        stripped = line.strip().rstrip(",")
        if re.match(r"^(UNIQUE )?KEY ", stripped):
            keys.append(stripped)
        else:
            keep.append(line)
    body = "\n".join(keep)
    body = re.sub(r",\s*\n\)", "\n)", body)
    return body, keys


def already_loaded(args: argparse.Namespace) -> bool:
    conn = connect()
    cur = conn.cursor()
    cur.execute(
        "SELECT 1 FROM information_schema.tables WHERE table_schema=%s AND table_name='bench_params'", (args.database,)
    )
    if not cur.fetchone():
        return False
    cur.execute(f"SELECT params FROM `{args.database}`.bench_params")
    row = cur.fetchone()
    return bool(row) and json.loads(row[0]) == params_of(args)


def tsv(value: object) -> str:
    if value is None:
        return "\\N"
    return str(value).replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def write_rows(path: Path, rows: list[tuple[object, ...]]) -> None:
    with path.open("w") as out:
        out.writelines(tsv_line(row) for row in rows)


def tsv_line(row: tuple[object, ...]) -> str:
    return "\t".join(tsv(v) for v in row) + "\n"


def draw_resources(rng: random.Random) -> dict[str, object]:
    """A job's partition, size, limit, wait, run time, node list and final state (one fixed order of draws)."""
    partition = PARTITIONS[rng.randrange(len(PARTITIONS))]
    gpu = partition.startswith("gpu")
    cpus = rng.choice((1, 1, 2, 4, 8, 16, 32))
    nodes = 1 if cpus <= 16 else 2
    mem = cpus * rng.choice((1000, 2000, 4000))
    tres = f"1={cpus},2={mem},4={nodes},5={cpus}" + (",1001=1,1002=1" if gpu else "")
    limit = rng.choice((60, 180, 720, 1440, 4320))
    wait = rng.randrange(0, 7200)
    runtime = rng.randrange(30, limit * 60)
    first_node = rng.randrange(1, 900)
    nodelist = (
        f"{'ng' if gpu else 'nc'}{first_node:05d}" if nodes == 1 else f"nc[{first_node:05d}-{first_node + 1:05d}]"
    )
    r = rng.random()
    state = 3
    acc = 0
    for value, weight in STATE_WEIGHTS:
        acc += weight
        if r * 100 < acc:
            state = value
            break
    return {"partition": partition, "cpus": cpus, "nodes": nodes, "mem": mem, "tres": tres, "limit": limit,
            "wait": wait, "runtime": runtime, "nodelist": nodelist, "state": state}  # fmt: skip


def draw_array_and_name(rng: random.Random, id_job: int) -> tuple[int, int, str]:
    array_job, array_task = 0, 4294967294
    if rng.random() < 0.05:
        array_job, array_task = id_job - rng.randrange(0, 3), rng.randrange(0, 10)
    return array_job, array_task, f"{NAMES[rng.randrange(len(NAMES))]}_{rng.randrange(1000)}"


def job_row(
    inx: int, id_job: int, user: dict[str, object], account: str, job: dict[str, object], times: tuple[int, int, int]
) -> tuple[object, ...]:
    """One row of the job table, in JOB_COLUMNS order; ``job`` from draw_resources plus array, name, submit line."""
    submit, start, end = times
    state, cpus, mem = job["state"], job["cpus"], job["mem"]
    return (
        inx, max(end, submit), account, None, cpus, job["name"], user["assocs"][account], job["array_job"],  # type: ignore[index]
        job["array_task"], id_job, 1, 0, 0, user["uid"], user["uid"], 0, 4294967294, 0, mem,
        job["nodelist"] if start else "None assigned", job["nodes"], "0", job["partition"], job["priority"], state,
        job["limit"], submit, submit, start, end, 0 if state == 3 else 256, f"/home/{user['name']}/project",
        job["submit_line"], job["tres"] if start else "", job["tres"],
    )  # fmt: skip


def write_older_jobs(args: argparse.Namespace, users: list[dict[str, object]], path: Path) -> int:
    """The jobs before the base history (job_db_inx 1..older_jobs), none of the heavy or the light user."""
    count = older_jobs(args)
    rng = random.Random(f"{args.seed}-older")
    owners = [u for u in users[1:] if u["name"] != args.light_user]
    base_span = SPAN_DAYS * 86400
    span = base_span * count // base_jobs(args)
    first = args.now - base_span - span
    with path.open("w") as out:
        for inx in range(1, count + 1):
            user = owners[rng.randrange(len(owners))]
            account = user["accounts"][rng.randrange(len(user["accounts"]))]  # type: ignore[index]
            submit = first + ((inx - 1) * span) // count
            job = draw_resources(rng)
            id_job = 1_000_000 + inx
            array_job, array_task, name = draw_array_and_name(rng, id_job)
            start = submit + int(job["wait"])  # type: ignore[call-overload]
            job |= {"array_job": array_job, "array_task": array_task, "name": name,
                    "priority": 10000 + rng.randrange(50000),
                    "submit_line": f"sbatch --time={job['limit']} -c {job['cpus']} --mem={job['mem']}M job.sh"}  # fmt: skip
            out.write(tsv_line(job_row(inx, id_job, user, account, job, (submit, start, start + int(job["runtime"])))))  # type: ignore[call-overload]
    return count


def user_plan(args: argparse.Namespace, rng: random.Random) -> list[dict[str, object]]:
    """Users, their accounts and association ids. User 0 is the heavy user."""
    accounts = max(args.users // 10, 2)
    users: list[dict[str, object]] = []
    next_assoc = 2 + accounts  # 1: root; 2..accounts+1: account rows
    for i in range(args.users):
        name = HEAVY_USER if i == 0 else f"u{i:05d}"
        own = [f"def-pi{rng.randrange(accounts):04d}"]
        if i == 0 or rng.random() < 0.3:
            other = f"def-pi{rng.randrange(accounts):04d}"
            if other not in own:
                own.append(other)
        assocs = {}
        for account in own:
            assocs[account] = next_assoc
            next_assoc += 1
        users.append({"name": name, "uid": FIRST_UID + i, "accounts": own, "assocs": assocs})
    return users


def generate(args: argparse.Namespace, workdir: Path) -> dict[str, int]:
    rng = random.Random(args.seed)
    users = user_plan(args, rng)
    accounts = sorted({a for u in users for a in u["accounts"]})  # type: ignore[attr-defined]
    all_accounts = [f"def-pi{i:04d}" for i in range(max(args.users // 10, 2))]
    created = args.now - (SPAN_DAYS + 30) * 86400
    # Associations (root, accounts, users) with a valid nested-set lft/rgt.
    assoc_rows: list[tuple[object, ...]] = [
        (created, 1, "root", "", "", 1, 2 * (1 + len(all_accounts) + sum(len(u["assocs"]) for u in users)), 0)
    ]  # type: ignore[arg-type, misc]
    lft = 2
    account_ids = {name: 2 + i for i, name in enumerate(all_accounts)}
    members: dict[str, list[tuple[str, int]]] = {name: [] for name in all_accounts}
    for user in users:
        for account, id_assoc in user["assocs"].items():  # type: ignore[attr-defined]
            members[account].append((str(user["name"]), id_assoc))
    for account in all_accounts:
        start = lft
        lft += 1
        for _name, _id in members[account]:
            lft += 2
        assoc_rows.append((created, account_ids[account], account, "", "root", start, lft, 0))
        lft += 1
        inner = start + 1
        for name, id_assoc in members[account]:
            assoc_rows.append((created, id_assoc, account, name, "", inner, inner + 1, 0))
            inner += 2
    del accounts
    write_rows(workdir / "assoc.tsv", assoc_rows)
    write_rows(workdir / "user.tsv", [(created, u["name"]) for u in users] + [(created, "root")])
    write_rows(workdir / "acct.tsv", [(created, a, f"{a} account", "bench") for a in ["root", *all_accounts]])

    # Jobs in submit order over SPAN_DAYS; the heavy user gets exactly heavy_jobs of them. With older
    # jobs, these are the base database's rows shifted by their number (the same draws, in the same order).
    shift = write_older_jobs(args, users, workdir / "job_older.tsv")
    total = base_jobs(args)
    heavy_positions = set(
        rng.sample(range(total - args.running - args.pending), args.heavy_jobs - args.running - args.pending)
    )
    tail = total - args.running - args.pending
    heavy = users[0]
    others = users[1:]
    span = SPAN_DAYS * 86400
    steps = 0
    id_job = 1_000_000 + shift
    last_heavy_job = 0
    with (workdir / "job.tsv").open("w") as jobs_out, (workdir / "step.tsv").open("w") as steps_out:
        for inx in range(1, total + 1):
            position = inx - 1
            is_heavy = position in heavy_positions or position >= tail
            user = heavy if is_heavy else others[rng.randrange(len(others))]
            account = user["accounts"][rng.randrange(len(user["accounts"]))]  # type: ignore[index]
            id_job += 1
            submit = args.now - span + (position * span) // total
            job = draw_resources(rng)
            state, nodelist, cpus, mem = job["state"], job["nodelist"], job["cpus"], job["mem"]
            runtime = int(job["runtime"])  # type: ignore[call-overload]
            start, end = submit + int(job["wait"]), submit + int(job["wait"]) + runtime  # type: ignore[call-overload]
            if position >= tail:  # the heavy user's current jobs: running, then pending
                submit = args.now - rng.randrange(60, 86400)
                if position < tail + args.running:
                    state, start, end = 1, submit + 30, 0
                else:
                    state, start, end, nodelist = 0, 0, 0, "None assigned"
            array_job, array_task, name = draw_array_and_name(rng, id_job)
            limit = job["limit"]
            submit_line = f"sbatch --time={limit} -c {cpus} --mem={mem}M job.sh"
            if is_heavy and last_heavy_job and rng.random() < 0.1:
                submit_line = f"sbatch --dependency=afterok:{last_heavy_job} --time={limit} -c {cpus} job.sh"
            if is_heavy:
                last_heavy_job = id_job
            job |= {"state": state, "nodelist": nodelist, "array_job": array_job, "array_task": array_task,
                    "name": name, "submit_line": submit_line, "priority": 10000 + rng.randrange(50000)}  # fmt: skip
            jobs_out.write(tsv_line(job_row(shift + inx, id_job, user, account, job, (submit, start, end))))
            if is_heavy and start:
                for id_step, step_name in ((-5, "batch"), (0, "srun")):
                    steps_out.write(
                        tsv_line(
                            (
                                shift + inx, id_step, nodelist, job["nodes"], state if end else 1, step_name, cpus,
                                start, end, runtime * cpus // 2, runtime // 10, job["tres"], f"2={mem * 1024 * 600}",
                            )
                        )
                    )  # fmt: skip
                    steps += 1
    return {"jobs": shift + total, "steps": steps, "assocs": len(assoc_rows), "users": len(users)}


def load(args: argparse.Namespace, workdir: Path) -> None:
    conn = connect()
    cur = conn.cursor()
    db = args.database
    cur.execute(f"DROP DATABASE IF EXISTS `{db}`")
    cur.execute(f"CREATE DATABASE `{db}` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci")
    cur.execute(f"USE `{db}`")
    cur.execute("SET SESSION sql_mode='NO_AUTO_VALUE_ON_ZERO'")
    job_keys: list[str] = []
    job_table = f"{args.cluster}_job_table"
    for statement in schema_statements(args.cluster):
        if f"`{job_table}`" in statement.split("(")[0]:
            statement, job_keys = split_job_indexes(statement)
        cur.execute(statement)
    now = args.now
    cur.execute(
        "INSERT INTO cluster_table (creation_time, name, federation, fed_state, control_host) VALUES (%s,%s,'',0,'')",
        (now, args.cluster),
    )
    tres = ((1, "cpu", ""), (2, "mem", ""), (3, "energy", ""), (4, "node", ""), (5, "billing", ""), (6, "fs", "disk"),
            (7, "vmem", ""), (8, "pages", ""), (1001, "gres", "gpu"), (1002, "gres", "gpu:a100"), (1003, "gres", "gpu:v100"))  # fmt: skip
    cur.executemany(
        "INSERT INTO tres_table (creation_time, id, type, name) VALUES (%s,%s,%s,%s)", [(now, *t) for t in tres]
    )
    cur.execute("INSERT INTO qos_table (creation_time, id, name, description) VALUES (%s,1,'normal','normal')", (now,))

    def infile(name: str, table: str, columns: tuple[str, ...] | str) -> None:
        cols = columns if isinstance(columns, str) else ", ".join(f"`{c}`" for c in columns)
        started = time.perf_counter()
        cur.execute(f"LOAD DATA LOCAL INFILE '{workdir / name}' INTO TABLE `{table}` ({cols})")
        print(f"  loaded {table} in {time.perf_counter() - started:.1f} s", flush=True)

    infile("user.tsv", "user_table", "creation_time, name")
    infile("acct.tsv", "acct_table", "creation_time, name, description, organization")
    infile(
        "assoc.tsv",
        f"{args.cluster}_assoc_table",
        "creation_time, id_assoc, acct, user, parent_acct, lft, rgt, deleted",
    )
    if older_jobs(args):
        infile("job_older.tsv", job_table, JOB_COLUMNS)
    infile("job.tsv", job_table, JOB_COLUMNS)
    started = time.perf_counter()
    cur.execute(f"ALTER TABLE `{job_table}` " + ", ".join(f"ADD {key}" for key in job_keys))
    print(
        f"  added the job table's {len(job_keys)} schema indexes in {time.perf_counter() - started:.1f} s", flush=True
    )
    infile("step.tsv", f"{args.cluster}_step_table", STEP_COLUMNS)
    cur.execute(f"ANALYZE TABLE `{job_table}`, `{args.cluster}_assoc_table`, `{args.cluster}_step_table`")
    cur.fetchall()
    # A SELECT-only account for the portal.
    for host in ("127.0.0.1", "localhost"):
        cur.execute(f"CREATE USER IF NOT EXISTS 'bench_portal'@'{host}' IDENTIFIED BY 'bench'")
        cur.execute(f"GRANT SELECT ON `{db}`.* TO 'bench_portal'@'{host}'")
    cur.execute("CREATE TABLE bench_params (params TEXT NOT NULL)")
    cur.execute("INSERT INTO bench_params VALUES (%s)", (json.dumps(params_of(args)),))
    conn.commit()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.heavy_jobs > args.jobs or args.users < 2:
        print("heavy-jobs must be <= jobs, and users >= 2", file=sys.stderr)
        return 2
    if not args.force and already_loaded(args):
        print(f"{args.database} already holds these parameters: nothing to do (--force rebuilds).")
        return 0
    if args.dry_run:
        print(f"Would rebuild {args.database} with {params_of(args)}.")
        return 0
    with tempfile.TemporaryDirectory(prefix="bench-jobstats-") as tmp:
        workdir = Path(tmp)
        started = time.perf_counter()
        counts = generate(args, workdir)
        print(f"generated {counts} in {time.perf_counter() - started:.1f} s", flush=True)
        started = time.perf_counter()
        load(args, workdir)
        print(f"loaded {args.database} in {time.perf_counter() - started:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())

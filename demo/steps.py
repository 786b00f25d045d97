"""The steps of one demo job: extern, batch or interactive, and srun steps whose CPU time adds up."""

from __future__ import annotations

from demo.catalog import MIB, SIG_OOM, SRUN_COMMANDS, DemoUser, Resources, Row
from demo.cluster import Cluster
from slurm.decoders import NO_VAL, TRES_CPU, TRES_MEM, TRES_NODE, JobState, format_tres


def step_rows(cluster: Cluster, job: Row, res: Resources, outcome: str, person: DemoUser) -> list[Row]:
    """The steps of a job that started: extern, batch (or interactive) and its srun steps, ending as the job did."""
    rng = cluster.rng
    running = job["time_end"] == 0
    end = job["time_end"] or cluster.now
    elapsed = max(end - job["time_start"], 1)
    nodes = res.nodes
    per_node_gpus = res.gpus_per_node
    first_node = nodes[0]
    efficiency = max(0.01, min(0.99, person.efficiency + rng.uniform(-0.15, 0.15)))
    if outcome == "FAILED":
        efficiency *= 0.3
    total_cpu = elapsed * res.cpus * efficiency
    n_srun = 0 if job["job_name"] == "interactive" else rng.choice((0, 0, 1, 1, 2, 3))
    if len(nodes) > 1:
        n_srun = max(n_srun, 1)  # multi-node work needs srun

    def tres_alloc(n_nodes: int, cpus: int, mem: int) -> str:
        tres = {TRES_CPU: cpus, TRES_MEM: mem, TRES_NODE: n_nodes}
        if per_node_gpus:
            tres[cluster.tres_gpu] = per_node_gpus * n_nodes
            tres[cluster.tres_gpu_types[res.gpu_type]] = per_node_gpus * n_nodes
        return format_tres(tres)

    def usage(cpu_seconds: float, mem_mb: int, fraction: float) -> dict[str, str]:
        cpu_ms = int(cpu_seconds * 1000)
        rss = int(mem_mb * MIB * fraction)
        read, written = rng.randint(10, 50_000) * MIB, rng.randint(1, 20_000) * MIB
        ids = "1=0,2=0,3=0,6=0,7=0,8=0"
        return {
            "tres_usage_in_max": f"1={cpu_ms},2={rss},3=0,6={read},7={rss + 200 * MIB},8=0",
            "tres_usage_in_ave": f"1={cpu_ms},2={rss * 9 // 10},3=0,6={read},7={rss + 150 * MIB},8=0",
            "tres_usage_in_min": f"1={cpu_ms},2={rss * 8 // 10},3=0,6={read},7={rss + 100 * MIB},8=0",
            "tres_usage_in_tot": f"1={cpu_ms},2={rss},3=0,6={read},7={rss + 200 * MIB},8=0",
            "tres_usage_in_max_taskid": ids,
            "tres_usage_in_max_nodeid": ids,
            "tres_usage_in_min_taskid": ids,
            "tres_usage_in_min_nodeid": ids,
            "tres_usage_out_max": f"3=0,6={written}",
            "tres_usage_out_ave": f"3=0,6={written}",
            "tres_usage_out_min": f"3=0,6={written}",
            "tres_usage_out_tot": f"3=0,6={written}",
            "tres_usage_out_max_taskid": "3=0,6=0",
            "tres_usage_out_max_nodeid": "3=0,6=0",
            "tres_usage_out_min_taskid": "3=0,6=0",
            "tres_usage_out_min_nodeid": "3=0,6=0",
        }

    def cpu_split(seconds: float) -> dict[str, int]:
        user = seconds * 0.92
        system = seconds - user
        return {
            "user_sec": int(user),
            "user_usec": int((user % 1) * 1e6),
            "sys_sec": int(system),
            "sys_usec": int((system % 1) * 1e6),
        }

    # How each step ends, by the job's outcome: (state, raw exit) for batch/last srun, extern.
    final = {
        "COMPLETED": ((JobState.COMPLETED, 0), (JobState.COMPLETED, 0)),
        "FAILED": ((JobState.FAILED, job["exit_code"] or 256), (JobState.COMPLETED, 0)),
        "TIMEOUT": ((JobState.CANCELLED, 15), (JobState.COMPLETED, 0)),
        "OUT_OF_MEMORY": ((JobState.OUT_OF_MEMORY, SIG_OOM), (JobState.OUT_OF_MEMORY, SIG_OOM)),
        "CANCELLED": ((JobState.CANCELLED, 15), (JobState.CANCELLED, 0)),
        "NODE_FAIL": ((JobState.NODE_FAIL, 0), (JobState.NODE_FAIL, 0)),
        "PREEMPTED": ((JobState.CANCELLED, 15), (JobState.COMPLETED, 0)),
        "BOOT_FAIL": ((JobState.BOOT_FAIL, 0), (JobState.BOOT_FAIL, 0)),
        "REQUEUED": ((JobState.CANCELLED, 15), (JobState.COMPLETED, 0)),
    }.get(outcome, ((JobState.COMPLETED, 0), (JobState.COMPLETED, 0)))
    (main_state, main_exit), (extern_state, extern_exit) = final
    if running:
        main_state, main_exit, extern_state, extern_exit = JobState.RUNNING, 0, JobState.RUNNING, 0
    mem_per_node = res.mem_total_mb // len(nodes)
    mem_fraction = 1.0 if outcome == "OUT_OF_MEMORY" else rng.uniform(0.05, 0.9)
    common = {"job_db_inx": job["job_db_inx"], "step_het_comp": NO_VAL, "time_start": job["time_start"]}
    steps = [
        dict(
            **common,
            id_step=-4,
            step_name="extern",
            nodelist=job["nodelist"],
            nodes_alloc=len(nodes),
            node_inx=job["node_inx"],
            task_cnt=len(nodes),
            state=int(extern_state),
            exit_code=extern_exit,
            time_end=job["time_end"],
            user_usec=rng.randint(500, 5000),
            sys_usec=rng.randint(500, 5000),
            tres_alloc=tres_alloc(len(nodes), res.cpus, res.mem_total_mb),
            **usage(0.01, 1, 0.5),
        )
    ]
    srun_share = 0.95 if n_srun else 0.0
    interactive = job["job_name"] == "interactive"
    steps.append(
        dict(
            **common,
            # salloc jobs have no batch script; their shell runs as the interactive step
            id_step=-6 if interactive else -5,
            step_name="interactive" if interactive else "batch",
            nodelist=first_node.name,
            nodes_alloc=1,
            node_inx=str(first_node.index),
            task_cnt=1,
            state=int(main_state),
            exit_code=main_exit,
            time_end=job["time_end"],
            tres_alloc=tres_alloc(1, res.cpus // len(nodes), mem_per_node),
            **cpu_split(total_cpu * (1 - srun_share)),
            **usage(total_cpu * (1 - srun_share), mem_per_node, mem_fraction if not n_srun else 0.05),
        )
    )
    if n_srun:
        cuts = sorted(rng.uniform(0, elapsed) for _ in range(n_srun - 1))
        bounds = [0.0, *cuts, float(elapsed)]
        for index in range(n_srun):
            last = index == n_srun - 1
            seg_start = job["time_start"] + int(bounds[index]) + 2
            seg_end = job["time_start"] + int(bounds[index + 1])
            share = (bounds[index + 1] - bounds[index]) / elapsed
            cpu = total_cpu * srun_share * share
            state, exit_raw = (main_state, main_exit if main_exit != 15 else 15) if last else (JobState.COMPLETED, 0)
            if outcome == "FAILED" and last:
                exit_raw = rng.choice((256, 256, 512, 9, 11))
            steps.append(
                dict(
                    **{**common, "time_start": seg_start},
                    id_step=index,
                    step_name=rng.choice(SRUN_COMMANDS),
                    nodelist=job["nodelist"],
                    nodes_alloc=len(nodes),
                    node_inx=job["node_inx"],
                    task_cnt=res.cpus if len(nodes) > 1 else 1,
                    state=int(state),
                    exit_code=exit_raw,
                    time_end=0 if running and last else max(seg_end, seg_start),
                    tres_alloc=tres_alloc(len(nodes), res.cpus, res.mem_total_mb),
                    **cpu_split(cpu),
                    **usage(cpu, mem_per_node, mem_fraction if last else mem_fraction * 0.7),
                )
            )
    return steps

"""The uploader sends the job's submit time (its spooled script's mtime), kept through the queue."""

from __future__ import annotations

import json
import time

from prolog_site import PYTHON, Site, run_uploader


def test_prolog_sends_the_submit_time_of_the_spooled_script(site, portal):
    spooled = site.submit(4100, age=86400 * 9)  # a job submitted 9 days ago
    assert site.run(4100)[0].returncode == 0
    assert portal.received[0]["time_submit"] == int(spooled.stat().st_mtime)
    assert abs(portal.received[0]["time_submit"] - (time.time() - 86400 * 9)) < 5


def test_array_tasks_send_the_masters_submit_time(site, portal):
    master = site.submit(4200, "#!/bin/bash\n#SBATCH --array=0-1\n", age=60)
    env = site.env(4201, SLURM_ARRAY_JOB_ID="4200", SLURM_ARRAY_TASK_ID="1")
    assert site.run(env=env)[0].returncode == 0
    assert portal.received == [
        {
            "id_job": 4200,
            "submit_script": "#!/bin/bash\n#SBATCH --array=0-1\n",
            "cluster": "testcluster",
            "time_submit": int(master.stat().st_mtime),
        }
    ]


def test_a_queued_upload_keeps_its_submit_time_until_it_is_sent(tmp_path, dead_url, portal):
    down = Site(root=tmp_path, host=dead_url)
    spooled = down.submit(4300, age=30)
    down.run(4300)
    entry = json.loads((down.queue / "job.4300.json").read_text())
    assert entry["payload"]["time_submit"] == int(spooled.stat().st_mtime)
    up = Site(root=tmp_path, host=portal.url)
    up.submit(4301)
    assert up.run(4301)[0].returncode == 0
    sent = {body["id_job"]: body for body in portal.received}
    assert sent[4300]["time_submit"] == int(spooled.stat().st_mtime)


def test_slurmds_copy_says_nothing_of_the_submit_time(site, portal):
    # slurmd writes its copy when it launches the job: its mtime is no submit time.
    directory = site.slurmd_spool / "job00043"
    directory.mkdir(parents=True)
    (directory / "slurm_script").write_text("#!/bin/bash\necho node\n")
    env = {"SLURM_JOB_ID": "43", "SLURM_SCRIPT_CONTEXT": "prolog_slurmd"}
    result = run_uploader(PYTHON, "--config", str(site.ini), "--stderr", env=env)
    assert result.returncode == 0, result.stderr
    assert portal.ids() == [43], result.stderr
    assert "time_submit" not in portal.received[0]


def test_daemon_sends_the_submit_time(site, portal):
    spooled = site.submit(4400, age=120)
    daemon = site.daemon()
    try:
        end = time.monotonic() + 10
        while not portal.received and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        daemon.terminate()
        daemon.communicate(timeout=10)
    assert portal.received[0]["time_submit"] == int(spooled.stat().st_mtime)

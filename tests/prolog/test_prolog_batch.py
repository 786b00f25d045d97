"""Batch mode ([api] batch = yes): scripts are spooled, then sent many per request to /api/jobscripts/batch/."""

from __future__ import annotations

import json
import subprocess
import time

import pytest
from prolog_site import PYTHON, Site, run_uploader, uploader

BATCH = "batch = yes\nbatch_size = 50\n"


@pytest.fixture
def batch_site(tmp_path, portal) -> Site:
    return Site(root=tmp_path, host=portal.url, api_extra=BATCH)


def test_a_prolog_spools_its_script_and_sends_the_queue_in_batches(batch_site, portal):
    for job_id in range(100, 180):
        batch_site.submit(job_id)
    for job_id in range(100, 179):  # as if other tasks' prologs had queued theirs, the portal being busy
        path = batch_site.spool / f"hash.{job_id % 10}" / f"job.{job_id}" / "script"
        body = {"id_job": job_id, "submit_script": path.read_text(), "time_submit": int(path.stat().st_mtime)}
        batch_site.queue.mkdir(exist_ok=True)
        entry = {"payload": body, "queued_at": time.time(), "last_error": "x"}
        (batch_site.queue / f"job.{job_id}.json").write_text(json.dumps(entry))
    result, _took = batch_site.run(179)
    assert result.returncode == 0, result.stderr
    assert [len(batch) for batch in portal.batches] == [50, 30]
    assert sorted(item["id_job"] for batch in portal.batches for item in batch) == list(range(100, 180))
    assert all("time_submit" in item for batch in portal.batches for item in batch)
    assert portal.received == []  # nothing one by one
    assert batch_site.queued() == []
    assert "50 scripts sent in one batch" in result.stderr


def test_concurrent_prologs_of_an_array_burst_send_every_script_in_few_requests(batch_site, portal):
    ids = list(range(2000, 2060))
    for job_id in ids:
        batch_site.submit(job_id)
    ini = str(batch_site.ini)
    processes = [
        subprocess.Popen(
            [PYTHON, str(uploader()), "--config", ini, "--stderr"],
            env=batch_site.env(job_id),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for job_id in ids
    ]
    for process in processes:
        assert process.wait(timeout=30) == 0
    # A script queued while another run held the lock is sent by that run, or by a later one.
    leftover = batch_site.queued()
    if leftover:
        assert run_uploader(PYTHON, "--config", ini, "--stderr", "--flush", env={}).returncode == 0
    sent = sorted(item["id_job"] for batch in portal.batches for item in batch)
    assert sorted(set(sent)) == ids
    assert len(portal.batches) < len(ids) and portal.received == []
    assert batch_site.queued() == []


def test_the_portal_down_keeps_the_spool_for_a_later_run(tmp_path, dead_url, portal):
    down = Site(root=tmp_path, host=dead_url, api_extra=BATCH)
    down.submit(300)
    result, took = down.run(300)
    assert result.returncode == 0 and took < 2.5
    assert down.queued() == [300]
    up = Site(root=tmp_path, host=portal.url, api_extra=BATCH)
    result = run_uploader(PYTHON, "--config", str(up.ini), "--stderr", "--flush", env={})
    assert result.returncode == 0, result.stderr
    assert [item["id_job"] for item in portal.batches[0]] == [300]
    assert up.queued() == []


def test_a_refused_batch_is_sent_one_by_one(batch_site, portal):
    portal.mode = "batch-400"
    batch_site.submit(310)
    result, _took = batch_site.run(310)
    assert result.returncode == 0, result.stderr
    assert "sending them one by one" in result.stderr
    assert portal.ids() == [310]
    assert batch_site.queued() == []


def test_a_wrong_token_keeps_the_spool(batch_site, portal):
    portal.mode = "401"
    batch_site.submit(320)
    result, _took = batch_site.run(320)
    assert result.returncode == 0
    assert batch_site.queued() == [320]


def test_rejected_scripts_are_logged_and_not_retried(batch_site, portal):
    portal.mode = "bad-request"
    batch_site.submit(330)
    result, _took = batch_site.run(330)
    assert "upload rejected by the portal, not retried" in result.stderr
    assert batch_site.queued() == []


def test_the_daemon_sends_in_batches(batch_site, portal):
    for job_id in range(400, 420):
        batch_site.submit(job_id)
    daemon = batch_site.daemon()
    try:
        end = time.monotonic() + 10
        while sum(map(len, portal.batches)) < 20 and time.monotonic() < end:
            time.sleep(0.05)
    finally:
        daemon.terminate()
        daemon.communicate(timeout=10)
    assert sorted(item["id_job"] for batch in portal.batches for item in batch) == list(range(400, 420))
    assert len(portal.batches) == 1
    assert portal.received == []


def test_a_batch_size_out_of_range_is_a_configuration_error(tmp_path, portal):
    site = Site(root=tmp_path, host=portal.url, api_extra="batch = yes\nbatch_size = 5000\n")
    result = run_uploader(PYTHON, "--config", str(site.ini), "--stderr", "--flush", env={})
    assert result.returncode == 2
    assert "batch_size" in result.stderr

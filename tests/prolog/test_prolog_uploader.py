"""The uploader (slurm_prolog_userportal.pyz): uploads as PrologSlurmctld, never delays a job, queues and retries, watches the spool."""

from __future__ import annotations

import ast
import importlib.util
import json
import os
import py_compile
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from prolog_site import PYTHON, SOURCE, FakePortal, Site, run_uploader, serve, uploader
from skipping import skip_or_fail


def daemon_state(site: Site) -> dict:
    """The daemon's state file, or {} before its first write (it is replaced atomically)."""
    path = site.queue / "daemon-state.json"
    return json.loads(path.read_text()) if path.exists() else {}


PY36 = Path.home() / ".pyenv" / "versions" / "3.6.15" / "bin" / "python"


def wait_for(condition, timeout: float = 10.0) -> bool:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.05)
    return bool(condition())


# --- prolog mode ----------------------------------------------------------------------------
def test_prolog_uploads_the_jobs_script_from_the_slurmctld_spool(site, portal):
    spooled = site.submit(1234, "#!/bin/bash\n#SBATCH -t 1:00\nsrun hostname\n")
    result, _took = site.run(1234)
    assert result.returncode == 0, result.stderr
    assert portal.received == [
        {
            "id_job": 1234,
            "submit_script": "#!/bin/bash\n#SBATCH -t 1:00\nsrun hostname\n",
            "cluster": "testcluster",
            "time_submit": int(spooled.stat().st_mtime),  # slurmctld wrote it at submission
        }
    ]
    assert portal.headers[0]["Authorization"].startswith("Token ")
    assert site.queued() == []


def test_prolog_strips_nul_characters_and_survives_bad_utf8(site, portal):
    site.submit(11, b"echo \xff\xfe ok\x00\n")
    site.run(11)
    assert portal.received[0]["submit_script"] == "echo \ufffd\ufffd ok\n"


def test_prolog_cuts_the_script_at_script_length(site, portal):
    site.submit(12, "x" * 150_000)
    site.run(12)
    assert len(portal.received[0]["submit_script"]) == 100_000


def test_already_stored_is_success(site, portal):
    portal.mode = "duplicate"
    site.submit(13)
    result, _took = site.run(13)
    assert result.returncode == 0
    assert "already stored" in result.stderr
    assert site.queued() == []


def test_portal_down_exits_0_at_once_and_queues_the_job(tmp_path, dead_url):
    site = Site(root=tmp_path, host=dead_url)
    site.submit(14)
    result, took = site.run(14)
    assert result.returncode == 0
    assert took < 2.5
    assert site.queued() == [14]
    entry = json.loads((site.queue / "job.14.json").read_text())
    assert entry["payload"] == {
        "id_job": 14,
        "submit_script": "#!/bin/bash\nsleep 1\n",
        "cluster": "testcluster",
        "time_submit": int((site.spool / "hash.4" / "job.14" / "script").stat().st_mtime),
    }


def test_a_hanging_portal_delays_the_job_no_longer_than_the_timeout(site, portal):
    portal.mode = "hang"
    site.timeout = 1.0
    site.submit(15)
    result, took = site.run(15)
    assert result.returncode == 0
    assert took < 1.0 + 0.8, result.stderr
    assert site.queued() == [15]


def test_the_next_run_flushes_the_queue(tmp_path, dead_url, portal):
    down = Site(root=tmp_path, host=dead_url)
    down.submit(16)
    down.submit(17)
    down.run(16)
    down.run(17)
    assert down.queued() == [16, 17]
    up = Site(root=tmp_path, host=portal.url)
    up.submit(18)
    result, _took = up.run(18)
    assert result.returncode == 0, result.stderr
    assert portal.ids() == [18, 16, 17]  # its own job first, then the queue, oldest first
    assert up.queued() == []


def test_flush_mode_retries_the_queue(tmp_path, dead_url, portal):
    down = Site(root=tmp_path, host=dead_url)
    down.submit(19)
    down.run(19)
    result, _took = Site(root=tmp_path, host=portal.url).run(None, "--flush")
    assert result.returncode == 0, result.stderr
    assert portal.ids() == [19]
    assert down.queued() == []


def test_flush_mode_says_when_uploads_are_left(tmp_path, dead_url):
    site = Site(root=tmp_path, host=dead_url)
    site.submit(20)
    site.run(20)
    result, _took = site.run(None, "--flush")
    assert result.returncode == 1
    assert site.queued() == [20]


def test_server_errors_are_queued_and_retried(site, portal):
    portal.mode = "500"
    site.submit(21)
    assert site.run(21)[0].returncode == 0
    assert site.queued() == [21]
    portal.mode = "ok"
    site.run(None, "--flush")
    assert site.queued() == []
    assert portal.stored == {21}


def test_a_refused_token_is_logged_loudly_and_kept_for_later(site, portal):
    portal.mode = "401"
    site.submit(22)
    result, _took = site.run(22)
    assert result.returncode == 0
    assert "ERROR" in result.stderr
    assert "token" in result.stderr
    assert site.queued() == [22]


def test_queued_uploads_older_than_max_age_are_dropped(tmp_path, dead_url, portal):
    down = Site(root=tmp_path, host=dead_url)
    down.submit(23)
    down.run(23)
    path = down.queue / "job.23.json"
    entry = json.loads(path.read_text())
    entry["queued_at"] -= 8 * 86400
    path.write_text(json.dumps(entry))
    result, _took = Site(root=tmp_path, host=portal.url).run(None, "--flush")
    assert result.returncode == 0
    assert "dropped" in result.stderr
    assert portal.received == []


def test_a_rejected_upload_is_not_retried(site, portal):
    portal.mode = "bad-request"
    site.submit(24)
    result, _took = site.run(24)
    assert result.returncode == 0
    assert "not retried" in result.stderr
    assert site.queued() == []


def test_after_a_failure_prologs_queue_without_waiting_for_backoff_seconds(tmp_path, portal):
    portal.mode = "hang"
    site = Site(root=tmp_path, host=portal.url, timeout=2.0, backoff=60)
    site.submit(25)
    site.submit(26)
    site.run(25)  # waits 2 s for the hanging portal
    _result, took = site.run(26)
    assert took < 1.5
    assert site.queued() == [25, 26]


def test_array_tasks_send_the_masters_script_once(site, portal):
    site.submit(3000, "#!/bin/bash\n#SBATCH --array=0-2\n")
    for task_id, index in ((3000, 0), (3001, 1), (3002, 2)):
        env = site.env(task_id, SLURM_ARRAY_JOB_ID="3000", SLURM_ARRAY_TASK_ID=str(index))
        assert site.run(env=env)[0].returncode == 0
    assert portal.ids() == [3000]


def test_node_prolog_reads_slurmds_zero_padded_spool(site, portal):
    directory = site.slurmd_spool / "node01" / "job00042"
    directory.mkdir(parents=True)
    (directory / "slurm_script").write_text("#!/bin/bash\necho node\n")
    site_ini = site.ini.read_text().replace(
        f"slurmd_spool = {site.slurmd_spool}", f"slurmd_spool = {site.slurmd_spool}/%n"
    )
    site.ini.write_text(site_ini)
    env = {"SLURM_JOB_ID": "42", "SLURM_SCRIPT_CONTEXT": "prolog_slurmd", "SLURMD_NODENAME": "node01"}
    result = run_uploader(PYTHON, "--config", str(site.root / "userportal-prolog.ini"), "--stderr", env=env)
    assert result.returncode == 0, result.stderr
    assert portal.received[0]["submit_script"] == "#!/bin/bash\necho node\n"


@pytest.mark.parametrize(
    "env",
    [{}, {"SLURM_JOB_ID": "not-a-number"}, {"SLURM_JOB_ID": "77"}],  # no id; a bad id; no script (salloc)
)
def test_prolog_exits_0_whatever_the_environment(site, portal, env):
    result, _took = site.run(env=env)
    assert result.returncode == 0
    assert portal.received == []


def test_prolog_exits_0_with_a_broken_configuration(tmp_path):
    result = run_uploader(PYTHON, "--config", str(tmp_path / "missing.ini"), "--stderr", env={"SLURM_JOB_ID": "5"})
    assert result.returncode == 0
    assert "cannot read the configuration file" in result.stderr


def test_prolog_refuses_a_world_readable_configuration(site, portal):
    site.submit(28)
    site.ini_mode = 0o644
    result, _took = site.run(28)
    assert result.returncode == 0  # the job is never held up
    assert "every user can read it" in result.stderr
    assert portal.received == []
    site.ini_mode = 0o640
    result, _took = site.run(28)
    assert result.returncode == 0, result.stderr
    assert [upload["id_job"] for upload in portal.received] == [28]


def test_prolog_exits_0_when_the_queue_cannot_be_written(tmp_path, dead_url):
    site = Site(root=tmp_path, host=dead_url)
    site.queue.write_text("a file where the queue directory should be")
    site.submit(27)
    result, _took = site.run(27)
    assert result.returncode == 0
    assert "cannot" in result.stderr


# --- daemon mode ----------------------------------------------------------------------------
def stop(process: subprocess.Popen) -> str:
    process.send_signal(signal.SIGTERM)
    _out, err = process.communicate(timeout=10)
    return err


def test_daemon_uploads_new_spool_directories_and_remembers_them(site, portal):
    site.submit(500)
    daemon = site.daemon()
    try:
        assert wait_for(lambda: portal.ids() == [500])
        site.submit(501)
        assert wait_for(lambda: portal.ids() == [500, 501])
    finally:
        log = stop(daemon)
    assert daemon.returncode == 0, log
    state = daemon_state(site)
    assert set(state["sent"]) == {"500", "501"}
    # A restart does not resend what it sent; it sends what is new.
    site.submit(502)
    daemon = site.daemon()
    try:
        assert wait_for(lambda: 502 in portal.ids())
        time.sleep(0.5)
    finally:
        stop(daemon)
    assert portal.ids() == [500, 501, 502]


def test_daemon_leaves_a_script_being_written_for_the_next_pass(site, portal):
    site.submit(510, age=0)
    daemon = site.daemon()
    try:
        assert wait_for(lambda: portal.ids() == [510], timeout=5)
    finally:
        stop(daemon)


def test_daemon_forgets_jobs_slurmctld_let_go(site, portal):
    path = site.submit(520)
    daemon = site.daemon()
    try:
        assert wait_for(lambda: portal.ids() == [520])
        for child in path.parent.iterdir():
            child.unlink()
        path.parent.rmdir()
        assert wait_for(lambda: daemon_state(site).get("sent") == {})
    finally:
        stop(daemon)


def test_daemon_queues_while_the_portal_is_down_and_retries(tmp_path, dead_url, portal):
    down = Site(root=tmp_path, host=dead_url)
    down.submit(530)
    down.submit(531)
    daemon = down.daemon()
    try:
        assert wait_for(lambda: down.queued() == [530, 531])
    finally:
        stop(daemon)
    up = Site(root=tmp_path, host=portal.url)
    daemon = up.daemon()
    try:
        assert wait_for(lambda: up.queued() == [] and sorted(portal.ids()) == [530, 531])
    finally:
        stop(daemon)


# --- the program itself ----------------------------------------------------------------------
MODULES = sorted(SOURCE.glob("*.py"))
STDLIB = {
    "argparse", "configparser", "errno", "fcntl", "json", "logging", "os", "signal", "socket", "ssl", "stat",
    "sys", "tempfile", "time", "typing", "urllib", "ipaddress",
}  # fmt: skip


def test_uploader_uses_only_the_standard_library():
    ours = {path.stem for path in MODULES} - {"__main__"}
    for path in MODULES:
        source = path.read_text()
        imported = set()
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                imported.add((node.module or "").split(".")[0])
        assert imported <= STDLIB | ours, (path.name, imported - STDLIB - ours)
        assert "from __future__" not in source  # annotations need 3.7
    assert not ours & sys.stdlib_module_names  # the archive's modules come first on sys.path: shadow nothing


@pytest.mark.skipif(
    not PY36.exists() and os.environ.get("CI") != "true", reason="no Python 3.6 interpreter (pyenv) on this machine"
)
def test_uploader_compiles_and_runs_on_python_3_6(tmp_path, site, portal):
    compile_all = "import sys\nfor path in sys.argv[1:]:\n    compile(open(path).read(), path, 'exec')"
    subprocess.run([str(PY36), "-c", compile_all, *map(str, MODULES)], check=True, capture_output=True)
    site.submit(36)
    result = run_uploader(PY36, "--config", str(site.ini), "--stderr", env=site.env(36))
    assert result.returncode == 0, result.stderr
    assert portal.ids() == [36]


def test_uploader_compiles_with_the_system_python(tmp_path):
    for path in MODULES:
        py_compile.compile(str(path), cfile=str(tmp_path / (path.stem + ".pyc")), doraise=True)


def test_the_built_file_runs_from_anywhere(tmp_path):
    """The zipapp is one self-contained file: copied alone elsewhere, it still runs (--help exits 0)."""
    alone = tmp_path / "sbin" / "slurm_prolog_userportal.pyz"
    alone.parent.mkdir()
    alone.write_bytes(uploader().read_bytes())
    alone.chmod(0o755)
    result = subprocess.run([str(alone), "--help"], capture_output=True, text=True, timeout=20, check=False, cwd="/")
    assert result.returncode == 0, result.stderr
    assert "--daemon" in result.stdout


def test_example_configuration_is_complete(tmp_path):
    example = (SOURCE.parent / "userportal-prolog.ini.example").read_text()
    for key in ("host", "token", "script_length", "timeout", "spool", "slurmd_spool", "cluster", "dir", "max_files"):
        assert f"\n{key} =" in example


def this_machines_address() -> str:
    """An address of this machine that is not loopback (the route to a documentation address; nothing is sent)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))
            address = probe.getsockname()[0]
        except OSError:
            address = ""
    if not address or address.startswith("127."):
        skip_or_fail("this machine has no address outside loopback")
    return address


@pytest.fixture
def lan_portal():
    """The fake portal on this machine's network address: plain http that would cross a network."""
    fake = FakePortal()
    server = serve(fake, this_machines_address())
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()


def test_the_token_never_goes_over_plain_http_to_another_machine(tmp_path, lan_portal):
    site = Site(root=tmp_path, host=lan_portal.url)
    site.submit(41)
    result, _took = site.run(41)
    assert result.returncode == 0  # the job is never held up
    assert "plain http://" in result.stderr and "allow_plain_http" in result.stderr
    assert lan_portal.headers == []  # nothing was sent, the token least of all
    # An explicit choice for a network the site trusts:
    site.api_extra = "allow_plain_http = yes\n"
    result, _took = site.run(41)
    assert result.returncode == 0, result.stderr
    assert lan_portal.ids() == [41]


@pytest.mark.parametrize(
    ("host", "refused"),
    [
        ("http://portal.example.org", True),
        ("http://10.0.0.5:8080", True),
        ("http://127.0.0.1:8080", False),
        ("http://127.10.0.1", False),
        ("http://localhost:8000", False),
        ("http://[::1]:8080", False),
        ("https://portal.example.org", False),
    ],
)
def test_plain_http_is_for_loopback_only(tmp_path, host, refused):
    spec = importlib.util.spec_from_file_location("userportal_prolog_config", SOURCE / "config.py")
    config = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(config)
    site = Site(root=tmp_path, host=host)
    problems = config.Config(str(site.ini)).problems()
    assert any("plain http://" in problem for problem in problems) is refused, problems

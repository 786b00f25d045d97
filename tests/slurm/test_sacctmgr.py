"""The sacctmgr client: argv lists, strict names, a timeout, no-ops as success, one error type."""

from __future__ import annotations

import pytest

from slurm import sacctmgr
from slurm.commands import CommandResult
from slurm.sacctmgr import QosSpec, SacctmgrClient, SacctmgrError
from userportal.errors import DataSourceError


class FakeRun:
    """Records the runner's argv lists and answers with (returncode, stdout, stderr) in turn."""

    def __init__(self, *answers):
        self.answers = list(answers) or [(0, "", "")]
        self.calls = []

    def __call__(self, argv, **kwargs):
        self.calls.append((list(argv), kwargs))
        code, out, err = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        return CommandResult(tuple(argv), code, out, err)


@pytest.fixture
def fake(monkeypatch):
    def install(*answers):
        runner = FakeRun(*answers)
        monkeypatch.setattr(sacctmgr, "run_command", runner)
        return runner

    return install


SPEC = QosSpec(name="prio_alice-1", gpu_type="a100", gpu_count=2, days=7, priority=1000)


def test_add_qos_runs_an_argv_list_with_immediate_parsable_and_timeout(fake):
    runner = fake((0, " Adding QOS(s)\n", ""))
    SacctmgrClient("/usr/bin/sacctmgr", timeout=7).add_qos(SPEC)
    argv, kwargs = runner.calls[0]
    assert argv == [
        "/usr/bin/sacctmgr", "-i", "-P", "add", "qos", "prio_alice-1",
        "GrpTRES=gres/gpu:a100=2", "MaxWall=7-0", "Priority=1000",
    ]  # fmt: skip
    assert kwargs["timeout"] == 7


def test_add_existing_qos_is_success_and_sets_its_limits(fake):
    runner = fake((1, " Nothing new added.\n", ""), (0, " Modified qos...\n", ""))
    result = SacctmgrClient().add_qos(SPEC)
    assert result.changed is False
    assert runner.calls[1][0][3:] == [
        "modify", "qos", "where", "name=prio_alice-1", "set", "GrpTRES=gres/gpu:a100=2", "MaxWall=7-0", "Priority=1000",
    ]  # fmt: skip


def test_deleting_a_missing_qos_is_idempotent_success(fake):
    fake((1, " Nothing deleted\n", ""))
    assert SacctmgrClient().delete_qos("gone").changed is False


def test_other_failures_raise_a_data_source_error(fake):
    fake((1, "", "sacctmgr: error: Problem talking to the database: Connection refused\n"))
    with pytest.raises(SacctmgrError, match="Connection refused") as info:
        SacctmgrClient().delete_qos("x")
    assert isinstance(info.value, DataSourceError)


def test_timeout_and_missing_binary_raise_sacctmgr_error(tmp_path):
    slow = tmp_path / "sacctmgr"
    slow.write_text("#!/bin/sh\nsleep 5\n")
    slow.chmod(0o755)
    with pytest.raises(SacctmgrError, match="timed out"):
        SacctmgrClient(str(slow), timeout=0.2).delete_qos("x")
    with pytest.raises(SacctmgrError, match="cannot run"):
        SacctmgrClient("/nonexistent/sacctmgr").delete_qos("x")


def test_user_qos_add_and_remove(fake):
    runner = fake((0, " Modified user associations...\n", ""))
    client = SacctmgrClient()
    client.add_user_qos("alice", "physics", "prio1")
    client.remove_user_qos("alice", "physics", "prio1")
    assert runner.calls[0][0][3:] == ["modify", "user", "alice", "set", "qos+=prio1", "where", "account=physics"]
    assert runner.calls[1][0][3:] == ["modify", "user", "alice", "set", "qos-=prio1", "where", "account=physics"]


def test_adding_a_qos_to_a_missing_association_is_an_error(fake):
    fake((1, " Nothing modified\n", ""))
    with pytest.raises(SacctmgrError, match="no association"):
        SacctmgrClient().add_user_qos("nosuch", "physics", "prio1")


@pytest.mark.parametrize(
    "name", ["", "-i", "a b", "a;rm", "prio=1", "x where", "a,b", "é", "a" * 65, "name\n", "$(id)", "a/b"]
)
def test_bad_qos_names_are_refused_before_anything_runs(fake, name):
    runner = fake()
    with pytest.raises(ValueError, match="QOS name"):
        SacctmgrClient().delete_qos(name)
    with pytest.raises(ValueError, match="QOS name"):
        QosSpec(name=name, gpu_type="a100", gpu_count=1, days=1, priority=1)
    assert runner.calls == []
    assert not sacctmgr.is_valid_qos_name(name)


@pytest.mark.parametrize("name", ["gpuprio", "prio_42", "A-1", "9lives"])
def test_good_qos_names(name):
    assert sacctmgr.is_valid_qos_name(name)


@pytest.mark.parametrize(("user", "account"), [("alice", "x where"), ("-alice", "physics"), ("al ice", "physics")])
def test_bad_user_and_account_names_are_refused(fake, user, account):
    runner = fake()
    with pytest.raises(ValueError, match="not a valid"):
        SacctmgrClient().add_user_qos(user, account, "prio1")
    assert runner.calls == []


def test_qos_names_reads_the_parsable_list(fake):
    fake((0, "normal\nhigh\nprio1\n", ""))
    assert SacctmgrClient().qos_names() == {"normal", "high", "prio1"}


def test_display_is_the_copyable_command():
    assert sacctmgr.display(sacctmgr.add_qos_args(SPEC)) == (
        "sacctmgr add qos prio_alice-1 GrpTRES=gres/gpu:a100=2 MaxWall=7-0 Priority=1000"
    )


def test_get_client_reads_settings(settings):
    settings.SLURM_SACCTMGR = "/opt/slurm/bin/sacctmgr"
    settings.SLURM_SACCTMGR_TIMEOUT = 12.0
    sacctmgr.get_client.cache_clear()
    try:
        client = sacctmgr.get_client()
        assert (client.executable, client.timeout) == ("/opt/slurm/bin/sacctmgr", 12.0)
    finally:
        sacctmgr.get_client.cache_clear()

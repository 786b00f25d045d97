"""The Slurm command runner, with real tiny scripts on PATH standing in for the Slurm binaries."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from slurm.commands import CommandResult, SlurmCommandError, run_command
from userportal.errors import DataSourceError


@pytest.fixture
def bin_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A directory first on PATH, for scripts named like the Slurm commands."""
    directory = tmp_path / "bin"
    directory.mkdir()
    monkeypatch.setenv("PATH", f"{directory}{os.pathsep}{os.environ.get('PATH', '')}")
    return directory


def script(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)
    return path


def test_output_of_an_argv_list_with_utc_in_the_environment(bin_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Asia/Bangkok")
    monkeypatch.setenv("SLURM_TIME_FORMAT", "relative")
    script(bin_dir, "squeue", 'printf "%s|" "$@"; echo "TZ=$TZ FORMAT=$SLURM_TIME_FORMAT"; echo warn >&2')
    result = run_command(["squeue", "--jobs", "1 2", "$(id)"], timeout=5)
    assert result == CommandResult(
        ("squeue", "--jobs", "1 2", "$(id)"), 0, "--jobs|1 2|$(id)|TZ=UTC FORMAT=standard\n", "warn\n"
    )


def test_a_non_zero_exit_raises_with_the_command_code_and_stderr(bin_dir: Path) -> None:
    script(bin_dir, "sacct", 'echo partial; echo "sacct: error: slurmdbd down" >&2; exit 3')
    with pytest.raises(SlurmCommandError, match="sacct exited with 3: sacct: error: slurmdbd down") as info:
        run_command(["sacct", "--noheader"], timeout=5)
    error = info.value
    assert isinstance(error, DataSourceError)
    assert (error.argv, error.returncode, error.stdout) == (("sacct", "--noheader"), 3, "partial\n")
    assert "slurmdbd down" in error.stderr
    assert not error.not_found and not error.timed_out


def test_check_false_returns_a_non_zero_exit(bin_dir: Path) -> None:
    script(bin_dir, "sacctmgr", 'echo " Nothing new added."; exit 1')
    result = run_command(["sacctmgr", "-i", "add", "qos", "x"], timeout=5, check=False)
    assert (result.returncode, result.stdout) == (1, " Nothing new added.\n")


def test_a_slow_command_is_killed_at_the_timeout(bin_dir: Path) -> None:
    script(bin_dir, "sbatch", "exec sleep 10")
    started = time.monotonic()
    with pytest.raises(SlurmCommandError, match=r"sbatch took more than 0\.3 s") as info:
        run_command(["sbatch", "run.sh"], timeout=0.3, check=False)
    assert time.monotonic() - started < 5
    assert info.value.timed_out and info.value.returncode is None


def test_a_missing_binary_raises_not_found(bin_dir: Path) -> None:
    with pytest.raises(SlurmCommandError, match="not found") as info:
        run_command(["/nonexistent/scancel", "1"], timeout=5)
    assert info.value.not_found and info.value.returncode is None
    with pytest.raises(SlurmCommandError, match="not found"):
        run_command(["no-such-slurm-command"], timeout=5, check=False)


def test_a_file_that_cannot_be_executed_raises(bin_dir: Path) -> None:
    (bin_dir / "squeue").write_text("not a program")  # not executable
    with pytest.raises(SlurmCommandError, match="cannot run") as info:
        run_command([str(bin_dir / "squeue")], timeout=5)
    assert not info.value.not_found


def test_as_user_goes_through_runuser(bin_dir: Path, tmp_path: Path) -> None:
    # A stand-in runuser: records its own arguments, then runs the command after "--".
    log = tmp_path / "runuser.args"
    script(bin_dir, "runuser", f'echo "$@" > {log}\nwhile [ "$1" != "--" ]; do shift; done\nshift\nexec "$@"')
    script(bin_dir, "scancel", 'echo "cancelled $1 in $TZ"')
    result = run_command(["scancel", "42"], timeout=5, as_user="portaljobs")
    assert log.read_text().split() == ["-u", "portaljobs", "--", "scancel", "42"]
    assert result.argv == ("runuser", "-u", "portaljobs", "--", "scancel", "42")
    assert result.stdout == "cancelled 42 in UTC\n"


def test_only_argv_lists_of_strings_are_run() -> None:
    with pytest.raises(ValueError, match="list of strings"):
        run_command([], timeout=1)
    with pytest.raises(ValueError, match="list of strings"):
        run_command(["scancel", 42], timeout=1)  # type: ignore[list-item]
    with pytest.raises(ValueError, match="list of strings"):
        run_command("scancel 42", timeout=1)  # a shell string, never split

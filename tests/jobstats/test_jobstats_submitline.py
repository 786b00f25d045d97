"""Submit lines tokenised like sbatch reads them, and dependency lists parsed in full."""

from __future__ import annotations

import pytest

from jobstats.domain.submitline import (
    Dependency,
    dependencies_of,
    names_job,
    parse_dependency,
    parse_script_directives,
    parse_submit_line,
)


def test_no_requeue_is_not_requeue():
    options = parse_submit_line("sbatch --no-requeue job.sh")
    assert options.has("no-requeue")
    assert not options.has("requeue")


def test_a_null_submit_line_is_empty():
    options = parse_submit_line(None)
    assert options.options == ()
    assert not dependencies_of(options)


def test_options_after_the_script_belong_to_the_script():
    options = parse_submit_line("sbatch -N2 job.sh --requeue -d singleton")
    assert options.value("nodes") == "2"
    assert options.script == "job.sh"
    assert options.script_args == ("--requeue", "-d", "singleton")
    assert not options.has("requeue")
    assert not dependencies_of(options)


@pytest.mark.parametrize(
    "line",
    [
        "sbatch --dependency=afterok:11 job.sh",
        "sbatch --dependency afterok:11 job.sh",
        "sbatch --depend=afterok:11 job.sh",
        "sbatch -d afterok:11 job.sh",
        "sbatch -dafterok:11 job.sh",
        "/usr/bin/sbatch -Hd afterok:11 job.sh",
        "sbatch '--dependency=afterok:11' job.sh",
    ],
)
def test_every_spelling_of_the_dependency_option(line):
    assert dependencies_of(parse_submit_line(line)).job_ids == [11]


def test_quoted_values_and_unbalanced_quotes():
    options = parse_submit_line('sbatch --job-name="my run" --wrap="python x.py --requeue"')
    assert options.value("job-name") == "my run"
    assert not options.has("requeue")
    broken = parse_submit_line('sbatch --exclusive --job-name="oops job.sh')
    assert broken.has("exclusive")


def test_short_options_with_attached_values_and_flags():
    options = parse_submit_line(
        "sbatch -N4 -n 16 -c2 -t 1:00:00 -x cn[01-02] -w cn03 -L matlab:1 --exclusive=user j.sh"
    )
    assert options.value("nodes") == "4"
    assert options.value("ntasks") == "16"
    assert options.value("cpus-per-task") == "2"
    assert options.value("time") == "1:00:00"
    assert options.value("exclude") == "cn[01-02]"
    assert options.value("nodelist") == "cn03"
    assert options.value("licenses") == "matlab:1"
    assert options.value("exclusive") == "user"


def test_the_last_value_wins_as_in_sbatch():
    assert parse_submit_line("sbatch -t 10 --time=20 j.sh").value("time") == "20"


def test_dependency_types_lists_and_times():
    deps = parse_dependency("afterok:1:2_3,afterany:4,after:5+30:6,singleton")
    assert deps.items == (
        Dependency("afterok", 1),
        Dependency("afterok", 2, "3"),
        Dependency("afterany", 4),
        Dependency("after", 5, None, 30),
        Dependency("after", 6),
    )
    assert deps.singleton
    assert not deps.any_of
    assert deps.job_ids == [1, 2, 4, 5, 6]


def test_question_mark_lists_are_any_of():
    deps = parse_dependency("afterok:10?afternotok:11:12")
    assert deps.any_of
    assert deps.job_ids == [10, 11, 12]


def test_bad_dependency_parts_are_kept_aside():
    deps = parse_dependency("afterwhenever:1,afterok:x,afterok:7")
    assert deps.job_ids == [7]
    assert set(deps.invalid) == {"afterwhenever:1", "afterok:x"}


def test_names_job_uses_the_parsed_list_not_a_substring():
    assert names_job("sbatch --dependency=afterok:1234 j.sh", 1234)
    assert not names_job("sbatch --dependency=afterok:11234 j.sh", 1234)
    assert not names_job("sbatch j.sh 1234", 1234)
    assert not names_job(None, 1234)


def test_sbatch_directives_of_a_script_stop_at_the_first_command():
    script = (
        "#!/bin/bash\n#SBATCH --dependency=afterok:9\n#SBATCH -N 2 # two nodes\n\nmodule load x\n#SBATCH --exclusive\n"
    )
    options = parse_script_directives(script)
    assert options.value("nodes") == "2"
    assert dependencies_of(options).job_ids == [9]
    assert not options.has("exclusive")


def test_the_command_line_overrides_the_script():
    merged = parse_submit_line("sbatch -N 1 j.sh").merged_over(parse_script_directives("#SBATCH -N 3\n"))
    assert merged.value("nodes") == "1"

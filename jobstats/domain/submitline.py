"""Submit lines (``job_table.submit_line``) and ``#SBATCH`` directives, tokenised properly.

TT looked for substrings: ``'--requeue' in line`` also matched ``--no-requeue``, a NULL line
raised TypeError, and ``-d singleton`` after the script name (an argument of the script, not
of sbatch) still counted. Here the line is split like a shell would (shlex), options are read
with sbatch's own rules (``--opt=value``, ``--opt value``, ``-xvalue``, ``-x value``, grouped
short flags, unique prefixes of long options) and reading stops at the script name.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass, field

# Long options of sbatch/salloc/srun that take no argument, and those whose argument is
# optional (then only given with "="). Every other long option takes an argument.
FLAG_OPTIONS = frozenset(
    {
        "contiguous",
        "disable-status",
        "help",
        "hold",
        "ignore-pbs",
        "immediate",
        "label",
        "no-allocate",
        "no-requeue",
        "overcommit",
        "oversubscribe",
        "parsable",
        "preserve-env",
        "pty",
        "quiet",
        "reboot",
        "requeue",
        "spread-job",
        "test-only",
        "unbuffered",
        "usage",
        "use-min-nodes",
        "verbose",
        "version",
        "wait",
        "x11",
    }
)
OPTIONAL_ARGUMENT_OPTIONS = frozenset(
    {"exclusive", "get-user-env", "kill-on-bad-exit", "nice", "no-kill", "propagate", "mpi-opt"}
)
ARGUMENT_OPTIONS = frozenset(
    {
        "account",
        "acctg-freq",
        "array",
        "batch",
        "bb",
        "bbf",
        "begin",
        "chdir",
        "cluster-constraint",
        "clusters",
        "comment",
        "constraint",
        "container",
        "container-id",
        "core-spec",
        "cores-per-socket",
        "cpu-bind",
        "cpu-freq",
        "cpus-per-gpu",
        "cpus-per-task",
        "deadline",
        "delay-boot",
        "dependency",
        "distribution",
        "error",
        "exclude",
        "export",
        "export-file",
        "extra",
        "extra-node-info",
        "gid",
        "gpu-bind",
        "gpu-freq",
        "gpus",
        "gpus-per-node",
        "gpus-per-socket",
        "gpus-per-task",
        "gres",
        "gres-flags",
        "hint",
        "input",
        "job-name",
        "kill-on-invalid-dep",
        "licenses",
        "mail-type",
        "mail-user",
        "mcs-label",
        "mem",
        "mem-bind",
        "mem-per-cpu",
        "mem-per-gpu",
        "mincpus",
        "mpi",
        "network",
        "nodefile",
        "nodelist",
        "nodes",
        "ntasks",
        "ntasks-per-core",
        "ntasks-per-gpu",
        "ntasks-per-node",
        "ntasks-per-socket",
        "open-mode",
        "output",
        "partition",
        "power",
        "prefer",
        "priority",
        "profile",
        "qos",
        "relative",
        "reservation",
        "resv-ports",
        "segment",
        "signal",
        "sockets-per-node",
        "switches",
        "thread-spec",
        "threads",
        "threads-per-core",
        "time",
        "time-min",
        "tmp",
        "tres-bind",
        "tres-per-task",
        "uid",
        "wait-all-nodes",
        "wckey",
        "wrap",
    }
)
LONG_OPTIONS = FLAG_OPTIONS | OPTIONAL_ARGUMENT_OPTIONS | ARGUMENT_OPTIONS

# Short options (sbatch's, with srun's extras) to their long names.
SHORT_WITH_ARGUMENT = {
    "A": "account",
    "a": "array",
    "B": "extra-node-info",
    "b": "begin",
    "C": "constraint",
    "c": "cpus-per-task",
    "D": "chdir",
    "d": "dependency",
    "e": "error",
    "F": "nodefile",
    "G": "gpus",
    "i": "input",
    "J": "job-name",
    "L": "licenses",
    "M": "clusters",
    "m": "distribution",
    "N": "nodes",
    "n": "ntasks",
    "o": "output",
    "p": "partition",
    "q": "qos",
    "r": "relative",
    "S": "core-spec",
    "T": "threads",
    "t": "time",
    "w": "nodelist",
    "x": "exclude",
}
SHORT_FLAGS = {
    "E": "preserve-env",
    "H": "hold",
    "h": "help",
    "I": "immediate",
    "K": "kill-on-bad-exit",
    "k": "no-kill",
    "l": "label",
    "O": "overcommit",
    "Q": "quiet",
    "s": "oversubscribe",
    "u": "unbuffered",
    "V": "version",
    "v": "verbose",
    "W": "wait",
    "X": "disable-status",
    "Z": "no-allocate",
}
COMMANDS = ("sbatch", "salloc", "srun")
MAX_LINE = 20_000  # characters read from a submit line or script header


@dataclass(frozen=True)
class SubmitOptions:
    """What a submit line asked for: long option names (``-N`` is ``nodes``) with their values."""

    command: str = ""
    options: tuple[tuple[str, str | None], ...] = ()
    script: str = ""
    script_args: tuple[str, ...] = ()
    unknown: tuple[str, ...] = field(default=())

    def has(self, name: str) -> bool:
        return any(option == name for option, _value in self.options)

    def value(self, name: str) -> str | None:
        """The last value given for ``name`` (later options override earlier ones, as in sbatch)."""
        found: str | None = None
        for option, value in self.options:
            if option == name:
                found = value if value is not None else ""
        return found

    def values(self, name: str) -> list[str]:
        return [value or "" for option, value in self.options if option == name]

    @property
    def names(self) -> frozenset[str]:
        return frozenset(option for option, _value in self.options)

    def merged_over(self, base: SubmitOptions) -> SubmitOptions:
        """These options after ``base``'s (``#SBATCH`` lines first: the command line overrides them)."""
        return SubmitOptions(
            command=self.command or base.command,
            options=base.options + self.options,
            script=self.script or base.script,
            script_args=self.script_args,
            unknown=base.unknown + self.unknown,
        )


def split_words(text: str | None) -> list[str]:
    """Shell words of ``text``; a line with unbalanced quotes falls back to whitespace splitting."""
    text = (text or "")[:MAX_LINE]
    try:
        return shlex.split(text, comments=False, posix=True)
    except ValueError:
        return text.split()


def resolve_long(name: str) -> str | None:
    """``--depend`` to ``dependency``: an exact name, or a prefix matching exactly one option (getopt_long)."""
    if name in LONG_OPTIONS:
        return name
    matches = [option for option in LONG_OPTIONS if option.startswith(name)]
    return matches[0] if len(matches) == 1 else None


def parse_options(words: list[str], *, stop_at_script: bool = True) -> SubmitOptions:
    """Read sbatch-style options from ``words`` (without the command name)."""
    options: list[tuple[str, str | None]] = []
    unknown: list[str] = []
    index = 0
    script = ""
    script_args: tuple[str, ...] = ()
    while index < len(words):
        word = words[index]
        index += 1
        if word == "--":
            if index < len(words):
                script, script_args = words[index], tuple(words[index + 1 :])
            break
        if word.startswith("--") and len(word) > 2:
            name, sep, value = word[2:].partition("=")
            resolved = resolve_long(name)
            if resolved is None:
                unknown.append(word)
                if sep:
                    options.append((name, value))
                continue
            if sep:
                options.append((resolved, value))
            elif resolved in ARGUMENT_OPTIONS and index < len(words):
                options.append((resolved, words[index]))
                index += 1
            else:
                options.append((resolved, None))
            continue
        if word.startswith("-") and len(word) > 1 and not word[1].isdigit():
            position = 1
            while position < len(word):
                letter = word[position]
                position += 1
                if letter in SHORT_WITH_ARGUMENT:
                    rest = word[position:]
                    if rest:
                        options.append((SHORT_WITH_ARGUMENT[letter], rest.removeprefix("=")))
                    elif index < len(words):
                        options.append((SHORT_WITH_ARGUMENT[letter], words[index]))
                        index += 1
                    else:
                        options.append((SHORT_WITH_ARGUMENT[letter], ""))
                    break
                if letter in SHORT_FLAGS:
                    options.append((SHORT_FLAGS[letter], None))
                else:
                    unknown.append(f"-{letter}")
            continue
        if stop_at_script:
            script, script_args = word, tuple(words[index:])
            break
        unknown.append(word)
    return SubmitOptions(options=tuple(options), script=script, script_args=script_args, unknown=tuple(unknown))


def parse_submit_line(line: str | None) -> SubmitOptions:
    """Tokenise a submit line (NULL-safe): ``sbatch --time=1:00:00 -N2 job.sh arg`` and the like."""
    words = split_words(line)
    command = ""
    if words and words[0].rsplit("/", 1)[-1] in COMMANDS:
        command = words[0].rsplit("/", 1)[-1]
        words = words[1:]
    parsed = parse_options(words)
    return SubmitOptions(
        command=command,
        options=parsed.options,
        script=parsed.script,
        script_args=parsed.script_args,
        unknown=parsed.unknown,
    )


_SBATCH = re.compile(r"^#SBATCH\s+(.*)$")


def parse_script_directives(script: str | None) -> SubmitOptions:
    """Options of the ``#SBATCH`` lines at the top of a batch script (sbatch stops at the first command)."""
    words: list[str] = []
    for raw in (script or "")[:MAX_LINE].splitlines():
        line = raw.strip()
        if not line or line.startswith("#!"):
            continue
        match = _SBATCH.match(line)
        if match:
            words.extend(split_words(match.group(1).split(" #", 1)[0]))
            continue
        if line.startswith("#"):
            continue
        break  # the first command ends the directives
    return parse_options(words, stop_at_script=False)


# --- Dependencies ---------------------------------------------------------------------------
DEPENDENCY_TYPES = frozenset(
    {"after", "afterany", "afterburstbuffer", "aftercorr", "afternotok", "afterok", "expand", "singleton"}
)
_JOB_REF = re.compile(r"(\d{1,10})(?:_(\d{1,10}|\*))?(?:\+(\d{1,7}))?")


@dataclass(frozen=True)
class Dependency:
    """One ``type:job`` of a dependency list; ``minutes`` is after's ``+time``."""

    type: str
    job_id: int
    array_task: str | None = None
    minutes: int | None = None


@dataclass(frozen=True)
class Dependencies:
    items: tuple[Dependency, ...] = ()
    singleton: bool = False
    any_of: bool = False  # "?"-separated: satisfied when any one is
    invalid: tuple[str, ...] = ()

    @property
    def job_ids(self) -> list[int]:
        return sorted({item.job_id for item in self.items})

    def __bool__(self) -> bool:
        return bool(self.items) or self.singleton


def parse_dependency(spec: str | None) -> Dependencies:
    """Parse ``--dependency``'s value: ``afterok:1:2,afterany:3`` (all) or ``afterok:1?afternotok:2`` (any).

    Handles every type, ``after:<id>+<minutes>``, array elements ``<id>_<task>`` and ``singleton``.
    Unreadable parts are kept in ``invalid`` instead of raising.
    """
    text = (spec or "").strip()
    if not text:
        return Dependencies()
    any_of = "?" in text
    groups = re.split(r"[,?]", text)
    items: list[Dependency] = []
    invalid: list[str] = []
    singleton = False
    for group in groups:
        group = group.strip()
        if not group:
            continue
        kind, _sep, rest = group.partition(":")
        kind = kind.lower()
        if kind == "singleton" and not rest:
            singleton = True
            continue
        if kind not in DEPENDENCY_TYPES or not rest:
            invalid.append(group)
            continue
        for reference in rest.split(":"):
            match = _JOB_REF.fullmatch(reference.strip())
            if not match:
                invalid.append(f"{kind}:{reference}")
                continue
            minutes = int(match.group(3)) if match.group(3) is not None else None
            items.append(Dependency(kind, int(match.group(1)), match.group(2), minutes))
    return Dependencies(tuple(items), singleton, any_of, tuple(invalid))


def dependencies_of(options: SubmitOptions) -> Dependencies:
    """The dependency list the job was submitted with (the last ``--dependency`` wins, as in sbatch)."""
    return parse_dependency(options.value("dependency"))


def names_job(line: str | None, job_id: int) -> bool:
    """Whether the submit line's dependency list refers to ``job_id``."""
    return job_id in dependencies_of(parse_submit_line(line)).job_ids

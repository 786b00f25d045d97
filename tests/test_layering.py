"""The import layering of the source apps, read from their code (README "Layout").

userportal/ imports neither slurm/ nor a feature; slurm/ imports no feature; a feature app imports
only slurm/ and userportal/ (never another feature); the prolog uploader only the standard library;
and no module imports itself back through others, not even from inside a function. Imports under
`if TYPE_CHECKING:` do not run and do not count.
"""

from __future__ import annotations

import ast
import sys
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOT_APPS = {"tests", "bench", "scripts", "docs"}
BASE, SOURCE, PROLOG, COMMAND = "userportal", "slurm", "slurm_prolog", "jobstats_cli"
# The uploader is a zipapp tree Slurm runs, not a package (no __init__.py): its modules import each
# other by their bare names (the tree, or the built .pyz, is first on sys.path).
# The login nodes' jobstats command is one file users run: no package either.
STDLIB_ONLY = {PROLOG, COMMAND}
PACKAGES = sorted({p.parent.name for p in ROOT.glob("*/__init__.py")} - NOT_APPS | STDLIB_ONLY)
FEATURES = set(PACKAGES) - {BASE, SOURCE} - STDLIB_ONLY
# What each layer may import from the project, besides itself.
ALLOWED = {BASE: set(), SOURCE: {BASE}, PROLOG: set(), COMMAND: set()} | {
    feature: {BASE, SOURCE} for feature in FEATURES
}


def module_name(path: Path) -> str:
    parts = path.relative_to(ROOT).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {
    module_name(path): path
    for package in PACKAGES
    for path in (ROOT / package).rglob("*.py")
    if "migrations" not in path.parts
}


def _type_checking_only(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def imported_names(name: str) -> Iterator[tuple[str, int]]:
    """(dotted name, line) of every import statement of module `name` that can run."""
    path = MODULES[name]
    package = name.split(".") if path.name == "__init__.py" else name.split(".")[:-1]

    def walk(node: ast.AST) -> Iterator[tuple[str, int]]:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _type_checking_only(child):
                yield from (item for branch in child.orelse for item in walk(branch))
                continue
            if isinstance(child, ast.Import):
                yield from ((alias.name, child.lineno) for alias in child.names)
            elif isinstance(child, ast.ImportFrom):
                base = child.module or ""
                if child.level:
                    prefix = package[: len(package) - child.level + 1]
                    base = ".".join([*prefix, base] if base else prefix)
                for alias in child.names:  # `from jobqueue import services` imports a module
                    full = f"{base}.{alias.name}"
                    yield (full if full in MODULES else base), child.lineno
            yield from walk(child)

    yield from walk(ast.parse(path.read_text(encoding="utf-8")))


def project_module(dotted: str) -> str | None:
    while dotted and dotted not in MODULES:
        dotted = dotted.rpartition(".")[0]
    return dotted or None


GRAPH = {
    name: {
        (target, line)
        for dotted, line in imported_names(name)
        if (target := project_module(dotted)) not in (None, name)
    }
    for name in MODULES
}


def crossings() -> list[str]:
    """Imports of a layer that the layer may not make."""
    return sorted(
        f"{name}:{line} imports {target}"
        for name, edges in GRAPH.items()
        for target, line in edges
        if target.split(".")[0] != name.split(".")[0] and target.split(".")[0] not in ALLOWED[name.split(".")[0]]
    )


def circles() -> list[list[str]]:
    """Tarjan's strongly connected components of GRAPH: any with two modules or more is a circle."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(name: str) -> None:
        index[name] = low[name] = len(index)
        stack.append(name)
        for target, _line in sorted(GRAPH[name]):
            if target not in index:
                visit(target)
                low[name] = min(low[name], low[target])
            elif target in stack:
                low[name] = min(low[name], index[target])
        if low[name] == index[name]:
            component = [stack.pop()]
            while component[-1] != name:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    for name in sorted(GRAPH):
        if name not in index:
            visit(name)
    return found


def test_the_apps_and_their_imports_are_found():
    assert {BASE, SOURCE, PROLOG, COMMAND, "priorities", "jobqueue"} <= set(PACKAGES)
    assert f"{COMMAND}.userportal_jobstats" in MODULES
    assert any(t == "priorities.models" for t, _ in GRAPH["priorities.services"])
    assert any(t == "jobqueue.models" for t, _ in GRAPH["jobqueue.services"])


def test_each_layer_imports_only_the_layers_below_it():
    assert crossings() == []


def test_a_feature_importing_another_is_caught(monkeypatch):
    monkeypatch.setitem(GRAPH, "billing.services", {("jobstats.services", 7)})
    assert crossings() == ["billing.services:7 imports jobstats.services"]


def outside_the_standard_library() -> list[str]:
    """Imports of the uploader and of the jobstats command that are not of the standard library."""

    def own(name: str) -> set[str]:  # the uploader: the modules of its zipapp tree; the command: none
        return {path.stem for path in MODULES[name].parent.glob("*.py")} if name.startswith(PROLOG) else set()

    return [
        f"{name}:{line} imports {dotted}"
        for name in MODULES
        if name.split(".")[0] in STDLIB_ONLY
        for dotted, line in imported_names(name)
        if dotted.split(".")[0] not in sys.stdlib_module_names | own(name)
    ]


def test_the_prolog_uploader_and_the_jobstats_command_import_only_the_standard_library():
    assert outside_the_standard_library() == []


def test_a_third_party_import_of_the_jobstats_command_is_caught(monkeypatch):
    real = imported_names
    fake = lambda name: iter([("requests", 9)]) if name.startswith(COMMAND) else real(name)  # noqa: E731
    monkeypatch.setattr(sys.modules[__name__], "imported_names", fake)
    assert outside_the_standard_library() == ["jobstats_cli.userportal_jobstats:9 imports requests"]


def test_no_import_circle():
    assert circles() == []


def test_a_circle_through_a_lazy_import_is_caught(monkeypatch):
    # What priorities had: services imported tasks inside a function, tasks imported services.
    monkeypatch.setitem(GRAPH, "priorities.services", {("priorities.tasks", 460)})
    monkeypatch.setitem(GRAPH, "priorities.tasks", {("priorities.services", 7)})
    assert circles() == [["priorities.services", "priorities.tasks"]]


# A `domain` package holds pure functions: no process, no network, no database (the Prometheus
# client's data types, Sample and Series, are plain values and may be imported).
IMPURE = {"subprocess", "socket", "requests", "urllib", "http", "django.db", "slurm.commands"}


def impure_imports() -> list[str]:
    return sorted(
        f"{name}:{line} imports {dotted}"
        for name in MODULES
        if ".domain" in name
        for dotted, line in imported_names(name)
        if any(dotted == bad or dotted.startswith(bad + ".") for bad in IMPURE)
    )


def test_domain_modules_do_no_io():
    assert any(".domain." in name for name in MODULES)
    assert impure_imports() == []


def test_an_impure_domain_module_is_caught(monkeypatch):
    monkeypatch.setattr(sys.modules[__name__], "imported_names", lambda name: iter([("subprocess", 3)]))
    assert "jobstats.domain.pending:3 imports subprocess" in impure_imports()

"""Under CI=true nothing may be skipped: every skip in the suite goes through skipping.skip_or_fail.

A bare ``pytest.skip`` (or a ``skipif`` whose condition ignores CI) turns a missing service or a
stack that did not produce its data into a green run. skip_or_fail skips locally, saying what is
missing, and fails under CI.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
import skipping

ROOT = Path(__file__).resolve().parents[1]
ALLOWED = {Path(skipping.__file__).resolve()}


def _dotted(node: ast.AST) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def silent_skips(path: Path) -> list[str]:
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            name = _dotted(node.func)
            if name in ("pytest.skip", "pytest.importorskip", "pytest.mark.skip"):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {name}")
            elif name == "pytest.mark.skipif" and "CI" not in ast.unparse(node):
                found.append(f"{path.relative_to(ROOT)}:{node.lineno}: skipif without CI")
        elif isinstance(node, ast.Attribute) and _dotted(node) == "pytest.mark.skip":
            found.append(f"{path.relative_to(ROOT)}:{node.lineno}: pytest.mark.skip")
    return found


def test_every_skip_fails_under_ci():
    paths = [p for base in ("tests", "slurm_prolog") for p in (ROOT / base).rglob("*.py") if p.resolve() not in ALLOWED]
    found = [skip for path in sorted(paths) for skip in silent_skips(path)]
    assert found == []


def test_skip_or_fail(monkeypatch):
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="no stack"):
        skipping.skip_or_fail("no stack")
    monkeypatch.setenv("CI", "")
    with pytest.raises(pytest.skip.Exception, match="no stack"):
        skipping.skip_or_fail("no stack")

"""The GPU Job Queue Server's answers, as its documentation shows them, and a field-by-field check.

tests/seed_examples/ holds the seed's examples copied from its admin guide (seed 003): the
`/api/dashboard` response and the `/api/nodes` list. Where the guide elides a list (`[...]`:
`node_statistics`, `active_jobs`, `recent_jobs`) the file has `[]`; `node_statistics` entries are
then checked against the `/api/nodes` example. Used by the unit tests (tests/jobqueue) and the
stack test through Apache (tests/integration).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

EXAMPLES = Path(__file__).resolve().parent / "seed_examples"

# Fields that are null when there is nothing to show (an idle node has no current job).
NULLABLE = frozenset({"current_job"})
# Objects keyed by something other than a field name: every value has the example's one value's shape.
KEYED_BY_NAME = frozenset({"user_statistics"})


def example(name: str) -> Any:
    return json.loads((EXAMPLES / f"{name}.json").read_text(encoding="utf-8"))


def _type_name(value: Any) -> str:
    return "null" if value is None else type(value).__name__


def mismatches(expected: Any, actual: Any, path: str = "$", *, templates: dict[str, Any] | None = None) -> list[str]:
    """Where `actual` lacks a field of `expected` or has another JSON type there (extra fields are fine).

    bool is not int and int is not float: JSON clients see the difference. `templates` gives the
    element shape of lists the example leaves empty, by field name.
    """
    templates = templates or {}
    key = path.rsplit(".", 1)[-1].split("[", 1)[0]
    if actual is None:
        return [] if key in NULLABLE else [f"{path}: null, the seed has {_type_name(expected)}"]
    if type(actual) is not type(expected):
        return [f"{path}: {_type_name(actual)}, the seed has {_type_name(expected)}"]
    problems: list[str] = []
    if isinstance(expected, dict):
        if key in KEYED_BY_NAME and expected:
            shape = next(iter(expected.values()))
            for name, value in actual.items():
                problems += mismatches(shape, value, f"{path}.{name}", templates=templates)
            return problems
        for field, value in expected.items():
            if field not in actual:
                problems.append(f"{path}.{field}: missing")
            else:
                problems += mismatches(value, actual[field], f"{path}.{field}", templates=templates)
    elif isinstance(expected, list):
        shape = expected[0] if expected else templates.get(key)
        if shape is not None:
            for index, value in enumerate(actual):
                problems += mismatches(shape, value, f"{path}[{index}]", templates=templates)
    return problems


def dashboard_mismatches(body: Any) -> list[str]:
    return mismatches(example("dashboard"), body, templates={"node_statistics": example("nodes")[0]})


def nodes_mismatches(body: Any) -> list[str]:
    return mismatches(example("nodes"), body)

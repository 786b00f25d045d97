"""The OpenAPI schema each user gets lists only what their access rules let them call.

Every signed-in user may read /api/schema/, which listed the staff and service endpoints (the
job-queue dashboard, the job-script uploads and reads) to everyone. This drf-spectacular
postprocessing hook drops the paths whose rule (userportal.access) the requesting user can never
pass, and the component schemas only they used. The schema built without a request (the
`spectacular` command) keeps everything.
"""

from __future__ import annotations

import re
from typing import Any

from django.urls import Resolver404, resolve

from userportal.access import Rule, is_service_account, route_table

_PARAMETER = re.compile(r"\{[^}/]+\}")
_REF = "#/components/schemas/"


def _rule(path: str) -> Rule | None:
    try:
        match = resolve(_PARAMETER.sub("1", path))  # a sample URL: every converter takes "1"
    except Resolver404:
        return None
    return route_table().get(match.route.replace("^", ""))


def may_ever_use(rule: Rule | None, user: Any) -> bool:
    """Whether `user` passes `rule` for some URL (their own username or account for OWNER and the like)."""
    if rule is None or rule in (Rule.STAFF, Rule.ADMIN, Rule.STAFF_OR_PERMISSION):
        return bool(user.is_staff)
    if rule is Rule.SERVICE:
        return bool(user.is_staff) or is_service_account(user)
    return True


def _refs(node: Any) -> set[str]:
    if isinstance(node, dict):
        found = {node["$ref"][len(_REF) :]} if str(node.get("$ref", "")).startswith(_REF) else set()
        return found.union(*(_refs(value) for value in node.values()))
    if isinstance(node, list):
        return set().union(*(_refs(value) for value in node))
    return set()


def hide_unusable_paths(result: dict[str, Any], generator: Any, request: Any, public: bool) -> dict[str, Any]:
    user = getattr(request, "user", None)
    if user is None:
        return result
    result["paths"] = {path: item for path, item in result.get("paths", {}).items() if may_ever_use(_rule(path), user)}
    schemas = result.get("components", {}).get("schemas")
    if schemas:
        keep, todo = set(), _refs(result["paths"])
        while todo:
            name = todo.pop()
            if name not in keep and name in schemas:
                keep.add(name)
                todo |= _refs(schemas[name])
        result["components"]["schemas"] = {name: schema for name, schema in schemas.items() if name in keep}
    return result

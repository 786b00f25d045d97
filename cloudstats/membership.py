"""Which OpenStack projects a portal user belongs to (CLOUDSTATS_MEMBERSHIP).

* ``file``: a YAML file in TrailblazingTurtle's format (CLOUDSTATS_PROJECTS_FILE)::

      projects:
        physics:
          members: [alice, bob]

* ``ldap``: the groups whose filter CLOUDSTATS_LDAP_GROUP_FILTER finds for the user (by default
  posixGroups with ``memberUid=<user>``); the project is the group's CLOUDSTATS_LDAP_PROJECT_ATTR.
* ``keystone``: the OpenStack identity service's role assignments (REST API v3): the projects on
  which the user (by name, in CLOUDSTATS_KEYSTONE_USER_DOMAIN_ID) holds any role, effective (through
  groups too). The portal signs in with a password or an application credential.
* empty: no source; nobody is a member of anything (staff still see every project).

Project names are those the exporters report (nova writes the project's name into the domain XML).
Answers are cached for CLOUDSTATS_CACHE_SECONDS; a source that fails raises
CloudMembershipUnavailable (a notice on pages, a 503 for JSON) and is not asked again for 30 s.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path
from typing import Any

import requests
import yaml
from django.conf import settings
from django.core.cache import cache
from django.utils.translation import gettext_lazy

from userportal.directory import bound, describe, text
from userportal.errors import DataSourceError
from userportal.sources import DownMemory

logger = logging.getLogger(__name__)

DOWN = DownMemory("cloudstats:membership-down")


class CloudMembershipUnavailable(DataSourceError):
    source = "cloud-membership"
    user_message = gettext_lazy(
        "Your cloud projects cannot be listed right now: the directory of project members is not answering."
    )


def projects_of(username: str) -> frozenset[str]:
    """The projects ``username`` is a member of (cached)."""
    source = settings.CLOUDSTATS_MEMBERSHIP
    if not source or not username:
        return frozenset()
    key = "cloudstats:projects:" + hashlib.sha256(f"{source}\0{username}".encode()).hexdigest()[:32]
    ttl = settings.CLOUDSTATS_CACHE_SECONDS
    cached = cache.get(key) if ttl else None
    if cached is not None:
        return frozenset(cached)
    if DOWN.recent():
        raise CloudMembershipUnavailable(f"{source} failed moments ago; not asking again yet")
    try:
        projects = frozenset(READERS[source](username))
    except CloudMembershipUnavailable:
        DOWN.remember()
        raise
    if ttl:
        cache.set(key, sorted(projects), ttl)
    return projects


def is_member(username: str, project: str) -> bool:
    return project in projects_of(username)


# --- file ---------------------------------------------------------------------------------------
def from_file(username: str) -> set[str]:
    path = Path(settings.CLOUDSTATS_PROJECTS_FILE)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError) as exc:
        logger.warning("cloud projects file %s: %s", path, exc)
        raise CloudMembershipUnavailable(f"{path}: {exc}") from exc
    projects = data.get("projects") if isinstance(data, dict) else None
    if not isinstance(projects, dict):
        raise CloudMembershipUnavailable(f"{path}: no 'projects:' mapping")
    found = set()
    for name, entry in projects.items():
        members = entry.get("members") if isinstance(entry, dict) else None
        if isinstance(members, list) and username in (str(member) for member in members):
            found.add(str(name))
    return found


# --- LDAP ---------------------------------------------------------------------------------------
def from_ldap(username: str) -> set[str]:
    import ldap
    from ldap.filter import escape_filter_chars

    attr = settings.CLOUDSTATS_LDAP_PROJECT_ATTR
    try:
        with bound(
            settings.CLOUDSTATS_LDAP_SERVER_URI,
            settings.CLOUDSTATS_LDAP_BIND_DN,
            settings.CLOUDSTATS_LDAP_BIND_PASSWORD,
            start_tls=settings.CLOUDSTATS_LDAP_START_TLS,
            timeout=settings.CLOUDSTATS_LDAP_TIMEOUT,
        ) as conn:
            entries = conn.search_ext_s(
                settings.CLOUDSTATS_LDAP_GROUP_SEARCH_BASE,
                ldap.SCOPE_SUBTREE,
                settings.CLOUDSTATS_LDAP_GROUP_FILTER % {"user": escape_filter_chars(username)},
                [attr],
                timeout=settings.CLOUDSTATS_LDAP_TIMEOUT,
            )
    except ldap.LDAPError as exc:
        logger.warning("LDAP search for the cloud projects of %s failed: %s", username, describe(exc))
        raise CloudMembershipUnavailable(f"LDAP: {describe(exc)}") from exc
    found: set[str] = set()
    for dn, attrs in entries:
        if dn is None:  # a search continuation reference (referrals are not followed)
            continue
        values = {name.lower(): items for name, items in attrs.items()}
        found.update(text(value) for value in values.get(attr.lower(), []))
    return found


# --- Keystone (OpenStack identity, REST API v3) ---------------------------------------------------
SERVICE_SESSION_KEY = "cloudstats:keystone-session"  # the cache key of the service token


def _keystone(method: str, path: str, **kwargs: Any) -> requests.Response:
    url = settings.CLOUDSTATS_KEYSTONE_URL.rstrip("/") + path
    try:
        response = requests.request(method, url, timeout=settings.CLOUDSTATS_KEYSTONE_TIMEOUT, **kwargs)
    except requests.RequestException as exc:
        raise CloudMembershipUnavailable(f"keystone {path}: {exc}") from exc
    if response.status_code >= 400:
        raise CloudMembershipUnavailable(f"keystone {path}: HTTP {response.status_code}")
    return response


def _get(path: str, params: dict[str, str]) -> Any:
    """GET with the service token; a token keystone no longer accepts (401) is replaced once."""
    for attempt in (1, 2):
        headers = {"X-Auth-Token": _token(), "Accept": "application/json"}
        try:
            return _keystone("GET", path, headers=headers, params=params).json()
        except CloudMembershipUnavailable as exc:
            if attempt == 2 or not str(exc).endswith("HTTP 401"):
                raise
            cache.delete(SERVICE_SESSION_KEY)
        except ValueError as exc:
            raise CloudMembershipUnavailable(f"keystone {path}: not JSON") from exc
    raise AssertionError("unreachable")


def keystone_auth_body() -> dict[str, Any]:
    """The body of POST /v3/auth/tokens: an application credential, or a password with a scope."""
    if settings.CLOUDSTATS_KEYSTONE_APP_CREDENTIAL_ID:
        identity: dict[str, Any] = {
            "methods": ["application_credential"],
            "application_credential": {
                "id": settings.CLOUDSTATS_KEYSTONE_APP_CREDENTIAL_ID,
                "secret": settings.CLOUDSTATS_KEYSTONE_APP_CREDENTIAL_SECRET,
            },
        }
        return {"auth": {"identity": identity}}  # the credential carries its own scope
    identity = {
        "methods": ["password"],
        "password": {
            "user": {
                "name": settings.CLOUDSTATS_KEYSTONE_USERNAME,
                "domain": {"id": settings.CLOUDSTATS_KEYSTONE_USER_DOMAIN_ID},
                "password": settings.CLOUDSTATS_KEYSTONE_PASSWORD,
            }
        },
    }
    project = settings.CLOUDSTATS_KEYSTONE_PROJECT
    scope: dict[str, Any] = (
        {"project": {"name": project, "domain": {"id": settings.CLOUDSTATS_KEYSTONE_PROJECT_DOMAIN_ID}}}
        if project
        else {"system": {"all": True}}
    )
    return {"auth": {"identity": identity, "scope": scope}}


def _token() -> str:
    token = cache.get(SERVICE_SESSION_KEY)
    if token:
        return str(token)
    response = _keystone("POST", "/v3/auth/tokens", json=keystone_auth_body())
    token = response.headers.get("X-Subject-Token", "")
    if not token:
        raise CloudMembershipUnavailable("keystone: no X-Subject-Token in the answer")
    cache.set(SERVICE_SESSION_KEY, token, 600)  # well within keystone's default token lifetime (1 h)
    return str(token)


def from_keystone(username: str) -> set[str]:
    try:
        users = _get("/v3/users", {"name": username, "domain_id": settings.CLOUDSTATS_KEYSTONE_USER_DOMAIN_ID})["users"]
        if not users:
            return set()
        params = {"user.id": users[0]["id"], "effective": "", "include_names": "true"}
        assignments = _get("/v3/role_assignments", params)["role_assignments"]
    except (KeyError, TypeError, IndexError) as exc:
        raise CloudMembershipUnavailable(f"keystone: unexpected answer ({exc})") from exc
    return {
        str(item["scope"]["project"]["name"])
        for item in assignments
        if isinstance(item, dict) and "name" in item.get("scope", {}).get("project", {})
    }


READERS = {"file": from_file, "ldap": from_ldap, "keystone": from_keystone}

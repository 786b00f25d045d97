"""django-auth-ldap settings from the portal's environment variables.

Staff status comes from membership of AUTH_LDAP_STAFF_GROUP_DN. Directories without the
paged-results control work: these searches never request it. Imported by settings.py, so it
must not import django.contrib.auth.
"""

from __future__ import annotations

from typing import Any

from userportal.conf import env, strict_bool, strict_choice, strict_float


def ldap_settings() -> dict[str, Any]:
    import ldap
    from django_auth_ldap.config import GroupOfNamesType, LDAPSearch, MemberDNGroupType, PosixGroupType

    result: dict[str, Any] = {
        "AUTH_LDAP_BIND_DN": env.str("AUTH_LDAP_BIND_DN", default=""),
        "AUTH_LDAP_BIND_PASSWORD": env.str("AUTH_LDAP_BIND_PASSWORD", default=""),
        "AUTH_LDAP_START_TLS": strict_bool("AUTH_LDAP_START_TLS", default=False),
        "AUTH_LDAP_USER_ATTR_MAP": {"first_name": "givenName", "last_name": "sn", "email": "mail"},
        "AUTH_LDAP_ALWAYS_UPDATE_USER": True,
        "AUTH_LDAP_CONNECTION_OPTIONS": {
            ldap.OPT_REFERRALS: 0,
            ldap.OPT_NETWORK_TIMEOUT: strict_float("AUTH_LDAP_TIMEOUT", default=5.0, minimum=0.1),
        },
        "AUTH_LDAP_CACHE_TIMEOUT": 300,
    }
    dn_template = env.str("AUTH_LDAP_USER_DN_TEMPLATE", default="")
    if dn_template:
        result["AUTH_LDAP_USER_DN_TEMPLATE"] = dn_template
    else:
        base = env.str("AUTH_LDAP_USER_SEARCH_BASE")
        result["AUTH_LDAP_USER_SEARCH"] = LDAPSearch(
            base, ldap.SCOPE_SUBTREE, env.str("AUTH_LDAP_USER_FILTER", default="(uid=%(user)s)")
        )
    staff_group = env.str("AUTH_LDAP_STAFF_GROUP_DN", default="")
    group_base = env.str("AUTH_LDAP_GROUP_SEARCH_BASE", default="")
    if group_base:
        kind = strict_choice(
            "AUTH_LDAP_GROUP_TYPE", default="groupOfNames", choices=("groupOfNames", "posixGroup", "member")
        )
        result["AUTH_LDAP_GROUP_SEARCH"] = LDAPSearch(group_base, ldap.SCOPE_SUBTREE, "(objectClass=*)")
        result["AUTH_LDAP_GROUP_TYPE"] = {
            "groupOfNames": GroupOfNamesType(),
            "posixGroup": PosixGroupType(),
            "member": MemberDNGroupType("member"),
        }[kind]
    if staff_group:
        result["AUTH_LDAP_USER_FLAGS_BY_GROUP"] = {"is_staff": staff_group}
        result["AUTH_LDAP_FIND_GROUP_PERMS"] = False
    return result

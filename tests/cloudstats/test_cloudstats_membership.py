"""Who belongs to which cloud project: TrailblazingTurtle's YAML, LDAP groups, keystone role assignments.

The LDAP directory and the keystone API are faked at their boundary (python-ldap's connection,
requests.request) here; tests/integration/test_cloudstats_stack.py asks the stack's real slapd.
"""

from __future__ import annotations

import ldap
import pytest

from cloudstats import membership
from cloudstats.membership import CloudMembershipUnavailable, projects_of


def test_the_file_in_trailblazingturtles_format(settings, tmp_path):
    path = tmp_path / "projects.yaml"
    path.write_text(
        "projects:\n  physics:\n    members: [alice, bob]\n  chem:\n    members:\n      - bob\n  empty: {}\n"
    )
    settings.CLOUDSTATS_MEMBERSHIP, settings.CLOUDSTATS_PROJECTS_FILE = "file", str(path)
    assert projects_of("bob") == {"physics", "chem"}
    assert projects_of("alice") == {"physics"}
    assert projects_of("dave") == set()
    path.write_text("projects: {}\n")
    assert projects_of("bob") == {"physics", "chem"}  # cached (CLOUDSTATS_CACHE_SECONDS)


@pytest.mark.parametrize("content", ["projects: [a, b]\n", "{{{ not yaml", "nothing: here\n"])
def test_a_broken_file_is_an_outage_remembered_for_a_while(settings, tmp_path, content):
    path = tmp_path / "projects.yaml"
    path.write_text(content)
    settings.CLOUDSTATS_MEMBERSHIP, settings.CLOUDSTATS_PROJECTS_FILE = "file", str(path)
    with pytest.raises(CloudMembershipUnavailable):
        projects_of("alice")
    path.write_text("projects:\n  physics:\n    members: [alice]\n")
    with pytest.raises(CloudMembershipUnavailable, match="moments ago"):
        projects_of("alice")


def test_no_source_means_no_member(settings):
    settings.CLOUDSTATS_MEMBERSHIP = ""
    assert projects_of("alice") == set()


class FakeLdap:
    def __init__(self, entries, fail=None):
        self.entries, self.fail, self.calls = entries, fail, []

    def set_option(self, *args):
        pass

    def start_tls_s(self):
        self.calls.append("starttls")

    def simple_bind_s(self, dn, password):
        if self.fail:
            raise self.fail
        self.calls.append(("bind", dn))

    def search_ext_s(self, base, scope, filterstr, attrs, timeout):
        self.calls.append(("search", base, filterstr, attrs))
        return self.entries

    def unbind_s(self):
        self.calls.append("unbind")


def test_ldap_groups_are_projects(settings, monkeypatch):
    conn = FakeLdap([("cn=physics,ou=groups,dc=example,dc=org", {"cn": [b"physics"]}), (None, ["ldap://ref"])])
    monkeypatch.setattr(ldap, "initialize", lambda uri: conn)
    settings.CLOUDSTATS_MEMBERSHIP = "ldap"
    settings.CLOUDSTATS_LDAP_GROUP_SEARCH_BASE = "ou=groups,dc=example,dc=org"
    settings.CLOUDSTATS_LDAP_BIND_DN = "cn=reader"
    assert projects_of("al*ce") == {"physics"}
    search = next(call for call in conn.calls if call[0] == "search")
    assert search[2] == r"(&(objectClass=posixGroup)(memberUid=al\2ace))"  # the name is escaped
    assert conn.calls[-1] == "unbind"


def test_an_unreachable_directory_is_an_outage(settings, monkeypatch):
    monkeypatch.setattr(ldap, "initialize", lambda uri: FakeLdap([], fail=ldap.SERVER_DOWN({"desc": "down"})))
    settings.CLOUDSTATS_MEMBERSHIP = "ldap"
    with pytest.raises(CloudMembershipUnavailable):
        projects_of("alice")


class Answer:
    def __init__(self, status, body=None, headers=None):
        self.status_code, self.body, self.headers = status, body, headers or {}

    def json(self):
        return self.body


@pytest.fixture
def keystone(settings, monkeypatch):
    settings.CLOUDSTATS_MEMBERSHIP = "keystone"
    settings.CLOUDSTATS_KEYSTONE_URL = "https://keystone.example.org:5000/"
    settings.CLOUDSTATS_KEYSTONE_USERNAME, settings.CLOUDSTATS_KEYSTONE_PASSWORD = "portal", "secret"
    calls = []
    answers = {
        ("POST", "/v3/auth/tokens"): Answer(201, {"token": {}}, {"X-Subject-Token": "tok"}),
        ("GET", "/v3/users"): Answer(200, {"users": [{"id": "u1", "name": "bob"}]}),
        ("GET", "/v3/role_assignments"): Answer(
            200,
            {
                "role_assignments": [
                    {"scope": {"project": {"id": "p1", "name": "physics"}}, "role": {"name": "member"}},
                    {"scope": {"project": {"id": "p2", "name": "chem"}}, "role": {"name": "reader"}},
                    {"scope": {"domain": {"id": "default"}}, "role": {"name": "admin"}},
                ]
            },
        ),
    }

    def request(method, url, **kwargs):
        path = url.removeprefix("https://keystone.example.org:5000")
        calls.append((method, path, kwargs))
        return answers[(method, path)]

    monkeypatch.setattr(membership.requests, "request", request)
    return calls, answers


def test_keystone_role_assignments_are_projects(keystone, settings):
    calls, _answers = keystone
    settings.CLOUDSTATS_CACHE_SECONDS = 0  # no cache of the answer (the service token stays cached)
    assert projects_of("bob") == {"physics", "chem"}
    auth, users, assignments = calls
    body = auth[2]["json"]["auth"]
    assert body["identity"]["password"]["user"] == {"name": "portal", "domain": {"id": "default"}, "password": "secret"}
    assert body["scope"] == {"system": {"all": True}}
    assert users[2]["params"] == {"name": "bob", "domain_id": "default"}
    assert users[2]["headers"]["X-Auth-Token"] == "tok"
    assert assignments[2]["params"] == {"user.id": "u1", "effective": "", "include_names": "true"}
    projects_of("bob")
    assert [call[:2] for call in calls[3:]] == [("GET", "/v3/users"), ("GET", "/v3/role_assignments")]  # token kept


def test_keystone_with_an_application_credential(keystone, settings):
    settings.CLOUDSTATS_KEYSTONE_APP_CREDENTIAL_ID, settings.CLOUDSTATS_KEYSTONE_APP_CREDENTIAL_SECRET = "ac", "s"
    assert membership.keystone_auth_body() == {
        "auth": {
            "identity": {"methods": ["application_credential"], "application_credential": {"id": "ac", "secret": "s"}}
        }
    }


def test_keystone_unknown_user_and_errors(keystone):
    calls, answers = keystone
    answers[("GET", "/v3/users")] = Answer(200, {"users": []})
    assert projects_of("nobody") == set()
    answers[("GET", "/v3/users")] = Answer(401, {"error": {}})
    with pytest.raises(CloudMembershipUnavailable, match="HTTP 401"):
        projects_of("bob")
    # a refused token was replaced once before giving up
    assert [call[:2] for call in calls[-3:]] == [
        ("GET", "/v3/users"),
        ("POST", "/v3/auth/tokens"),
        ("GET", "/v3/users"),
    ]
    answers[("GET", "/v3/users")] = Answer(500, None)
    with pytest.raises(CloudMembershipUnavailable, match="moments ago"):
        projects_of("carol")  # the failure is remembered: not asked again at once

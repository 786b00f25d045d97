"""manage.py drf_create_token (TrailblazingTurtle's documented command) and create_service_account."""

from __future__ import annotations

import io
import re

import pytest
from django.contrib.auth.models import Group
from django.core.cache import cache
from django.core.management import CommandError, call_command
from rest_framework.test import APIClient

from userportal.access import SERVICE_GROUP, is_service_account
from userportal.models import ApiToken
from userportal.tokens import find_token, forget_cached_tokens

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def run(*args: str) -> tuple[str, str]:
    out, err = io.StringIO(), io.StringIO()
    call_command(*args, stdout=out, stderr=err)
    return out.getvalue(), err.getvalue()


def upload_with(key: str):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
    return client.post("/api/jobscripts/", {"id_job": 31, "submit_script": "echo\n"}, format="json")


def test_drf_create_token_prints_a_working_key_in_drfs_words(personas):
    out, _err = run("drf_create_token", "staffer")
    match = re.fullmatch(r"Generated token (\S+) for user staffer\n", out)
    assert match, out
    assert find_token(match.group(1)).user == personas.staff
    assert upload_with(match.group(1)).status_code == 201


def test_drf_create_token_without_reset_keeps_the_previous_tokens(personas):
    first = run("drf_create_token", "staffer")[0].split()[2]
    second = run("drf_create_token", "staffer")[0].split()[2]
    assert first != second
    assert not find_token(first).revoked
    assert not find_token(second).revoked


@pytest.mark.parametrize("flag", ["-r", "--reset"])
def test_drf_create_token_reset_revokes_the_previous_tokens(personas, flag):
    first = run("drf_create_token", "staffer")[0].split()[2]
    second = run("drf_create_token", "staffer", flag)[0].split()[2]
    assert find_token(first).revoked
    assert not find_token(second).revoked
    assert upload_with(first).status_code == 401


def test_drf_create_token_for_an_unknown_user_fails(db):
    with pytest.raises(CommandError, match="user nobody does not exist"):
        run("drf_create_token", "nobody")


def test_drf_create_token_with_expiry_and_dry_run(personas):
    run("drf_create_token", "staffer", "--expires-days", "30")
    assert ApiToken.objects.get(user=personas.staff).expires is not None
    run("drf_create_token", "staffer", "--dry-run")
    assert ApiToken.objects.filter(user=personas.staff).count() == 1


def test_create_service_account_makes_a_passwordless_non_staff_member_of_the_group(slurm, django_user_model):
    out, err = run("create_service_account", "slurm-prolog-testcluster")
    key = out.strip()
    user = django_user_model.objects.get(username="slurm-prolog-testcluster")
    assert is_service_account(user)
    assert not user.is_staff
    assert not user.is_superuser
    assert not user.has_usable_password()
    assert "Created service account" in err
    assert find_token(key).user == user
    assert upload_with(key).status_code == 201


def test_create_service_account_again_issues_another_token(slurm):
    first = run("create_service_account", "prolog")[0].strip()
    second, err = run("create_service_account", "prolog")
    assert "exists" in err
    assert not find_token(first).revoked
    third = run("create_service_account", "prolog", "--reset")[0].strip()
    assert find_token(first).revoked
    assert find_token(second.strip()).revoked
    assert not find_token(third).revoked


def test_create_service_account_refuses_to_convert_a_person(personas):
    with pytest.raises(CommandError, match="not a service account"):
        run("create_service_account", "owner")
    assert not Group.objects.filter(name=SERVICE_GROUP, user=personas.owner).exists()


def test_create_service_account_dry_run_changes_nothing(db, django_user_model):
    run("create_service_account", "prolog", "--dry-run")
    assert not django_user_model.objects.filter(username="prolog").exists()


def _days_left(token: ApiToken) -> float:
    from django.utils import timezone

    return (token.expires - timezone.now()).total_seconds() / 86400


@pytest.mark.parametrize("command", [("drf_create_token", "staffer"), ("create_service_account", "prolog")])
def test_tokens_expire_after_api_token_days_by_default(personas, settings, command):
    settings.API_TOKEN_DAYS = 90
    _out, err = run(*command)
    token = ApiToken.objects.get(user__username=command[1])
    assert 89.9 < _days_left(token) <= 90
    assert "expires on" in err


@pytest.mark.parametrize("command", [("drf_create_token", "staffer"), ("create_service_account", "prolog")])
def test_expiry_options_override_the_default(personas, settings, command):
    settings.API_TOKEN_DAYS = 90
    run(*command, "--expires-days", "7")
    assert 6.9 < _days_left(ApiToken.objects.get(user__username=command[1])) <= 7
    _out, err = run(*command, "--no-expiry", "--reset")
    assert ApiToken.objects.get(user__username=command[1], revoked=False).expires is None
    assert "never expires" in err
    with pytest.raises(CommandError, match="at least 1"):
        run(*command, "--expires-days", "0")
    with pytest.raises(CommandError, match="not allowed with"):
        run(*command, "--expires-days", "3", "--no-expiry")


def test_api_token_days_zero_means_no_expiry(personas, settings):
    settings.API_TOKEN_DAYS = 0
    run("drf_create_token", "staffer")
    assert ApiToken.objects.get(user=personas.staff).expires is None


def test_an_expired_service_token_is_refused(personas):
    from datetime import timedelta

    from django.utils import timezone

    key = run("create_service_account", "prolog", "--expires-days", "1")[0].strip()
    assert upload_with(key).status_code == 201
    ApiToken.objects.filter(user__username="prolog").update(expires=timezone.now() - timedelta(seconds=1))
    cache.clear()  # a looked-up token is trusted TOKEN_CACHE_SECONDS: an edit of its row shows after that
    forget_cached_tokens()  # (and this process's copy)
    assert upload_with(key).status_code == 401


def test_a_single_cluster_sites_service_token_is_bound_to_its_cluster(slurm):
    _out, err = run("create_service_account", "prolog")
    assert ApiToken.objects.get(user__username="prolog").cluster == "testcluster"
    assert "uploads for cluster testcluster" in err


def test_with_several_clusters_the_service_account_names_its_cluster(slurm, settings, django_user_model):
    settings.SLURM_CLUSTERS = ["testcluster", "othercluster"]
    with pytest.raises(CommandError, match="--cluster NAME"):
        run("create_service_account", "prolog")
    assert not django_user_model.objects.filter(username="prolog").exists()
    with pytest.raises(CommandError, match="Unknown cluster 'nope'"):
        run("create_service_account", "prolog", "--cluster", "nope")
    run("create_service_account", "prolog", "--cluster", "othercluster")
    assert ApiToken.objects.get(user__username="prolog").cluster == "othercluster"
    run("create_service_account", "prolog", "--any-cluster", "--reset")
    assert ApiToken.objects.get(user__username="prolog", revoked=False).cluster == ""

"""API tokens: stored hashed, accepted as `Token` or `Bearer`, refused with 401 when bad, revoked or expired."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
from django.core.cache import cache
from django.urls import reverse
from django.utils import timezone
from rest_framework.test import APIClient

from userportal.models import ApiToken
from userportal.tokens import LAST_USED_RESOLUTION, find_token, forget_cached_tokens, issue_token

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

UPLOAD = "/api/jobscripts/"
SCRIPT = "#!/bin/bash\nsrun hostname\n"


def upload(client: APIClient, id_job: int = 4242):
    return client.post(UPLOAD, {"id_job": id_job, "submit_script": SCRIPT}, format="json")


def test_issued_key_is_long_random_and_only_its_hash_is_stored(service_account):
    token = ApiToken.objects.get(user=service_account.user)
    assert len(service_account.key) >= 40
    assert token.key_hash == hashlib.sha256(service_account.key.encode()).hexdigest()
    assert token.prefix == service_account.key[:8]
    stored = [str(value) for value in ApiToken.objects.values_list(flat=False).get(pk=token.pk)]
    assert service_account.key not in stored
    assert issue_token(service_account.user)[1] != service_account.key


def test_token_header_of_trailblazing_turtles_uploader_uploads(service_account, slurm):
    response = upload(service_account.client("Token"))
    assert response.status_code == 201, response.content


def test_bearer_header_works_too(service_account, slurm):
    assert upload(service_account.client("Bearer")).status_code == 201


def test_missing_token_is_401_with_a_challenge(slurm):
    response = upload(APIClient())
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Token")


@pytest.mark.parametrize("header", ["Token nosuchkey", "Token", "Token two words", "Bearer " + "x" * 300])
def test_bad_token_is_401(service_account, slurm, header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = upload(client)
    assert response.status_code == 401
    assert "WWW-Authenticate" in response.headers


def test_revoked_token_is_401(service_account, slurm):
    ApiToken.objects.filter(user=service_account.user).update(revoked=True)
    response = upload(service_account.client())
    assert response.status_code == 401
    assert "revoked" in response.json()["detail"]


def test_expired_token_is_401(service_account, slurm):
    ApiToken.objects.filter(user=service_account.user).update(expires=timezone.now() - timedelta(seconds=1))
    response = upload(service_account.client())
    assert response.status_code == 401
    assert "expired" in response.json()["detail"]


def test_token_that_expires_later_works(service_account, slurm):
    ApiToken.objects.filter(user=service_account.user).update(expires=timezone.now() + timedelta(days=1))
    assert upload(service_account.client()).status_code == 201


def test_token_of_an_inactive_user_is_401(service_account, slurm):
    service_account.user.is_active = False
    service_account.user.save()
    assert upload(service_account.client()).status_code == 401


def test_token_of_a_user_who_is_neither_service_account_nor_staff_is_403(personas, token_client):
    response = upload(token_client(personas.owner))
    assert response.status_code == 403


def test_staff_token_may_upload(personas, token_client):
    assert upload(token_client(personas.staff)).status_code == 201


def test_last_used_is_written_at_most_once_a_minute(service_account, slurm):
    client = service_account.client()
    upload(client, 1)
    first = ApiToken.objects.get(user=service_account.user).last_used
    assert first is not None
    upload(client, 2)
    assert ApiToken.objects.get(user=service_account.user).last_used == first
    ApiToken.objects.filter(user=service_account.user).update(last_used=first - LAST_USED_RESOLUTION)
    cache.clear()  # a looked-up token is trusted TOKEN_CACHE_SECONDS: an edit of its row shows after that
    forget_cached_tokens()  # (and this process's copy)
    upload(client, 3)
    assert ApiToken.objects.get(user=service_account.user).last_used > first


def test_find_token_looks_up_by_hash(service_account):
    assert find_token(service_account.key).user == service_account.user
    assert find_token(service_account.key + "x") is None


def test_a_session_still_works_for_staff_in_the_browser(personas, client):
    client.force_login(personas.staff)
    response = client.post(UPLOAD, {"id_job": 77, "submit_script": SCRIPT}, content_type="application/json")
    assert response.status_code == 201


def test_admin_lists_tokens_without_key_or_hash_and_revokes_them(service_account, django_user_model, client):
    admin = django_user_model.objects.create_superuser("root-admin", password="pw-admin")
    client.force_login(admin)
    token = ApiToken.objects.get(user=service_account.user)
    page = client.get(reverse("admin:userportal_apitoken_changelist")).content.decode()
    assert token.prefix in page
    assert service_account.key not in page
    assert token.key_hash not in page
    detail = client.get(reverse("admin:userportal_apitoken_change", args=[token.pk])).content.decode()
    assert token.key_hash not in detail
    assert client.get(reverse("admin:userportal_apitoken_add")).status_code == 403
    client.post(
        reverse("admin:userportal_apitoken_changelist"),
        {"action": "revoke", "_selected_action": [token.pk]},
    )
    token.refresh_from_db()
    assert token.revoked

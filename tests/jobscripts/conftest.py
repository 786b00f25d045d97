"""Fixtures for the job-script API: a service account with its token, and permission grants."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from django.contrib.auth.models import Group, Permission
from rest_framework.test import APIClient

from userportal.access import SERVICE_GROUP
from userportal.tokens import issue_token


@dataclass
class ServiceAccount:
    user: Any
    key: str

    def client(self, scheme: str = "Token") -> APIClient:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {self.key}")
        return client


@pytest.fixture
def service_account(db, django_user_model) -> ServiceAccount:
    user = django_user_model.objects.create_user("slurm-prolog")
    user.set_unusable_password()
    user.save()
    group, _ = Group.objects.get_or_create(name=SERVICE_GROUP)
    user.groups.add(group)
    _token, key = issue_token(user, name="prolog")
    return ServiceAccount(user=user, key=key)


@pytest.fixture
def grant():
    """grant(user, "view_jobscript", ...): give `user` jobstats model permissions."""

    def grant(user: Any, *codenames: str) -> None:
        for codename in codenames:
            user.user_permissions.add(Permission.objects.get(content_type__app_label="jobstats", codename=codename))

    return grant


@pytest.fixture
def token_client():
    """token_client(user): an API client sending a fresh token of `user`."""

    def token_client(user: Any) -> APIClient:
        _token, key = issue_token(user)
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Token {key}")
        return client

    return token_client

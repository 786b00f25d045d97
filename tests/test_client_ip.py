"""The client's address, the same for the audit log, django-axes and the API's rate limits:
REMOTE_ADDR, or with PORTAL_NUM_PROXIES proxies in front, the address the nearest one saw."""

from __future__ import annotations

import pytest
from django.test import Client, override_settings
from django.urls import reverse

from userportal.clientip import client_ip
from userportal.models import AuditEntry

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])


def test_portal_num_proxies_sets_drfs_proxy_count():
    from django.conf import settings

    assert settings.PORTAL_NUM_PROXIES == 0
    assert settings.REST_FRAMEWORK["NUM_PROXIES"] == 0


@pytest.mark.parametrize(
    ("proxies", "forwarded", "expected"),
    [
        (0, "203.0.113.1", "10.0.0.1"),
        (1, "203.0.113.1", "203.0.113.1"),
        (1, "198.51.100.9, 203.0.113.1", "203.0.113.1"),
        (2, "198.51.100.9, 203.0.113.1", "198.51.100.9"),
        (2, "203.0.113.1", "203.0.113.1"),
        (1, "", "10.0.0.1"),
        (1, "not-an-address", "10.0.0.1"),
    ],
)
def test_client_ip(rf, proxies, forwarded, expected):
    request = rf.get("/", REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=forwarded)
    with override_settings(PORTAL_NUM_PROXIES=proxies):
        assert client_ip(request) == expected


@override_settings(AXES_FAILURE_LIMIT=2)
def test_a_forged_forwarded_for_does_not_reset_the_sign_in_lockout():
    client = Client(REMOTE_ADDR="192.0.2.5")
    for n in range(2):
        client.post(reverse("login"), {"username": f"guess{n}", "password": "x"}, HTTP_X_FORWARDED_FOR=f"203.0.113.{n}")
    response = client.post(reverse("login"), {"username": "guess9", "password": "x"}, HTTP_X_FORWARDED_FOR="1.2.3.4")
    assert response.status_code == 429
    assert set(AuditEntry.objects.values_list("ip", flat=True)) == {"192.0.2.5"}


@override_settings(AXES_FAILURE_LIMIT=2, PORTAL_NUM_PROXIES=1)
def test_behind_a_proxy_the_lockout_and_the_audit_count_the_forwarded_address():
    proxy = Client(REMOTE_ADDR="10.0.0.1")
    for _ in range(2):
        proxy.post(reverse("login"), {"username": "x", "password": "x"}, HTTP_X_FORWARDED_FOR="192.0.2.5")
    other = proxy.post(reverse("login"), {"username": "y", "password": "x"}, HTTP_X_FORWARDED_FOR="192.0.2.6")
    assert other.status_code == 200  # another client behind the same proxy is not locked out
    assert AuditEntry.objects.filter(action="auth.login_failed", ip="192.0.2.6").exists()


def test_check_deploy_warns_about_rate_limits_in_process_memory(settings):
    from userportal.checks import check_throttle_cache

    settings.CACHES = {**settings.CACHES, "throttle": {"BACKEND": "django.core.cache.backends.locmem.LocMemCache"}}
    assert [m.id for m in check_throttle_cache()] == ["portal.W011"]
    redis = {"BACKEND": "django.core.cache.backends.redis.RedisCache", "LOCATION": "redis://127.0.0.1:6379/3"}
    settings.CACHES = {**settings.CACHES, "throttle": redis}
    assert check_throttle_cache() == []

"""Per-address rate limits count the client's real address: a forged X-Forwarded-For resets nothing."""

from __future__ import annotations

import pytest
from jobqueue_helpers import bearer

pytestmark = pytest.mark.django_db

JOBS = "/jobqueue/api/jobs"


def test_a_forged_forwarded_for_does_not_reset_the_per_address_limit(client, alice_key, settings):
    settings.JOBQUEUE_IP_RATES = {"jobs": "2/min"}
    for forged in ("", "203.0.113.1"):
        assert client.get(JOBS, HTTP_X_FORWARDED_FOR=forged, **bearer(alice_key)).status_code == 200
    for forged in ("203.0.113.2", "198.51.100.7, 203.0.113.3"):
        assert client.get(JOBS, HTTP_X_FORWARDED_FOR=forged, **bearer(alice_key)).status_code == 429


def test_behind_one_proxy_each_client_address_is_counted(client, alice_key, settings):
    # With PORTAL_NUM_PROXIES=1 the proxy's own entry (the last) is the client; what the client
    # put before it is ignored.
    settings.JOBQUEUE_IP_RATES = {"jobs": "1/min"}
    settings.REST_FRAMEWORK = {**settings.REST_FRAMEWORK, "NUM_PROXIES": 1}
    assert client.get(JOBS, HTTP_X_FORWARDED_FOR="198.51.100.1", **bearer(alice_key)).status_code == 200
    assert client.get(JOBS, HTTP_X_FORWARDED_FOR="203.0.113.9, 198.51.100.1", **bearer(alice_key)).status_code == 429
    assert client.get(JOBS, HTTP_X_FORWARDED_FOR="198.51.100.2", **bearer(alice_key)).status_code == 200

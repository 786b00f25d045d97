"""OpenID Connect discovery against the stack's provider (npm oidc-provider on 127.0.0.1:3000).

The stack's Apache names no endpoint, only OIDC_OP_DISCOVERY_URL (etc/apache/apache.env), so its
sign-in goes through discovery; the tests' own settings (portal.env) name the endpoints, which
must be what the provider's document says."""

from __future__ import annotations

import os
import re

import pytest
import requests
from django.test import override_settings
from test_login import oidc_login

from userportal.auth import oidc_discovery
from userportal.auth.oidc_discovery import discovered, endpoint


@pytest.fixture
def discovery(stack_dir):
    issuer = os.environ["PORTAL_STACK_OIDC_ISSUER"]
    oidc_discovery.clear_cache()
    with override_settings(
        OIDC_OP_DISCOVERY_URL=f"{issuer}/.well-known/openid-configuration",
        OIDC_OP_AUTHORIZATION_ENDPOINT="",
        OIDC_OP_TOKEN_ENDPOINT="",
        OIDC_OP_USER_ENDPOINT="",
        OIDC_OP_JWKS_ENDPOINT="",
    ):
        yield issuer
    oidc_discovery.clear_cache()


def test_the_providers_document_gives_the_endpoints_the_stack_names(discovery):
    found = discovered()
    assert found["issuer"] == discovery
    for name in oidc_discovery.ENDPOINTS:
        assert found[name] == os.environ[name], name  # portal.env's explicit endpoints
    keys = requests.get(endpoint("OIDC_OP_JWKS_ENDPOINT"), timeout=10).json()["keys"]
    assert any(key.get("alg") == "RS256" and key.get("kid") for key in keys)


def test_an_explicit_endpoint_still_wins_over_the_providers(discovery):
    with override_settings(OIDC_OP_USER_ENDPOINT="http://127.0.0.1:3000/me-through-a-proxy"):
        assert endpoint("OIDC_OP_USER_ENDPOINT") == "http://127.0.0.1:3000/me-through-a-proxy"
        assert endpoint("OIDC_OP_TOKEN_ENDPOINT") == f"{discovery}/token"


def test_apache_signs_in_through_the_discovered_endpoints(stack_dir):
    apache = os.environ["PORTAL_STACK_URL"]
    apache_env = (stack_dir / "etc" / "apache" / "apache.env").read_text()
    assert "export OIDC_OP_DISCOVERY_URL=" in apache_env
    assert re.search(r"^export OIDC_OP_TOKEN_ENDPOINT=''$", apache_env, flags=re.MULTILINE)
    response = oidc_login(apache, "staffer", "staffer-pw")
    assert response.status_code == 200
    assert "welcome, staffer" in response.text.lower()
    # The provider's login page came from the discovered authorization endpoint; the daemon said so.
    log = (stack_dir / "log" / "portal-apache.log").read_text()
    assert "OIDC discovery: authorization_endpoint=http://127.0.0.1:3000/auth" in log

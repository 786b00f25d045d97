"""OpenID Connect discovery (userportal.auth.oidc_discovery): a provider's document on a local
HTTP server fills the endpoints the settings leave empty; explicit settings win; an unreachable or
foreign document is an error line and a 503, never a redirect to nowhere."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

import pytest
from django.contrib.sessions.backends.db import SessionStore
from django.test import RequestFactory, override_settings
from django.urls import path
from mozilla_django_oidc.views import OIDCAuthenticationCallbackView
from test_settings import _settings_in_subprocess

from userportal.access import Rule, guard
from userportal.auth import oidc_discovery
from userportal.auth.oidc import PortalOIDCAuthenticateView, PortalOIDCBackend
from userportal.auth.oidc_discovery import DiscoveryUnavailable, discovered, endpoint
from userportal.middleware import ContentSecurityPolicyMiddleware

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

# The routes the sign-in button needs (ROOT_URLCONF of the view tests: OIDC is off in the test settings).
urlpatterns = [
    guard(
        Rule.PUBLIC,
        path("oidc/callback/", OIDCAuthenticationCallbackView.as_view(), name="oidc_authentication_callback"),
    ),
    guard(
        Rule.PUBLIC, path("oidc/authenticate/", PortalOIDCAuthenticateView.as_view(), name="oidc_authentication_init")
    ),
]

EMPTY = {
    "OIDC_RP_CLIENT_ID": "portal",
    "OIDC_RP_CLIENT_SECRET": "s",
    "OIDC_OP_AUTHORIZATION_ENDPOINT": "",
    "OIDC_OP_TOKEN_ENDPOINT": "",
    "OIDC_OP_USER_ENDPOINT": "",
    "OIDC_OP_JWKS_ENDPOINT": "",
    "OIDC_TIMEOUT": 2.0,
}


class Provider:
    """A provider's discovery document on 127.0.0.1; `document` may be changed, `hits` counts reads."""

    def __init__(self) -> None:
        provider = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                provider.hits += 1
                if self.path != "/realms/hpc/.well-known/openid-configuration" or provider.status != 200:
                    self.send_response(provider.status if provider.status != 200 else 404)
                    self.end_headers()
                    return
                body = json.dumps(provider.document).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.issuer = f"http://127.0.0.1:{self.server.server_address[1]}/realms/hpc"
        self.url = f"{self.issuer}/.well-known/openid-configuration"
        self.hits = 0
        self.status = 200
        self.document = {
            "issuer": self.issuer,
            "authorization_endpoint": f"{self.issuer}/protocol/openid-connect/auth",
            "token_endpoint": f"{self.issuer}/protocol/openid-connect/token",
            "userinfo_endpoint": f"{self.issuer}/protocol/openid-connect/userinfo",
            "jwks_uri": f"{self.issuer}/protocol/openid-connect/certs",
        }
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def provider():
    oidc_discovery.clear_cache()
    served = Provider()
    with override_settings(OIDC_OP_DISCOVERY_URL=served.url, **EMPTY):
        yield served
    served.server.shutdown()
    served.server.server_close()
    oidc_discovery.clear_cache()


def test_the_document_fills_every_empty_endpoint(provider):
    assert endpoint("OIDC_OP_AUTHORIZATION_ENDPOINT") == f"{provider.issuer}/protocol/openid-connect/auth"
    assert endpoint("OIDC_OP_TOKEN_ENDPOINT") == f"{provider.issuer}/protocol/openid-connect/token"
    assert endpoint("OIDC_OP_USER_ENDPOINT") == f"{provider.issuer}/protocol/openid-connect/userinfo"
    assert endpoint("OIDC_OP_JWKS_ENDPOINT") == f"{provider.issuer}/protocol/openid-connect/certs"
    assert provider.hits == 1  # read once, then kept


def test_an_explicit_endpoint_overrides_the_document(provider):
    with override_settings(OIDC_OP_TOKEN_ENDPOINT="https://proxy.example.org/token"):
        assert endpoint("OIDC_OP_TOKEN_ENDPOINT") == "https://proxy.example.org/token"
        assert provider.hits == 0
        assert endpoint("OIDC_OP_JWKS_ENDPOINT").endswith("/certs")


def test_without_a_discovery_url_the_settings_are_used_as_they_are():
    with override_settings(OIDC_OP_DISCOVERY_URL="", OIDC_OP_TOKEN_ENDPOINT="https://op.example.org/token"):
        assert discovered() == {}
        assert endpoint("OIDC_OP_TOKEN_ENDPOINT") == "https://op.example.org/token"


def test_the_document_is_read_again_after_an_hour_and_kept_when_that_fails(provider, monkeypatch, caplog):
    clock = [1000.0]
    monkeypatch.setattr(oidc_discovery.time, "monotonic", lambda: clock[0])
    first = endpoint("OIDC_OP_TOKEN_ENDPOINT")
    clock[0] += oidc_discovery.CACHE_SECONDS + 1
    provider.status = 500
    assert endpoint("OIDC_OP_TOKEN_ENDPOINT") == first  # the last good document
    assert "keeping the document read 3601 s ago" in caplog.text
    assert provider.hits == 2
    clock[0] += 1
    endpoint("OIDC_OP_TOKEN_ENDPOINT")
    assert provider.hits == 2  # not read again before RETRY_SECONDS
    clock[0] += oidc_discovery.RETRY_SECONDS
    provider.status = 200
    provider.document["token_endpoint"] = f"{provider.issuer}/token2"
    assert endpoint("OIDC_OP_TOKEN_ENDPOINT") == f"{provider.issuer}/token2"


def test_an_unreachable_provider_is_one_error_line_then_a_pause(monkeypatch, caplog):
    oidc_discovery.clear_cache()
    url = "http://127.0.0.1:9/.well-known/openid-configuration"
    with override_settings(OIDC_OP_DISCOVERY_URL=url, **EMPTY):
        with pytest.raises(DiscoveryUnavailable):
            endpoint("OIDC_OP_AUTHORIZATION_ENDPOINT")
        assert f"OIDC_OP_DISCOVERY_URL={url} cannot be used" in caplog.text
        calls = []
        monkeypatch.setattr(oidc_discovery.requests, "get", lambda *a, **k: calls.append(a))
        with pytest.raises(DiscoveryUnavailable):
            endpoint("OIDC_OP_TOKEN_ENDPOINT")
        assert calls == []  # within RETRY_SECONDS the error is remembered
    oidc_discovery.clear_cache()


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"issuer": "https://evil.example/realms/hpc"}, "is not the URL's"),
        ({"issuer": None}, "names no issuer"),
        ({"token_endpoint": "javascript:alert(1)"}, "token_endpoint is not an http(s) URL"),
    ],
)
def test_a_foreign_or_malformed_document_is_refused(provider, caplog, change, message):
    provider.document.update(change)
    with pytest.raises(DiscoveryUnavailable):
        endpoint("OIDC_OP_TOKEN_ENDPOINT")
    assert message in caplog.text


def test_a_document_without_an_endpoint_names_the_setting(provider, caplog):
    del provider.document["userinfo_endpoint"]
    with pytest.raises(DiscoveryUnavailable):
        endpoint("OIDC_OP_USER_ENDPOINT")
    assert "names no userinfo_endpoint; set OIDC_OP_USER_ENDPOINT" in caplog.text


def _request(path: str):
    request = RequestFactory().get(path)
    request.session = SessionStore()
    return request


@pytest.fixture
def oidc_urls(settings):
    settings.ROOT_URLCONF = __name__


def test_the_sign_in_button_redirects_to_the_discovered_endpoint(provider, oidc_urls):
    response = PortalOIDCAuthenticateView.as_view()(_request("/oidc/authenticate/?next=/"))
    assert response.status_code == 302
    target = urlsplit(response["Location"])
    assert f"{target.scheme}://{target.netloc}{target.path}" == f"{provider.issuer}/protocol/openid-connect/auth"
    assert parse_qs(target.query)["client_id"] == ["portal"]


def test_the_sign_in_button_is_a_503_page_while_the_provider_is_down(provider):
    provider.status = 503
    request = _request("/oidc/authenticate/")
    with pytest.raises(DiscoveryUnavailable) as raised:
        PortalOIDCAuthenticateView.as_view()(request)
    response = ContentSecurityPolicyMiddleware(lambda r: None).process_exception(request, raised.value)
    assert response is not None
    assert response.status_code == 503
    assert "The sign-in service (OpenID Connect) is not answering" in response.content.decode()


def test_the_callback_uses_the_discovered_endpoints(provider, monkeypatch):
    seen = {}

    def fake_authenticate(self, request, **kwargs):
        seen.update(token=self.OIDC_OP_TOKEN_ENDPOINT, user=self.OIDC_OP_USER_ENDPOINT, jwks=self.OIDC_OP_JWKS_ENDPOINT)

    monkeypatch.setattr("mozilla_django_oidc.auth.OIDCAuthenticationBackend.authenticate", fake_authenticate)
    PortalOIDCBackend().authenticate(_request("/oidc/callback/?code=c&state=s"))
    assert seen == {
        "token": f"{provider.issuer}/protocol/openid-connect/token",
        "user": f"{provider.issuer}/protocol/openid-connect/userinfo",
        "jwks": f"{provider.issuer}/protocol/openid-connect/certs",
    }


def test_a_password_sign_in_never_reads_the_document(provider):
    assert PortalOIDCBackend().authenticate(_request("/accounts/login/"), username="a", password="b") is None
    assert provider.hits == 0


def test_the_callback_fails_cleanly_while_the_provider_is_down(provider):
    provider.status = 503
    assert PortalOIDCBackend().authenticate(_request("/oidc/callback/?code=c&state=s")) is None


def test_a_discovery_url_replaces_the_endpoint_settings(tmp_path):
    show = "from django.urls import reverse; print(reverse('oidc_authentication_init'))"
    env = {"PORTAL_DEBUG": "true", "PORTAL_VAR_DIR": str(tmp_path), "OIDC_RP_CLIENT_ID": "portal"}
    ok = _settings_in_subprocess(
        show, OIDC_OP_DISCOVERY_URL="https://op.example.org/.well-known/openid-configuration", **env
    )
    assert ok.stdout.strip() == "/oidc/authenticate/", ok.stderr
    missing = _settings_in_subprocess(**env)
    assert "these are missing: OIDC_OP_AUTHORIZATION_ENDPOINT" in missing.stderr
    bad = _settings_in_subprocess(OIDC_OP_DISCOVERY_URL="op.example.org/.well-known/openid-configuration", **env)
    assert "OIDC_OP_DISCOVERY_URL='op.example.org/.well-known/openid-configuration' is not an http(s) URL" in bad.stderr

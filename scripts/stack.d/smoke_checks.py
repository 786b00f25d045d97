#!/usr/bin/env python3
"""Smoke checks that are easier in Python (standard library only). Used by `scripts/stack smoke`.

    smoke_checks.py oidc ISSUER CLIENT_ID CLIENT_SECRET REDIRECT_URI USER PASSWORD EXPECTED_GROUP
    smoke_checks.py mail HOST PORT MAILDIR
    smoke_checks.py jwt KEYFILE USER          (prints an HS256 token slurmrestd accepts)

Each prints one line of detail and exits 0 on success.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import http.cookiejar
import json
import mailbox
import secrets
import smtplib
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from email.message import EmailMessage


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def oidc(issuer: str, client_id: str, secret: str, redirect_uri: str, user: str, password: str, group: str) -> None:
    disc = json.load(urllib.request.urlopen(f"{issuer}/.well-known/openid-configuration", timeout=10))
    assert disc["issuer"] == issuer, disc["issuer"]
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar), NoRedirect)

    def go(url: str, data: bytes | None = None) -> tuple[int, str, str]:
        try:
            r = opener.open(urllib.request.Request(url, data=data), timeout=10)
            return r.status, r.headers.get("Location", ""), r.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.headers.get("Location", ""), e.read().decode(errors="replace")

    state, nonce = secrets.token_urlsafe(8), secrets.token_urlsafe(8)
    q = urllib.parse.urlencode(
        {
            "client_id": client_id,
            "response_type": "code",
            "scope": "openid profile email groups",
            "redirect_uri": redirect_uri,
            "state": state,
            "nonce": nonce,
        }
    )
    code, loc, _ = go(f"{disc['authorization_endpoint']}?{q}")
    assert code in (302, 303) and "/interaction/" in loc, (code, loc)
    url = urllib.parse.urljoin(issuer, loc)
    code, _, body = go(url)
    assert code == 200 and 'id="username"' in body, code
    # a wrong password is refused first
    code, _, body = go(url, urllib.parse.urlencode({"username": user, "password": password + "x"}).encode())
    assert code == 200 and 'id="error"' in body, code
    code, loc, _ = go(url, urllib.parse.urlencode({"username": user, "password": password}).encode())
    assert code in (302, 303), code
    for _ in range(5):  # /auth/<uid> resume -> redirect_uri?code=...
        if loc.startswith(redirect_uri):
            break
        code, loc, _ = go(urllib.parse.urljoin(issuer, loc))
    params = urllib.parse.parse_qs(urllib.parse.urlparse(loc).query)
    assert params.get("state") == [state] and "code" in params, loc
    data = urllib.parse.urlencode(
        {
            "grant_type": "authorization_code",
            "code": params["code"][0],
            "redirect_uri": redirect_uri,
            "client_id": client_id,
            "client_secret": secret,
        }
    ).encode()
    tok = json.load(urllib.request.urlopen(urllib.request.Request(disc["token_endpoint"], data=data), timeout=10))
    req = urllib.request.Request(disc["userinfo_endpoint"], headers={"Authorization": f"Bearer {tok['access_token']}"})
    claims = json.load(urllib.request.urlopen(req, timeout=10))
    assert claims.get("preferred_username") == user and claims.get("email") and group in claims.get("groups", []), (
        claims
    )
    print(f"code flow as {user}: userinfo {json.dumps(claims, sort_keys=True)}")


def mail(host: str, port: str, maildir: str) -> None:
    subject = f"stack smoke {secrets.token_hex(6)}"
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = "hpc-portal@localhost", "alice@example.org", subject
    msg.set_content("A mail round trip through aiosmtpd.")
    with smtplib.SMTP(host, int(port), timeout=10) as s:
        s.send_message(msg)
    box = mailbox.Maildir(maildir, create=False)
    for _ in range(50):
        for key, m in box.iteritems():
            if m["Subject"] == subject:
                assert m["X-RcptTo"] == "alice@example.org", m["X-RcptTo"]
                box.remove(key)
                print(f"delivered to {maildir} ({subject!r}, X-RcptTo {m['X-RcptTo']})")
                return
        time.sleep(0.1)
    raise AssertionError(f"{subject!r} not in {maildir}")


def _b64(b: bytes) -> str:
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def jwt(keyfile: str, user: str) -> None:
    key = open(keyfile, "rb").read()
    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps({"iat": now, "exp": now + 300, "sun": user}, separators=(",", ":")).encode())
    sig = _b64(hmac.new(key, f"{header}.{payload}".encode(), hashlib.sha256).digest())
    print(f"{header}.{payload}.{sig}")


def main() -> int:
    cmd, args = sys.argv[1], sys.argv[2:]
    checks: dict[str, Callable[..., None]] = {"oidc": oidc, "mail": mail, "jwt": jwt}
    try:
        checks[cmd](*args)
    except (AssertionError, OSError, KeyError, ValueError) as e:
        print(f"{type(e).__name__}: {e}"[:400])
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Fixtures of the uploader tests: a fake portal, a dead address, and a site under tmp_path."""

from __future__ import annotations

import socket

import pytest
from prolog_site import FakePortal, Site, serve


@pytest.fixture
def portal():
    fake = FakePortal()
    server = serve(fake)
    yield fake
    fake.release.set()
    server.shutdown()
    server.server_close()


@pytest.fixture
def dead_url() -> str:
    """An address where nothing listens (connection refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def site(tmp_path, portal) -> Site:
    return Site(root=tmp_path, host=portal.url)

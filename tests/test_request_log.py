"""Operational logging: one timing line per request (userportal.requests) and the optional log
file, rotated by size or reopened after logrotate (userportal.logconfig)."""

from __future__ import annotations

import logging
import logging.config
import logging.handlers
import re

import pytest
from django.contrib.auth import get_user_model
from django.core.exceptions import ImproperlyConfigured
from django.test import Client, override_settings
from django.urls import reverse
from test_settings import _settings_in_subprocess

from userportal.logconfig import logging_config

pytestmark = pytest.mark.django_db(databases=["default", "slurm"])

LINE = re.compile(
    r"^(?P<method>\S+) (?P<path>\S+) (?P<status>\d{3}) (?P<ms>\d+\.\d)ms user=(?P<user>\S+) ip=(?P<ip>\S+)$"
)


def request_lines(caplog) -> list[dict[str, str]]:
    found = []
    for record in caplog.records:
        if record.name == "userportal.requests":
            match = LINE.match(record.getMessage())
            assert match, record.getMessage()
            found.append(match.groupdict())
    return found


def test_an_anonymous_request_is_one_line(caplog):
    caplog.set_level(logging.INFO, logger="userportal.requests")
    Client().get(reverse("login"))
    [line] = request_lines(caplog)
    assert (line["method"], line["path"], line["status"], line["user"], line["ip"]) == (
        "GET",
        "/accounts/login/",
        "200",
        "-",
        "127.0.0.1",
    )
    assert float(line["ms"]) > 0


def test_the_line_names_the_signed_in_user_and_the_status(caplog):
    caplog.set_level(logging.INFO, logger="userportal.requests")
    client = Client()
    client.force_login(get_user_model().objects.create_user("alice"))
    client.get(reverse("home"))
    client.get("/no/such/page/")
    client.post(reverse("login"), {"username": "x", "password": "y\x00"})
    lines = request_lines(caplog)
    assert [(line["path"], line["status"], line["user"]) for line in lines] == [
        ("/", "200", "alice"),
        ("/no/such/page/", "404", "alice"),
        ("/accounts/login/", "400", "-"),  # refused before the session was read
    ]


def test_a_crafted_path_cannot_forge_a_line_and_the_query_string_is_left_out(caplog):
    caplog.set_level(logging.INFO, logger="userportal.requests")
    Client().get("/x%0A2026-01-01 INFO forged/?token=secret-value")
    [record] = [r for r in caplog.records if r.name == "userportal.requests"]
    assert "\n" not in record.getMessage()
    assert record.getMessage().startswith("GET /x%0A2026-01-01%20INFO%20forged/ 404 ")
    assert "secret-value" not in record.getMessage()


@override_settings(PORTAL_REQUEST_LOG=False)
def test_the_lines_can_be_switched_off(caplog):
    caplog.set_level(logging.INFO, logger="userportal.requests")
    Client().get(reverse("login"))
    assert request_lines(caplog) == []


def _file_logger(config: dict, name: str) -> logging.Logger:
    """The config's file handler on a logger of its own (the root logger stays pytest's)."""
    config = {**config, "loggers": {name: {"handlers": ["file"], "level": "INFO", "propagate": False}}}
    del config["root"]
    logging.config.dictConfig(config)
    return logging.getLogger(name)


def _close(logger: logging.Logger) -> None:
    for handler in list(logger.handlers):
        handler.close()
        logger.removeHandler(handler)


def test_the_log_file_rotates_by_size_and_keeps_its_backups(tmp_path):
    path = tmp_path / "portal.log"
    logger = _file_logger(logging_config("INFO", str(path), max_bytes=2000, backups=2), "test.rotation")
    try:
        assert isinstance(logger.handlers[0], logging.handlers.RotatingFileHandler)
        for i in range(40):
            logger.info("line %02d %s", i, "x" * 200)
    finally:
        _close(logger)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["portal.log", "portal.log.1", "portal.log.2"]
    assert all(p.stat().st_size <= 2000 for p in tmp_path.iterdir())
    assert "line 39" in path.read_text()
    assert "INFO test.rotation: line 39" in path.read_text()


def test_with_no_size_the_file_is_reopened_after_logrotate(tmp_path):
    path = tmp_path / "portal.log"
    logger = _file_logger(logging_config("INFO", str(path), max_bytes=0), "test.watched")
    try:
        assert isinstance(logger.handlers[0], logging.handlers.WatchedFileHandler)
        logger.info("before")
        path.rename(tmp_path / "portal.log.1")  # what logrotate does
        logger.info("after")
    finally:
        _close(logger)
    assert "before" in (tmp_path / "portal.log.1").read_text()
    assert "after" in path.read_text()


def test_a_log_file_in_a_missing_directory_stops_start_up(tmp_path):
    with pytest.raises(ImproperlyConfigured, match=r"PORTAL_LOG_FILE=.*does not exist"):
        logging_config("INFO", str(tmp_path / "nowhere" / "portal.log"), 1000, 1)
    assert list(logging_config("INFO")["handlers"]) == ["console"]


def test_the_settings_write_the_portal_log_to_the_file(tmp_path):
    path = tmp_path / "portal.log"
    result = _settings_in_subprocess(
        "import logging; logging.getLogger('userportal.requests').info('GET / 200 1.0ms user=- ip=-')",
        PORTAL_DEBUG="true",
        PORTAL_VAR_DIR=str(tmp_path),
        PORTAL_LOG_FILE=str(path),
        PORTAL_LOG_FILE_MAX_BYTES="1000000",
        PORTAL_LOG_FILE_BACKUPS="3",
    )
    assert result.returncode == 0, result.stderr
    assert "INFO userportal.requests: GET / 200 1.0ms user=- ip=-" in path.read_text()

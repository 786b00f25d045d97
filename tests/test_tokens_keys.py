"""Keys never start with "-": a command line would take such a key for an option."""

from unittest import mock

from userportal import tokens


def test_new_key_skips_keys_that_look_like_options():
    keys = iter(["-abc" + "x" * 40, "-zz" + "y" * 41, "ok" + "z" * 42])
    with mock.patch.object(tokens.secrets, "token_urlsafe", side_effect=lambda _n: next(keys)):
        assert tokens.new_key() == "ok" + "z" * 42


def test_new_key_is_long_and_url_safe():
    for _ in range(200):
        key = tokens.new_key()
        assert len(key) == 44
        assert not key.startswith("-")
        assert set(key) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")

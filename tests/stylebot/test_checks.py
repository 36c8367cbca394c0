"""Which Host headers name this machine: the rule behind the playground's DNS-rebinding guard."""

import pytest

from stylebot.checks import host_name, is_own_host
from stylebot.settings import Settings

pytestmark = pytest.mark.security


@pytest.mark.parametrize("header, name", [
    ("localhost", "localhost"), ("LocalHost:8080", "localhost"), ("127.0.0.1:80", "127.0.0.1"),
    ("[::1]", "::1"), ("[::1]:8080", "::1"), ("example.org", "example.org"),
    (None, None), ("", None), ("::1", None), ("[::1", None), ("[::1]x", None), ("[::1]:", None),
    ("[evil.example]", None), ("localhost:80x", None), ("localhost:", None), (":80", None),
    ("localhost:\u0661", None),
])
def test_host_name_reads_the_header_strictly(header, name):
    assert host_name(header) == name


@pytest.mark.parametrize("header", ["localhost", "localhost:8080", "127.0.0.1", "127.9.9.9:1",
                                    "[::1]:8080", "[0:0:0:0:0:0:0:1]"])
def test_loopback_names_are_own(header):
    assert is_own_host(header)


@pytest.mark.parametrize("header", ["127.attacker.example", "127.0.0.1.attacker.example",
                                    "localhost.attacker.example", "127.1", "0x7f000001",
                                    "2130706433", "[::2]", "10.0.0.1", "", None, "localhost."])
def test_other_names_are_not(header):
    assert not is_own_host(header)
    assert not is_own_host(header, "stylebot.example.org")


def test_the_public_name_is_own_only_when_configured():
    assert is_own_host("Stylebot.example.org:443", "stylebot.example.org")
    assert not is_own_host("stylebot.example.org")
    assert not is_own_host("stylebot.example.org.attacker.example", "stylebot.example.org")


@pytest.mark.parametrize("value", ["https://stylebot.example.org", "stylebot.example.org:8080",
                                   "stylebot.example.org/x", "two words", "*.example.org"])
def test_public_host_setting_is_a_bare_name(value):
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="not a host name"):
        Settings(public_host=value)
    assert Settings(public_host=" Stylebot.Example.org ").public_host == "stylebot.example.org"
    assert Settings(public_host="").public_host is None

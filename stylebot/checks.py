"""Settings checked at `stylebot run`'s start, so a bad value is one clear line, not a crash later.

Also decides whether web pages are served, and claims the HTTP port before anything heavy
loads. Each front end checks its own settings (``Frontend.problems``).
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import socket
import time
from typing import TYPE_CHECKING, Iterable

from engine.errors import UserError

if TYPE_CHECKING:
    from .frontends import Frontend
    from .settings import Settings

log = logging.getLogger(__name__)


class SettingsError(UserError):
    """The configuration cannot work; the message says which setting and how to fix it."""

    multiline = True  # several problems, one per line, for the operator at start


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def host_name(header: str | None) -> str | None:
    """The name in an HTTP Host header, lower case and without the port; None if malformed.

    An IPv6 address must be in brackets (``[::1]:8080``), as browsers send it.
    """
    header = (header or "").strip().lower()
    if header.startswith("["):
        name, sep, rest = header[1:].partition("]")
        if not sep or (rest and not (rest[:1] == ":" and rest[1:].isdigit())):
            return None
        try:
            ipaddress.IPv6Address(name)
        except ValueError:
            return None
        return name
    name, sep, port = header.rpartition(":")
    if not sep:
        name = header
    elif not (port.isascii() and port.isdigit()):
        return None
    return name if name and ":" not in name else None


def is_own_host(header: str | None, public_host: str | None = None) -> bool:
    """Whether a request's Host header names this machine: the DNS-rebinding guard.

    Anyone can point a name they own at 127.0.0.1 (``127.attacker.example`` is such a name,
    not an address), so only loopback IP literals, ``localhost`` and the operator's
    ``public_host`` are trusted.
    """
    name = host_name(header)
    if name is None:
        return False
    if name == "localhost" or (public_host is not None and name == public_host.lower()):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def guards_host(settings: "Settings") -> bool:
    """Whether web pages check the Host header: on loopback, or when a public name is set."""
    return is_loopback(settings.http_host) or settings.public_host is not None


def serves_pages(settings: "Settings", chat_configured: bool) -> bool:
    """Always without chat adapters; beside them only where nobody else can reach the pages."""
    return not chat_configured or is_loopback(settings.http_host)


def validate_settings(settings: "Settings", frontends: Iterable["Frontend"], *,
                      check_device: bool = True) -> list[str]:
    """Refuse settings that cannot work, with one line per problem; return mere warnings."""
    frontends = list(frontends)
    problems: list[str] = []
    warnings: list[str] = []
    for frontend in frontends:
        problems += frontend.problems(settings)
        warnings += frontend.warnings(settings)
    problems += _folder_problems(settings)
    for name, spec in settings.hub_entrypoints.items():
        source, sep, entry = str(spec).rpartition(":")
        if not sep or not source.strip() or not entry.strip().isidentifier():
            problems.append(f"STYLEBOT_HUB_ENTRYPOINTS entry '{name}' must look like "
                            f"'owner/repo:entrypoint' or '/local/dir:entrypoint', not '{spec}'.")
    problems += _method_problems(warnings)
    warnings += _training_warnings(settings)
    if check_device and not problems:
        from engine.device import resolve_device

        try:
            resolve_device(settings.device)
        except UserError as exc:
            problems.append(exc.message)
    chat = any(f.is_chat and f.configured(settings) for f in frontends)
    if serves_pages(settings, chat) and not is_loopback(settings.http_host):
        warnings.append(f"The playground has no login and listens on {settings.http_host}; "
                        "anyone who can reach that address can use this machine's GPU.")
    if problems:
        if len(problems) == 1:
            raise SettingsError(problems[0])
        raise SettingsError(f"{len(problems)} problems with the settings:\n  - "
                            + "\n  - ".join(problems))
    for warning in warnings:
        log.warning("%s", warning)
    return warnings


def _folder_problems(s: "Settings") -> list[str]:
    out = []
    home = s.home
    try:
        home.mkdir(parents=True, exist_ok=True)
        probe = home / f".write-test-{int(time.time() * 1000)}"
        probe.write_bytes(b"ok")
        probe.unlink()
    except OSError as exc:
        reason = exc.strerror or str(exc)
        out.append(f"The data folder '{home}' (STYLEBOT_HOME) is not writable: {reason}.")
    if s.weights_dir is not None and not s.weights_dir.is_dir():
        out.append(f"STYLEBOT_WEIGHTS_DIR '{s.weights_dir}' is not a folder.")
    if s.database_url is not None:
        from storage.db import database_url_problem, is_database_url

        if not is_database_url(s.database_url):
            out.append(f"STYLEBOT_DATABASE_URL '{s.database_url}' is not a database URL "
                       "(e.g. sqlite+aiosqlite:////path/stylebot.db).")
        elif problem := database_url_problem(s.database_url):
            out.append(f"STYLEBOT_DATABASE_URL: {problem}.")
    return out


def _training_warnings(s: "Settings") -> list[str]:
    """/train with STYLEBOT_TRAINING_IMAGES set but unusable: every user would be refused."""
    if s.training_images is None:
        return []  # /train is off, as the operator chose
    from .training_jobs import count_training_photos

    try:
        count_training_photos(s, for_user=False)
    except UserError as exc:
        return [exc.message]
    return []


def _method_problems(warnings: list[str]) -> list[str]:
    """Every registered method should load; one that does not is reported, not fatal."""
    from engine.methods import get_method, method_names

    broken = []
    for name in method_names():
        try:
            get_method(name)
        except Exception as exc:  # noqa: BLE001 - reported, and the others still work
            broken.append(name)
            warnings.append(f"Method '{name}' is unavailable: {type(exc).__name__}: {exc}")
    if broken and len(broken) == len(method_names()):
        return ["No style-transfer method could be loaded; see the warnings above."]
    return []


def bind_socket(host: str, port: int) -> socket.socket:
    """Claim the HTTP port before anything heavy starts, so a clash is reported at once."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise SettingsError(f"STYLEBOT_HTTP_HOST '{host}' is not an address of this machine.") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise SettingsError(f"Port {port} on {host} is already in use; stop the other program "
                                "or choose another port (--port or STYLEBOT_HTTP_PORT).") from None
        if exc.errno == errno.EACCES:
            raise SettingsError(f"Not allowed to listen on port {port}; choose a port above 1023 "
                                "(--port or STYLEBOT_HTTP_PORT).") from None
        if exc.errno == errno.EADDRNOTAVAIL:
            raise SettingsError(f"STYLEBOT_HTTP_HOST '{host}' is not an address of this machine.") from None
        raise SettingsError(f"Cannot listen on {host}:{port}: {exc.strerror or exc}.") from None
    sock.setblocking(False)
    return sock

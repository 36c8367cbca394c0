"""Settings checked at `stylebot run`'s start, so a bad value is one clear line, not a crash later.

Also decides which front ends run, and claims the HTTP port before anything heavy loads.
"""

from __future__ import annotations

import errno
import ipaddress
import logging
import re
import socket
import time
from typing import TYPE_CHECKING

from engine.errors import UserError

if TYPE_CHECKING:
    from stylebot.settings import Settings

log = logging.getLogger(__name__)


class SettingsError(UserError):
    """The configuration cannot work; the message says which setting and how to fix it."""


def chat_adapters(settings: "Settings") -> list[str]:
    """The chat platforms whose settings are present."""
    names = []
    if settings.discord_token:
        names.append("discord")
    if settings.slack_bot_token or settings.slack_app_token:
        names.append("slack")
    return names


def is_loopback(host: str) -> bool:
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def serves_playground(settings: "Settings") -> bool:
    """Always without chat tokens; beside chat adapters only where nobody else can reach it."""
    return not chat_adapters(settings) or is_loopback(settings.http_host)


def validate_settings(settings: "Settings", *, check_device: bool = True) -> list[str]:
    """Refuse settings that cannot work, with one line per problem; return mere warnings."""
    problems: list[str] = []
    warnings: list[str] = []
    problems += _token_problems(settings)
    if settings.discord_guild_id and not settings.discord_token:
        warnings.append("STYLEBOT_DISCORD_GUILD_ID is set but STYLEBOT_DISCORD_TOKEN is not; "
                        "Discord stays off.")
    problems += _folder_problems(settings)
    for name, spec in settings.hub_entrypoints.items():
        source, sep, entry = str(spec).rpartition(":")
        if not sep or not source.strip() or not entry.strip().isidentifier():
            problems.append(f"STYLEBOT_HUB_ENTRYPOINTS entry '{name}' must look like "
                            f"'owner/repo:entrypoint' or '/local/dir:entrypoint', not '{spec}'.")
    problems += _method_problems(warnings)
    if check_device and not problems:
        from engine.device import resolve_device

        try:
            resolve_device(settings.device)
        except UserError as exc:
            problems.append(exc.message)
    if serves_playground(settings) and not is_loopback(settings.http_host):
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


def _token_problems(s: "Settings") -> list[str]:
    out = []
    token = s.discord_token
    if token is not None:
        token = token.strip()
        if token.lower().startswith("bot "):
            out.append("STYLEBOT_DISCORD_TOKEN should be the bare bot token, without 'Bot ' in front.")
        elif not re.fullmatch(r"[A-Za-z0-9_-]{20,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{20,}", token):
            out.append("STYLEBOT_DISCORD_TOKEN does not look like a Discord bot token (three parts "
                       "separated by dots); copy it from the Developer Portal's Bot page.")
    bot, app, secret = s.slack_bot_token, s.slack_app_token, s.slack_signing_secret
    if bot is not None and not re.fullmatch(r"xoxb-[A-Za-z0-9-]{10,}", bot.strip()):
        hint = " (that is a user token; use the Bot User OAuth Token)" if bot.startswith("xoxp-") else ""
        out.append(f"STYLEBOT_SLACK_BOT_TOKEN must start with 'xoxb-'{hint}.")
    if app is not None and not re.fullmatch(r"xapp-[A-Za-z0-9-]{10,}", app.strip()):
        out.append("STYLEBOT_SLACK_APP_TOKEN must start with 'xapp-' (an app-level token with "
                   "connections:write).")
    if app and not bot:
        out.append("STYLEBOT_SLACK_APP_TOKEN is set but STYLEBOT_SLACK_BOT_TOKEN (xoxb-...) is not; "
                   "Slack needs both.")
    if bot and s.slack_mode == "socket" and not app:
        out.append("Slack in socket mode needs STYLEBOT_SLACK_APP_TOKEN (xapp-...); or set "
                   "STYLEBOT_SLACK_MODE=http with STYLEBOT_SLACK_SIGNING_SECRET.")
    if bot and s.slack_mode == "http":
        if not secret:
            out.append("Slack in http mode needs STYLEBOT_SLACK_SIGNING_SECRET.")
        elif not re.fullmatch(r"[0-9a-fA-F]{32}", secret.strip()):
            out.append("STYLEBOT_SLACK_SIGNING_SECRET should be 32 hexadecimal characters "
                       "(Basic Information > Signing Secret).")
    return out


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
        from storage.db import is_database_url

        if not is_database_url(s.database_url):
            out.append(f"STYLEBOT_DATABASE_URL '{s.database_url}' is not a database URL "
                       "(e.g. sqlite+aiosqlite:////path/stylebot.db).")
    return out


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

"""Reading what a Discord command carries (attachments, typed options), refusing what cannot work.

Attachments are checked by what Discord says about them (type, size, where they live)
before a byte is downloaded; options are checked against the chosen method's declared
options, so a wrong option is refused at once with the list of the ones that apply.
"""

from __future__ import annotations

import logging
from typing import Any
from urllib.parse import urlsplit

import discord

from stylebot.clips import CONTENT_HINT, base_type, is_content_type
from stylebot.commands import parse_command
from engine.errors import ImageError, OptionError, UserError
from engine.images import FORMATS_HINT, check_upload_size
from engine.request import ImageUpload, Place, Requester

log = logging.getLogger(__name__)

# Discord serves attachments from these hosts, over https on the default port; nothing
# else is ever downloaded, apart from the API host discord.py is configured to talk to.
CDN_HOSTS = frozenset({"cdn.discordapp.com", "media.discordapp.net"})
CDN_ORIGINS = frozenset(("https", host, 443) for host in CDN_HOSTS)


def _origin(url: str) -> tuple[str, str, int | None] | None:
    """(scheme, host, port) of ``url``, the default port filled in; None when it has credentials
    or cannot be read."""
    try:
        parts = urlsplit(url)
        port = parts.port or {"https": 443, "http": 80}.get(parts.scheme.lower())
    except ValueError:  # a port out of range, a broken IPv6 literal
        return None
    if parts.username is not None or parts.password is not None or not parts.hostname:
        return None
    return parts.scheme.lower(), parts.hostname.lower(), port


def discord_origins() -> frozenset[tuple[str, str, int | None]]:
    """The CDN over https:443, and the API origin discord.py talks to exactly as configured
    (https://discord.com, or a stand-in for it in tests)."""
    api = _origin(discord.http.Route.BASE)
    return CDN_ORIGINS | ({api} if api else set())


def requester_of(user: discord.abc.User) -> Requester:
    return Requester("discord", str(user.id), getattr(user, "display_name", "") or user.name)


def place_of(interaction: discord.Interaction) -> Place | None:
    """The server and channel a command came from (None in DMs): per-place settings."""
    if interaction.guild_id is None:
        return None
    return Place(str(interaction.guild_id), str(interaction.channel_id or ""))


def check_attachment(attachment: discord.Attachment, *, what: str, max_bytes: int,
                     clips: bool = False) -> None:
    """Refuse an attachment from its metadata alone: not an image (nor, where ``clips``, a
    video the engine reads), too big, or not on the CDN."""
    kind = base_type(attachment.content_type)
    if not (is_content_type(kind) if clips else kind.startswith("image/")):
        described = f"a {kind} file" if kind else "not marked as an image"
        wanted = f"an image or a clip ({CONTENT_HINT})" if clips else f"an image ({FORMATS_HINT})"
        raise ImageError(f"The {what} '{attachment.filename}' is {described}; attach {wanted}.")
    check_upload_size(attachment.size, max_bytes, f"{what} '{attachment.filename}'")
    if _origin(attachment.url) not in discord_origins():
        raise UserError(f"The {what} '{attachment.filename}' is not stored on Discord; "
                        "upload the image to Discord itself.")


async def download(attachment: discord.Attachment, *, what: str) -> ImageUpload:
    """The attachment's bytes, fetched through discord.py from Discord's CDN."""
    try:
        data = await attachment.read()
    except (discord.HTTPException, discord.NotFound) as exc:
        log.info("download of %s failed: %s", attachment.url, exc)
        raise UserError(f"Could not download the {what} '{attachment.filename}' from Discord; "
                        "try uploading it again.") from None
    return ImageUpload(data, attachment.filename)


def parse_extra_options(text: str | None) -> tuple[dict[str, str], list[float] | None]:
    """Options typed into the free ``options`` field, e.g. ``model=26:7 strength:0.5 blend=0.7,0.3``.

    Read by the parser every text front end shares, so quoting and spelling work as in the
    playground; what Discord has a field for (method, preset, prompt) belongs in that field.
    """
    if not text or not text.strip():
        return {}, None
    parsed = parse_command(text, command="stylize")
    for name, value in (("method", parsed.method), ("preset", parsed.preset)):
        if value:
            raise OptionError(f"Give the {name} in the command's own '{name}' field, not in options.")
    if parsed.prompt:
        raise OptionError(f"'{parsed.prompt}' is not a name=value option (a prompt has its own "
                          "'prompt' field); write extra options as pairs like model=26:7 strength=0.5.")
    return dict(parsed.options), parsed.style_weights


def merge_options(typed: dict[str, Any], extra: dict[str, str]) -> dict[str, Any]:
    """Options from typed command fields plus the free text; the same name twice is refused."""
    given = {k: v for k, v in typed.items() if v is not None}
    both = sorted(set(given) & set(extra))
    if both:
        raise OptionError(f"Option '{both[0]}' is given both as a field and in the options text; "
                          "give it once.")
    return {**given, **extra}

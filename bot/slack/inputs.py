"""Finding and fetching the image a Slack request is about.

Slash commands carry no files, so the image comes from the message itself (a mention or
a message shortcut), a Slack file link in the text, a modal's file input, or the latest
image the user shared in the channel or thread within ``slack_image_window_s``. Downloads
send the bot token, so they go only to Slack's own file servers.
"""

from __future__ import annotations

import html
import logging
import re
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Iterable

import aiohttp
from slack_sdk.errors import SlackApiError
from yarl import URL

from engine.errors import ImageError, UserError
from engine.request import ImageUpload
from stylebot.clips import CONTENT_HINT, VIDEO_FILETYPES, is_video_type

if TYPE_CHECKING:
    from slack_sdk.web.async_client import AsyncWebClient

log = logging.getLogger(__name__)

# Where Slack serves url_private(_download); the bot token is sent nowhere else.
SLACK_FILE_ORIGINS = frozenset({"https://files.slack.com", "https://files-edge.slack.com",
                                "https://files-origin.slack.com", "https://files.slack-gov.com"})
IMAGE_FILETYPES = ("png", "jpg", "jpeg", "webp", "gif", "bmp", "tiff")  # for file_input elements
CONTENT_FILETYPES = IMAGE_FILETYPES + VIDEO_FILETYPES  # what may be restyled: clips too
HISTORY_LIMIT = 100  # messages looked at when searching for the latest image
MAX_REDIRECTS = 3

# <https://x|label>, <https://x> or a bare https://x in typed text.
_LINK = re.compile(r"<(https?://[^>|\s]+)(?:\|[^>]*)?>|(https?://\S+)")
# Slack file ids in a permalink (/files/U123/F456/name) or a private URL (/files-pri/T1-F456/).
_FILE_ID = re.compile(r"/files/[UWB][A-Z0-9]+/(F[A-Z0-9]+)|/files-pri/T[A-Z0-9]+-(F[A-Z0-9]+)")


@dataclass(frozen=True)
class SlackFile:
    """The parts of a Slack file object that decide whether and how to fetch it."""

    id: str
    name: str
    mimetype: str
    size: int
    url: str  # url_private_download (or url_private)

    @classmethod
    def from_api(cls, data: dict[str, Any]) -> "SlackFile":
        return cls(id=str(data.get("id", "")), name=str(data.get("name") or data.get("title") or "image"),
                   mimetype=str(data.get("mimetype") or ""), size=int(data.get("size") or 0),
                   url=str(data.get("url_private_download") or data.get("url_private") or ""))

    @property
    def is_image(self) -> bool:
        """An image (animated ones included) or a short video the engine reads: anything that
        may be restyled. Whether a video may be a style image is the engine's to refuse."""
        return self.mimetype.lower().startswith("image/") or is_video_type(self.mimetype)

    @staticmethod
    def is_complete(data: dict[str, Any]) -> bool:
        """Events may carry stubs ("file_access": "check_file_info") that need files.info."""
        return bool(data.get("url_private_download") or data.get("url_private")) and \
            data.get("file_access") in (None, "visible")


def visible_in(data: dict[str, Any], channel: str, user: str) -> bool:
    """Whether ``user`` uploaded the file or it is shared in ``channel``, where they asked."""
    if user and data.get("user") == user:
        return True
    shared = {*(data.get("channels") or ()), *(data.get("groups") or ()), *(data.get("ims") or ())}
    for kind in ("public", "private"):
        shared.update((data.get("shares") or {}).get(kind) or {})
    return channel in shared


def split_links(text: str) -> tuple[str, list[str], list[str]]:
    """(text without links, Slack file ids linked in it, other links).

    Links are taken out before the options are parsed, since ``https://`` would read as an
    option named "https".
    """
    ids: list[str] = []
    foreign: list[str] = []

    def take(match: re.Match) -> str:
        url = match.group(1) or match.group(2)
        found = _FILE_ID.search(url)
        if found:
            ids.append(found.group(1) or found.group(2))
        else:
            foreign.append(url)
        return " "

    rest = _LINK.sub(take, text or "")
    return " ".join(html.unescape(rest).split()), ids, foreign


def foreign_link_error(urls: list[str]) -> UserError:
    return UserError(f"I only fetch images shared in Slack, not {urls[0][:80]}; upload the image "
                     "to Slack (or paste its Slack file link) and try again.")


def image_files(files: Iterable[SlackFile]) -> list[SlackFile]:
    return [f for f in files if f.is_image]


def require_images(files: list[SlackFile], where: str) -> list[SlackFile]:
    """The images among ``files``; a clear error when there are files but none is an image."""
    images = image_files(files)
    if not images and files:
        kinds = ", ".join(sorted({f.mimetype or "unknown type" for f in files}))
        raise ImageError(f"{where} has no image or clip: '{files[0].name}' is {kinds}. "
                         f"Use an image or a clip ({CONTENT_HINT}).")
    return images


class FileFinder:
    """Looks files up through the Web API: by id, in a message, or in recent history."""

    def __init__(self, client: "AsyncWebClient", window_s: float, clock=time.time) -> None:
        self.client = client
        self.window_s = window_s
        self.clock = clock

    async def by_id(self, file_id: str, *, asked_in: tuple[str, str] | None = None) -> SlackFile:
        """The file, through files.info with the bot token.

        A file the user named (a link) must be theirs or shared in the conversation they
        asked in (``asked_in`` = channel, user): the bot can read every channel it is in, the user cannot. The refusal is
        the same whether the file exists or not, so it tells nothing about other channels.
        """
        try:
            response = await self.client.files_info(file=file_id)
        except SlackApiError as exc:
            error = exc.response.get("error", "error")
            log.info("files.info %s failed: %s", file_id, error)
            raise UserError(f"I cannot open the Slack file {file_id} ({error}); share it in a "
                            "channel I am in and try again.") from None
        data = response["file"]
        if asked_in is not None and not visible_in(data, *asked_in):
            log.warning("refused file %s to %s in %s: not shared there", file_id, asked_in[1],
                        asked_in[0])
            raise UserError(f"I cannot open the Slack file {file_id} here: share it in this "
                            "conversation (or upload it yourself) and try again.")
        return SlackFile.from_api(data)

    async def resolve(self, raw_files: Iterable[dict[str, Any]]) -> list[SlackFile]:
        """File objects from a payload, completed through files.info where they are stubs."""
        out = []
        for raw in raw_files or []:
            if SlackFile.is_complete(raw):
                out.append(SlackFile.from_api(raw))
            elif raw.get("id"):
                out.append(await self.by_id(raw["id"]))
        return out

    async def recent_images(self, channel: str, user: str, thread_ts: str | None) -> list[SlackFile]:
        """The images of the user's latest message with an image, within the window; [] if none.

        In a thread only the thread counts. An unreadable channel (bot not a member, a DM
        between other people) counts as having no image: the caller offers a file input.
        """
        if self.window_s <= 0 or not channel:
            return []
        oldest = f"{self.clock() - self.window_s:.6f}"
        try:
            if thread_ts:
                response = await self.client.conversations_replies(
                    channel=channel, ts=thread_ts, oldest=oldest, limit=HISTORY_LIMIT)
                messages = list(reversed(response.get("messages") or []))  # newest first
            else:
                response = await self.client.conversations_history(
                    channel=channel, oldest=oldest, limit=HISTORY_LIMIT)
                messages = response.get("messages") or []
        except SlackApiError as exc:
            log.info("cannot read history of %s: %s", channel, exc.response.get("error"))
            return []
        for message in messages:
            if message.get("user") != user or not message.get("files"):
                continue
            if float(message.get("ts", 0)) < float(oldest):
                continue
            images = image_files(await self.resolve(message["files"]))
            if images:
                return images
        return []


class Downloader:
    """Fetches Slack-hosted files with the bot token, refusing anything that is not an image."""

    def __init__(self, token: str, *, max_bytes: int, origins: Iterable[str] = SLACK_FILE_ORIGINS,
                 timeout_s: float = 60.0) -> None:
        self.token = token
        self.max_bytes = max_bytes
        self.origins = frozenset(o.rstrip("/") for o in origins)
        self.timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._session: aiohttp.ClientSession | None = None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _allowed(self, url: str) -> bool:
        try:
            parsed = URL(url)
            # origin() raises on a scheme-relative URL (//files.slack.com/...): not ours either
            return bool(parsed.scheme) and not parsed.user and str(parsed.origin()) in self.origins
        except ValueError:
            return False

    async def fetch(self, file: SlackFile) -> ImageUpload:
        name = file.name
        if not file.is_image:
            raise ImageError(f"'{name}' is not an image or clip ({file.mimetype or 'unknown type'}); "
                             f"use an image or a clip ({CONTENT_HINT}).")
        if file.size > self.max_bytes:
            raise ImageError(f"'{name}' is {file.size / 1e6:.1f} MB; the limit is "
                             f"{self.max_bytes / 1e6:.0f} MB.")
        if self._session is None:
            self._session = aiohttp.ClientSession(timeout=self.timeout)
        url = file.url
        for _ in range(MAX_REDIRECTS + 1):
            if not self._allowed(url):
                log.warning("refusing to fetch %s from %s: not a Slack file server", file.id, url)
                raise UserError(f"I only fetch images shared in Slack: '{name}' is not stored on "
                                "Slack's file servers, so I will not fetch it.")
            try:
                async with self._session.get(url, allow_redirects=False,
                                             headers={"Authorization": f"Bearer {self.token}"}) as resp:
                    if resp.status in (301, 302, 303, 307, 308) and "Location" in resp.headers:
                        try:
                            url = str(URL(url).join(URL(resp.headers["Location"])))
                        except ValueError:
                            url = ""  # unreadable: refused as not Slack's on the next turn
                        continue
                    if resp.status != 200:
                        raise UserError(f"Slack would not hand over '{name}' (HTTP {resp.status}); "
                                        "share it again and retry.")
                    if resp.content_type == "text/html":
                        # What Slack sends instead of the file when the token may not read it.
                        raise UserError(f"Slack sent a sign-in page instead of '{name}': the app "
                                        "needs the files:read scope (reinstall it after adding it).")
                    chunks, total = [], 0
                    async for chunk in resp.content.iter_chunked(1 << 16):
                        total += len(chunk)
                        if total > self.max_bytes:  # the metadata's size may have understated it
                            raise ImageError(f"'{name}' is larger than the "
                                             f"{self.max_bytes / 1e6:.0f} MB limit.")
                        chunks.append(chunk)
            except aiohttp.ClientError as exc:
                raise UserError(f"Downloading '{name}' from Slack failed ({type(exc).__name__}); "
                                "try again.") from None
            return ImageUpload(b"".join(chunks), name)
        raise UserError(f"Slack redirected the download of '{name}' too often.")

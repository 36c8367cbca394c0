"""The one request type every adapter builds, whatever platform the command came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Requester:
    """Who asked: presets and limits are per (platform, user_id)."""

    platform: str  # "discord", "slack", "playground", "cli"
    user_id: str
    display_name: str = ""

    @property
    def key(self) -> str:
        return f"{self.platform}:{self.user_id}"


@dataclass(frozen=True)
class Place:
    """Where a request was made, in neutral words: a space (a server, a workspace) and a
    room in it (a channel). The application keys its per-place settings on it."""

    space: str
    room: str = ""


@dataclass(frozen=True)
class ImageUpload:
    """Raw bytes of an image as received; decoded (and refused) by engine.images."""

    data: bytes
    filename: str = "image"

    def __repr__(self) -> str:
        return f"ImageUpload({self.filename!r}, {len(self.data)} bytes)"


@dataclass
class StyleRequest:
    """Restyle ``content`` with ``method``.

    ``options`` holds raw values (strings from chat are fine): each method's declared
    options validate and convert them. ``preset`` names a saved preset of the requester
    whose method, options and style images fill whatever the request leaves out.
    ``place`` says where it was asked (None: a CLI, the playground), for per-place settings.
    ``own_models`` is the folder of networks the requester trained (``/train``), which only
    their requests may use; the application sets it from the requester, never a front end.
    ``init_image`` is a picture the method starts from instead of the content photo (methods
    with ``takes_init_image`` only: gatys optimises it further); the engine fits it to the content.
    """

    method: str | None
    content: ImageUpload
    requester: Requester
    styles: list[ImageUpload] = field(default_factory=list)
    style_weights: list[float] | None = None
    prompt: str | None = None
    options: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    mask: ImageUpload | None = None
    place: Place | None = None
    own_models: Path | None = None
    init_image: ImageUpload | None = None

"""The one stream of events a job produces; adapters render these as messages."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from PIL import Image


@dataclass(frozen=True)
class Queued:
    job_id: str
    position: int  # 1 = next to run


@dataclass(frozen=True)
class Started:
    job_id: str
    device: str


@dataclass(frozen=True)
class Progress:
    job_id: str
    fraction: float  # 0..1
    stage: str = ""  # e.g. "optimising", "denoising", "adapting generator"
    preview: "Image.Image | None" = None


@dataclass(frozen=True)
class ResultMeta:
    method: str
    options: dict[str, Any]
    seconds: float
    device: str
    seed: int | None = None
    size: tuple[int, int] = (0, 0)
    prompt: str | None = None  # the request's text prompt, for methods that take one
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Done:
    """A finished job. For a clip, ``clip`` holds every styled frame and ``image`` is its
    first frame, so a front end that shows stills only still shows something right.
    (``clip`` is an ``engine.video.Clip``, not named here: video imports images, which
    imports this module.)"""

    job_id: str
    image: "Image.Image"
    meta: ResultMeta
    clip: Any = None


@dataclass(frozen=True)
class Failed:
    job_id: str
    message: str  # fit to show the requester
    detail: str = ""  # for the log only
    internal: bool = False  # a bug on our side rather than a problem with the request


@dataclass(frozen=True)
class Cancelled:
    job_id: str
    reason: str = "cancelled"


JobEvent = Union[Queued, Started, Progress, Done, Failed, Cancelled]
FINAL_EVENTS = (Done, Failed, Cancelled)


def is_final(event: JobEvent) -> bool:
    return isinstance(event, FINAL_EVENTS)

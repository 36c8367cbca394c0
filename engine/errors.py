"""The one exception type whose message may be shown to a person.

Anything else raised while serving a job is a bug: it is logged with the job id and the
user is told "something went wrong (job <id>)".
"""

from __future__ import annotations


class UserError(Exception):
    """A problem the requester can fix or must be told about, worded for them.

    The message is one line whatever it quotes back: line breaks, other control characters
    and text-direction overrides in what a user typed or named are shown escaped, so a
    message can neither run onto new lines in a log or chat nor reorder what is shown.
    """

    multiline = False  # start-up checks list several problems, one per line

    def __init__(self, message: str) -> None:
        message = str(message)
        if not self.multiline:
            message = message.translate(_VISIBLE)
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:  # one clean line, whatever subclasses add
        return self.message


# Control characters (C0, DEL, C1) and bidirectional overrides, written as escapes.
_VISIBLE = {c: ascii(chr(c))[1:-1] for c in [*range(0x20), *range(0x7F, 0xA0),
                                               *range(0x202A, 0x202F), *range(0x2066, 0x206A)]}


def visible(text: str) -> str:
    """``text`` on one line, as a ``UserError`` would quote it."""
    return str(text).translate(_VISIBLE)


class OptionError(UserError):
    """An option was unknown, of the wrong type or out of range."""


class ImageError(UserError):
    """An upload was not a usable image (not an image, too big, truncated, a bomb)."""


class WeightsMissing(UserError):
    """A weight file is neither cached, local, shipped in a wheel, nor downloadable."""

    def __init__(self, message: str, *, name: str = "", url: str = "") -> None:
        super().__init__(message)
        self.name = name
        self.url = url


class WeightsBroken(UserError):
    """A weight file is present but damaged, truncated or another network's."""

    def __init__(self, message: str, *, name: str = "", path: str = "") -> None:
        super().__init__(message)
        self.name = name
        self.path = path


class QueueFull(UserError):
    """The queue, or this user's share of it, has no room for another job."""


class PresetNotFound(UserError):
    """No preset of that name belongs to this user (other users' presets are invisible)."""


class JobCancelled(Exception):
    """Raised inside a method when its job was cancelled; not an error to report."""

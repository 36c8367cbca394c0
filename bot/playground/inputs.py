"""Reading the playground's uploads with the same limits chat attachments have.

Sizes are checked while the bytes arrive (and from Content-Length first), so an oversized
upload is refused without being read whole; decoding and pixel limits are the engine's.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import BodyPartReader, MultipartReader, web
from aiohttp.http_exceptions import HttpProcessingError

from engine.errors import ImageError, UserError
from engine.images import megabytes
from engine.request import ImageUpload

log = logging.getLogger(__name__)

FILE_FIELDS = ("content", "style", "mask")
MAX_FILES = 8  # one content image, a mask and up to six style images per request
MAX_FIELD_BYTES = 16 * 1024  # a command line or a preset name, never more
MAX_FIELDS = 8  # the page sends at most three: command, name, replace
MAX_PARTS = MAX_FILES + MAX_FIELDS  # empty file inputs count too
MAX_PART_HEADERS = 8  # Content-Disposition and Content-Type are all a form part needs
# Boundaries, part headers and the blank line after them: aiohttp reads these a line at a
# time, each costing Python work on the event loop, so a form gets a fixed number.
MAX_LINES = (MAX_PARTS + 1) * (MAX_PART_HEADERS + 3)
FORM_OVERHEAD = 64 * 1024  # multipart boundaries and headers
TOO_MANY_PARTS = (f"The form has too many parts; send the command and at most {MAX_FILES} "
                  f"images ({MAX_FIELDS} text fields at most).")


@dataclass
class Form:
    """A submitted multipart form: text fields and the uploaded images by field name."""

    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, list[ImageUpload]] = field(default_factory=lambda: {f: [] for f in FILE_FIELDS})

    def one(self, name: str) -> ImageUpload | None:
        return self.files[name][0] if self.files[name] else None


async def read_form(request: web.Request, max_upload_bytes: int) -> Form:
    """Read a multipart form, refusing oversized images before their bytes are all read."""
    if not request.content_type.startswith("multipart/form-data"):
        raise UserError("Send the command and images as a multipart/form-data form.")
    per_file = max_upload_bytes
    cap = per_file * MAX_FILES + FORM_OVERHEAD
    if request.content_length is not None and request.content_length > cap:
        raise ImageError(f"The upload is {megabytes(request.content_length)}; the limit is "
                         f"{megabytes(per_file)} per image, {MAX_FILES} images at most.")
    # aiohttp's words for a broken form: its own parse errors (InvalidHeader, LineTooLong, ...),
    # ValueError and AssertionError, and RuntimeError for an over-long "_charset_" field.
    try:
        return await _read_parts(request, per_file, cap)
    except (HttpProcessingError, ValueError, AssertionError, KeyError, RuntimeError) as exc:
        log.info("unreadable form: %s", str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
        raise UserError("The form could not be read; send it as multipart/form-data.") from None


class BoundedBody:
    """The request body as aiohttp's multipart parser reads it, within a budget.

    The parser reads boundaries and part headers line by line with no limit on how many
    (a preamble of two million blank lines is accepted), and a chunked body has no
    Content-Length to check first: so lines and bytes are counted as they are read.
    """

    def __init__(self, content, max_bytes: int) -> None:
        self._content = content
        self._max_bytes = max_bytes
        self._bytes = 0
        self._lines = 0

    def _count(self, data: bytes) -> bytes:
        self._bytes += len(data)
        if self._bytes > self._max_bytes:
            raise ImageError(f"The upload is over {megabytes(self._max_bytes)}, the most a form "
                             f"may carry ({MAX_FILES} images at most).")
        return data

    async def readline(self, *, max_line_length: int | None = None) -> bytes:
        self._lines += 1
        if self._lines > MAX_LINES:
            raise UserError(TOO_MANY_PARTS)
        return self._count(await self._content.readline(max_line_length=max_line_length))

    async def read(self, n: int = -1) -> bytes:
        return self._count(await self._content.read(n))

    def at_eof(self) -> bool:
        return self._content.at_eof()

    def unread_data(self, data: bytes) -> None:
        self._bytes -= len(data)
        self._content.unread_data(data)


async def _read_parts(request: web.Request, per_file: int, cap: int) -> Form:
    form = Form()
    n_files = n_parts = 0
    reader = MultipartReader(request.headers, BoundedBody(request.content, cap),
                             max_headers=MAX_PART_HEADERS)
    while (part := await reader.next()) is not None:
        if not isinstance(part, BodyPartReader):
            raise UserError("Nested multipart forms are not accepted; send plain fields and files.")
        n_parts += 1
        if n_parts > MAX_PARTS or (part.name not in FILE_FIELDS and len(form.fields) >= MAX_FIELDS):
            raise UserError(TOO_MANY_PARTS)
        name = part.name or ""
        if name in FILE_FIELDS or part.filename is not None:
            if name not in FILE_FIELDS:
                raise UserError(f"Unexpected file field '{name}'; send images as "
                                f"{', '.join(FILE_FIELDS)}.")
            what = {"content": "content image", "style": "style image", "mask": "mask"}[name]
            data = await _read_limited(part, per_file, what)
            if not data and not part.filename:
                continue  # a file input left empty
            n_files += 1
            if n_files > MAX_FILES:
                raise UserError(f"Send at most {MAX_FILES} images at once.")
            form.files[name].append(ImageUpload(data, part.filename or what))
        else:
            data = await _read_limited(part, MAX_FIELD_BYTES, f"'{name}' field", image=False)
            form.fields[name] = data.decode("utf-8", errors="replace")
    if len(form.files["content"]) > 1 or len(form.files["mask"]) > 1:
        raise UserError("Send one content image (and at most one mask) per request.")
    return form


async def _read_limited(part, limit: int, what: str, *, image: bool = True) -> bytes:
    """A part's bytes, stopping as soon as it passes ``limit``."""
    buffer = bytearray()
    while chunk := await part.read_chunk(64 * 1024):
        buffer += chunk
        if len(buffer) > limit:
            if image:
                raise ImageError(f"The {what} is over the {megabytes(limit)} limit for uploads.")
            raise UserError(f"The {what} is too long (over {limit // 1024} KB).")
    return bytes(buffer)


async def json_body(request: web.Request) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > MAX_FIELD_BYTES:
        raise UserError("The request is too long.")
    try:
        body = await request.json()
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):  # the last: deep nesting
        raise UserError("Send a JSON object, e.g. {\"command\": \"/stylize method:hub\"}.") from None
    if not isinstance(body, dict):
        raise UserError("Send a JSON object, e.g. {\"command\": \"/stylize method:hub\"}.")
    return body

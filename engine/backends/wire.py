"""Messages between the bot's process and the engine process, images as raw pixels.

``Connection.send`` pickles into a growing buffer and copies every image twice more; here
a message is pickled with protocol 5 and each RGB, RGBA or L image's pixels travel as an
out-of-band buffer written straight to the pipe: a 512 px image crosses in about a third
of the time (bench/README.md, where shared memory was measured too and lost).
"""

from __future__ import annotations

import io
import pickle
import struct
from typing import TYPE_CHECKING, Any

from PIL import Image

if TYPE_CHECKING:
    from multiprocessing.connection import Connection

_RAW_MODES = ("RGB", "RGBA", "L")
_COUNT = struct.Struct("!I")


class _Pickler(pickle.Pickler):
    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, Image.Image) and obj.mode in _RAW_MODES:
            import numpy as np

            pixels = np.ascontiguousarray(np.asarray(obj))
            return _image, (obj.mode, obj.size, pickle.PickleBuffer(pixels), dict(obj.info))
        return NotImplemented


def _image(mode: str, size: tuple[int, int], pixels: Any, info: dict) -> Image.Image:
    image = Image.frombytes(mode, size, pixels)
    image.info.update(info)
    return image


def send(conn: "Connection", message: Any) -> None:
    """Write ``message``; the caller keeps one writer at a time on ``conn``."""
    buffers: list[pickle.PickleBuffer] = []
    head = io.BytesIO()
    head.write(_COUNT.pack(0))
    _Pickler(head, protocol=5, buffer_callback=buffers.append).dump(message)
    view = head.getbuffer()
    _COUNT.pack_into(view, 0, len(buffers))
    conn.send_bytes(view)
    del view
    for buffer in buffers:
        conn.send_bytes(buffer.raw())


def recv(conn: "Connection") -> Any:
    """Read one message written by ``send``; raises EOFError once the other end is gone."""
    head = conn.recv_bytes()
    (count,) = _COUNT.unpack_from(head)
    buffers = [conn.recv_bytes() for _ in range(count)]
    return pickle.loads(memoryview(head)[_COUNT.size:], buffers=buffers)

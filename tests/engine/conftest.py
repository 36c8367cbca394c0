from __future__ import annotations

import io


from engine.request import ImageUpload, Requester, StyleRequest


def png_bytes(size=(32, 24), color=(200, 30, 30), fmt="PNG", mode="RGB") -> bytes:
    from PIL import Image

    buffer = io.BytesIO()
    Image.new(mode, size, color).save(buffer, format=fmt)
    return buffer.getvalue()


def toy_request(user="u1", method="toy", dims=(32, 24), **options) -> StyleRequest:
    return StyleRequest(method=method, content=ImageUpload(png_bytes(dims), "c.png"),
                        requester=Requester("test", user), options=options)

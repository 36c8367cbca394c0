"""Flicker of styled clips with and without ``smooth``, and frames per second per method.

The clip is generated (no downloads): the sample picture with a square sliding across
it and Gaussian sensor noise (sigma 6 of 255) on every frame, stored as a lossless APNG.
Flicker is the mean absolute frame-to-frame change of the output divided by that of the
input (``engine.video.flicker_ratio``): 1 changes as much as the source does.

    PYTHONPATH=. python bench/video_flicker.py --size 256 --frames 24
"""

from __future__ import annotations

import argparse
import io
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

from engine.engine import StyleEngine  # noqa: E402
from engine.request import ImageUpload, Requester, StyleRequest  # noqa: E402
from engine.samples import sample_content, sample_style  # noqa: E402
from engine.settings import EngineSettings  # noqa: E402
from engine.video import flicker_ratio  # noqa: E402


def test_clip(n: int, side: int, noise: float = 6.0) -> bytes:
    rng = np.random.default_rng(0)
    size = (side, side * 3 // 4)
    base = np.asarray(sample_content(side).resize(size), dtype=np.float32)
    frames = []
    for i in range(n):
        frame = base.copy()
        x = (side // 16) + i * side // (2 * n)
        frame[side // 8:side // 4, x:x + side // 6] = (240, 40, 40)
        frame += rng.normal(0, noise, frame.shape)
        frames.append(Image.fromarray(frame.clip(0, 255).astype(np.uint8), "RGB"))
    buffer = io.BytesIO()
    frames[0].save(buffer, format="PNG", save_all=True, append_images=frames[1:], duration=80, loop=0)
    return buffer.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--frames", type=int, default=24)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--smooth", type=float, nargs="+", default=[0.0, 0.5, 0.8, 1.0])
    args = parser.parse_args()
    settings = EngineSettings(device=args.device, allow_downloads=False)
    engine = StyleEngine(settings)
    clip = test_clip(args.frames, args.size)
    style = io.BytesIO()
    sample_style(256).save(style, format="PNG")
    print(f"{args.frames} frames at {args.size} px on {engine.device}")
    print("| method | smooth | flicker (output / input change) | frames/s |")
    print("| --- | --- | --- | --- |")
    for method, styles in (("fast", []), ("hub", [ImageUpload(style.getvalue())]), ("adain", [ImageUpload(style.getvalue())])):
        for smooth in args.smooth:
            request = StyleRequest(method=method, content=ImageUpload(clip), styles=styles,
                                   requester=Requester("bench", "b"),
                                   options={"size": args.size, "smooth": smooth})
            try:
                job = engine.prepare(request)
                ctx = engine.context(None, threading.Event())
                engine.execute([job], ctx)  # warm: models loaded and exported
                started = time.perf_counter()
                out = engine.execute([job], ctx)[0]
                seconds = time.perf_counter() - started
            except Exception as exc:  # noqa: BLE001 - a method whose weights are absent here
                print(f"| {method} | {smooth:g} | skipped: {str(exc).split(':')[0]} | |")
                break
            ratio = flicker_ratio(job.input.clip.frames, out.frames)
            print(f"| {method} | {smooth:g} | {ratio:.2f} | {len(out.frames) / seconds:.1f} |")


if __name__ == "__main__":
    main()

"""quality=refine on real photo/texture pairs: the draft against its gatys refinement.

    python bench/refine.py --weights ../shared/weights --images DIR [--size 256] [--iterations 60]

DIR holds the pictures named in PAIRS (scikit-image's sample data: `pip download --no-deps
scikit-image` and unzip `skimage/data/` from the wheel; nothing is installed). Each pair
runs through the real engine exactly as the service splits a refine request
(``stylebot.refine.plan``): the draft (adain where its weights are, else hub), then gatys
started from it. For context, gatys from the photo (its default init) runs with the same
iterations. Losses are unweighted, on the Caffe VGG19 gatys uses: content at relu4_2, Gram
(style) summed over relu1_1..relu5_1. Prints a Markdown table; record it in bench/README.md
with the machine (``lscpu``).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.engine import StyleEngine  # noqa: E402
from engine.images import encode_png  # noqa: E402
from engine.request import ImageUpload, Requester, StyleRequest  # noqa: E402
from engine.settings import EngineSettings  # noqa: E402
from stylebot import refine  # noqa: E402

PAIRS = [("chelsea.png", "hubble_deep_field.jpg"), ("coffee.png", "ihc.png"),
         ("astronaut.png", "gravel.png")]


def upload(path: Path) -> ImageUpload:
    from PIL import Image

    with Image.open(path) as img:
        return ImageUpload(encode_png(img.convert("RGB")), path.name)


def run(engine: StyleEngine, request: StyleRequest):
    """One job through the engine as the queue runs it: prepare, then execute; (image, s)."""
    prepared = engine.prepare(request)
    started = time.perf_counter()
    image = engine.execute([prepared], engine.context(None, threading.Event()))[0]
    return prepared, image, time.perf_counter() - started


def losses(engine: StyleEngine, prepared, image) -> tuple[float, float]:
    """(content, Gram) losses of ``image`` against the job's photo and style, unweighted."""
    import torch

    from engine.images import to_tensor
    from engine.methods.base import RunContext
    from engine.methods.gatys import load_vgg
    from engine.nets.gatys import GatysConfig, GatysLoss

    ctx = RunContext(device=engine.device, settings=engine.settings, weights=engine.weights,
                     models=engine.models)
    vgg = load_vgg(ctx)
    inp = prepared.input
    objective = GatysLoss(vgg, to_tensor(inp.content), [to_tensor(s) for s in inp.styles], [1.0],
                          GatysConfig(style_weight=1.0, content_weight=1.0))
    with torch.no_grad():
        content, style, _ = objective(to_tensor(image.resize(inp.content.size)))
    return float(content), float(style)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=Path(os.environ.get(
        "STYLEBOT_TEST_WEIGHTS", Path(__file__).resolve().parents[2] / "shared" / "weights")))
    parser.add_argument("--images", type=Path, required=True, help="folder holding the PAIRS' files")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=60)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    import torch

    torch.set_num_threads(args.threads)
    engine = StyleEngine(EngineSettings(weights_dir=args.weights, allow_downloads=False, device="cpu",
                                        max_side=args.size, cpu_threads=args.threads))
    drafter = refine.pick_drafter(engine)
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {args.size} px, "
          f"{args.iterations} gatys iterations, draft by {drafter}\n")
    print("| photo / texture | draft: Gram, content, s | refined: Gram, content, s | Gram refined/draft "
          "| content refined/draft | gatys from the photo: Gram, content, s |")
    print("| --- | --- | --- | --- | --- | --- |")
    for photo, texture in PAIRS:
        asked = StyleRequest(method=None, content=upload(args.images / photo),
                             requester=Requester("cli", "bench"),
                             styles=[upload(args.images / texture)],
                             options={"quality": "refine", "iterations": args.iterations, "seed": 1})
        asked.method = refine.method_for(asked.method, asked.options)
        plan = refine.plan(asked, drafter)
        run(engine, plan.draft)  # warm-up: the first run loads the draft's networks
        _, draft, draft_s = run(engine, plan.draft)
        refined_job, refined, refine_s = run(engine, plan.start_from(draft))
        _, alone, alone_s = run(engine, plan.refinement)
        d_content, d_style = losses(engine, refined_job, draft)
        r_content, r_style = losses(engine, refined_job, refined)
        a_content, a_style = losses(engine, refined_job, alone)
        print(f"| {photo} / {texture} | {d_style:.4g}, {d_content:.3g}, {draft_s:.2f} "
              f"| {r_style:.4g}, {r_content:.3g}, {refine_s:.1f} | {r_style / d_style:.3g} "
              f"| {r_content / d_content:.3g} | {a_style:.4g}, {a_content:.3g}, {alone_s:.1f} |",
              flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

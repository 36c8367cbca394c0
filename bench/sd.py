"""Time the sd method per denoising step and per image.

No real SD weights exist on the development machines, so two stand-ins are timed:

- ``--arch tiny``: the tests' tiny random pipeline, run through the whole product path
  (weights store, model cache, StableDiffusionMethod.run, safety checker). Shows the
  method's own overhead; says nothing about real-model speed. Its VAE downsamples by 2,
  not 8, so keep it small (64-128 px): at 512 px its latents are 256x256 and it is slower
  than the real model.
- ``--arch sd-turbo``: the real SD-Turbo architecture (SD 2.1 UNet, 865M parameters;
  OpenCLIP ViT-H text encoder; SD VAE) with random weights, built in memory (about 5 GB)
  and run by diffusers' img2img pipeline exactly as the method calls it. Compute does not
  depend on the weights' values, so its timings are the real model's on this machine.

    python bench/sd.py --arch tiny --size 64
    python bench/sd.py --arch sd-turbo --size 512 --steps 2 --strength 1.0
"""

from __future__ import annotations

import argparse
import logging
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

log = logging.getLogger("bench.sd")


def sd_turbo_architecture():
    """SD-Turbo's components at full size, randomly initialised (configs from its model card
    repo: SD 2.1-base UNet and VAE, OpenCLIP ViT-H/14 text tower, Euler 'trailing')."""
    import torch
    from diffusers import (AutoencoderKL, EulerDiscreteScheduler, StableDiffusionImg2ImgPipeline,
                           UNet2DConditionModel)
    from transformers import CLIPTextConfig, CLIPTextModel

    from tests.engine.methods.sd_tiny import make_tokenizer

    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=64, in_channels=4, out_channels=4, layers_per_block=2,
        block_out_channels=(320, 640, 1280, 1280), attention_head_dim=(5, 10, 20, 20),
        down_block_types=("CrossAttnDownBlock2D",) * 3 + ("DownBlock2D",),
        up_block_types=("UpBlock2D",) + ("CrossAttnUpBlock2D",) * 3,
        cross_attention_dim=1024, use_linear_projection=True).eval()
    vae = AutoencoderKL(
        block_out_channels=(128, 256, 512, 512), in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4,
        latent_channels=4, layers_per_block=2, sample_size=512).eval()
    tokenizer = make_tokenizer()
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=49408, hidden_size=1024, intermediate_size=4096, num_hidden_layers=23,
        num_attention_heads=16, hidden_act="gelu", max_position_embeddings=77,
        projection_dim=512, bos_token_id=len(tokenizer) - 2, eos_token_id=len(tokenizer) - 1,
        pad_token_id=len(tokenizer) - 1)).eval()
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012,
                                       beta_schedule="scaled_linear", steps_offset=1,
                                       timestep_spacing="trailing")
    pipe = StableDiffusionImg2ImgPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer,
                                          unet=unet, scheduler=scheduler, safety_checker=None,
                                          feature_extractor=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def time_pipeline(pipe, image, *, steps: int, strength: float, seed: int) -> dict[str, float]:
    """One img2img call, split into: before the loop (text + VAE encode), each step, after
    (VAE decode), the way the method's step callback sees it; in wall and CPU seconds.

    CPU seconds do not grow when other processes share the machine, so they estimate what
    an idle machine would do (wall = CPU / threads at best)."""
    import torch

    marks: list[tuple[float, float]] = []

    def now() -> tuple[float, float]:
        return time.perf_counter(), time.process_time()

    def on_step_end(pipeline, step, timestep, tensors):
        marks.append(now())
        return {}

    start = now()
    with torch.inference_mode():
        pipe(prompt="a watercolour painting", image=image, strength=strength,
             num_inference_steps=steps, guidance_scale=0.0,
             generator=torch.Generator().manual_seed(seed), callback_on_step_end=on_step_end)
    end = now()
    result: dict[str, float] = {"steps_run": len(marks)}
    for i, kind in enumerate(("wall", "cpu")):
        gaps = [b[i] - a[i] for a, b in zip(marks, marks[1:])]
        result[f"{kind}_total_s"] = end[i] - start[i]
        result[f"{kind}_encode_and_first_step_s"] = marks[0][i] - start[i]
        result[f"{kind}_later_step_s"] = sum(gaps) / len(gaps) if gaps else float("nan")
        result[f"{kind}_decode_s"] = end[i] - marks[-1][i]
    return result


def bench_tiny(args) -> None:
    """The tiny pipeline through StableDiffusionMethod.run, as a job would run it."""
    import torch

    from engine.methods.base import MethodInput, RunContext
    from engine.methods.sd import OPTIONS, StableDiffusionMethod
    from engine.models import ModelCache
    from engine.samples import sample_content
    from engine.settings import EngineSettings
    from engine.weights import WeightStore
    from tests.engine.methods.sd_tiny import save_safety_checker, save_sd

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        save_sd(root / "stabilityai" / "sd-turbo")
        save_safety_checker(root / "CompVis" / "stable-diffusion-safety-checker", flag=False)
        settings = EngineSettings(home=root / "home", weights_dir=root, allow_downloads=False,
                            device="cpu", max_side=args.size)
        models = ModelCache(10**10)
        step_marks: list[float] = []

        def on_progress(fraction, stage, preview):
            if stage == "denoising":
                step_marks.append(time.perf_counter())

        method = StableDiffusionMethod()
        options = OPTIONS.validate({"steps": args.steps, "strength": args.strength}, method="sd")
        for run in range(args.runs + 1):
            ctx = RunContext(device="cpu", settings=settings,
                             weights=WeightStore.from_settings(settings), models=models,
                             on_progress=on_progress)
            step_marks.clear()
            inp = MethodInput(content=sample_content(args.size), options=options, seed=run,
                              size=args.size, prompt="a watercolour painting")
            start = time.perf_counter()
            method.run(inp, ctx)
            total = time.perf_counter() - start
            gaps = [b - a for a, b in zip(step_marks, step_marks[1:])]
            label = "cold (loads the pipeline)" if run == 0 else "warm"
            print(f"tiny {args.size}px, threads {torch.get_num_threads()}, {label}: "
                  f"{total:.3f} s per image, {len(step_marks)} steps, "
                  f"{(sum(gaps) / len(gaps)) if gaps else float('nan'):.4f} s per later step")


def bench_full(args) -> None:
    import torch

    from engine.samples import sample_content

    started = time.perf_counter()
    pipe = sd_turbo_architecture()
    print(f"built random sd-turbo architecture in {time.perf_counter() - started:.1f} s "
          f"(unet {sum(p.numel() for p in pipe.unet.parameters()) / 1e6:.0f}M params)")
    image = sample_content(args.size)
    for run in range(args.runs):
        result = time_pipeline(pipe, image, steps=args.steps, strength=args.strength, seed=run)
        print(f"sd-turbo arch {args.size}px, threads {torch.get_num_threads()}, run {run + 1}: " +
              ", ".join(f"{k} {v:.2f}" if isinstance(v, float) else f"{k} {v}"
                        for k, v in result.items()))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=("tiny", "sd-turbo"), default="tiny")
    parser.add_argument("--size", type=int, default=0, help="px (default: 64 tiny, 512 sd-turbo)")
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--strength", type=float, default=1.0)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    args.size = args.size or (64 if args.arch == "tiny" else 512)
    logging.basicConfig(level=logging.WARNING)
    import torch

    if args.threads:
        torch.set_num_threads(args.threads)
    (bench_tiny if args.arch == "tiny" else bench_full)(args)


if __name__ == "__main__":
    main()

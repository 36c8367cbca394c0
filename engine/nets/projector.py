"""Putting a photo into a StyleGAN2 generator: optimisation-based projection (Karras et al. 2020).

NADA edits a real photo by finding latent codes for it in the *source* generator and then
running the adapted generator on the same codes. No pre-trained encoder (e4e, ReStyle) can
be fetched offline, so we optimise a W+ code directly, starting from the mean w, with
Adam, a cosine learning-rate ramp and decaying latent noise, against a perceptual distance
plus pixel MSE. The noise maps stay at the generator's fixed buffers, so the adapted
generator sees exactly the inputs that reproduced the photo.

The perceptual distance is LPIPS without its learned linear heads: unit-normalise VGG19
features per position, average squared differences over space, sum over layers.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn
from torch.nn import functional as F

from .stylegan2 import Generator

PERCEPTUAL_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")
LOSS_RESOLUTION = 256  # compare at most at this size, as the reference projector does
MEAN_SAMPLES = 4096


class PerceptualDistance(nn.Module):
    """LPIPS-like distance on a frozen VGG19 (engine.nets.vgg); inputs are -1..1 images."""

    def __init__(self, vgg: nn.Module, layers: tuple[str, ...] = PERCEPTUAL_LAYERS) -> None:
        super().__init__()
        self.vgg = vgg
        self.layers = layers

    def features(self, images: torch.Tensor) -> list[torch.Tensor]:
        """VGG activations of -1..1 images, unit-normalised over channels at every position."""
        out = self.vgg((images + 1) / 2, self.layers)
        return [out[name] / (out[name].norm(dim=1, keepdim=True) + 1e-10) for name in self.layers]

    @staticmethod
    def distance(fa: list[torch.Tensor], fb: list[torch.Tensor]) -> torch.Tensor:
        """Per-image distance between two feature lists from ``features``."""
        return sum((a - b).pow(2).sum(dim=1).mean(dim=(1, 2)) for a, b in zip(fa, fb))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return self.distance(self.features(a), self.features(b))


@dataclass
class Projection:
    latent: torch.Tensor  # [1, n_latent, style_dim]
    image: torch.Tensor  # reconstruction, -1..1
    initial_loss: float
    final_loss: float
    losses: list[float] = field(default_factory=list)


def lr_schedule(t: float, rampdown: float = 0.25, rampup: float = 0.05) -> float:
    """Fraction of the base learning rate at progress ``t`` in 0..1: quick ramp up, cosine ramp down."""
    ramp = min(1.0, (1.0 - t) / rampdown)
    ramp = 0.5 - 0.5 * math.cos(ramp * math.pi)
    return ramp * min(1.0, t / rampup) if rampup > 0 else ramp


def _to_loss_size(images: torch.Tensor) -> torch.Tensor:
    side = images.shape[-1]
    if side <= LOSS_RESOLUTION:
        return images
    return F.interpolate(images, size=(LOSS_RESOLUTION, LOSS_RESOLUTION), mode="area")


def project(generator: Generator, target: torch.Tensor, perceptual: PerceptualDistance, *,
            steps: int, lr: float = 0.1, mse_weight: float = 1.0, noise_ramp: float = 0.75,
            noise_strength: float = 0.05, latent_avg: torch.Tensor | None = None,
            seed: int = 0, on_step: Callable[[int, float], None] | None = None) -> Projection:
    """Find a W+ code whose image matches ``target`` ([1, 3, S, S] in -1..1, S = generator size)."""
    device = generator.input.input.device
    rng = torch.Generator().manual_seed(seed)
    generator.requires_grad_(False).eval()
    with torch.no_grad():
        z = torch.randn(MEAN_SAMPLES, generator.style_dim, generator=rng).to(device)
        samples = generator.mapping(z)
        mean = samples.mean(0, keepdim=True) if latent_avg is None else latent_avg.to(device)
        std = float(((samples - mean).pow(2).sum() / MEAN_SAMPLES) ** 0.5)
    target_small = _to_loss_size(target)
    with torch.no_grad():
        target_features = perceptual.features(target_small)  # fixed: compute once

    def loss_of(latent: torch.Tensor) -> torch.Tensor:
        image = _to_loss_size(generator(latent))
        return (perceptual.distance(perceptual.features(image), target_features).mean()
                + mse_weight * F.mse_loss(image, target_small))

    latent = generator.to_wplus(mean).detach().clone().requires_grad_(True)
    optimizer = torch.optim.Adam([latent], lr=lr)
    with torch.no_grad():
        initial = float(loss_of(latent))
    losses: list[float] = []
    for step in range(steps):
        t = step / steps
        for group in optimizer.param_groups:
            group["lr"] = lr * lr_schedule(t)
        jitter = std * noise_strength * max(0.0, 1 - t / noise_ramp) ** 2
        noisy = latent + torch.randn(latent.shape, generator=rng).to(device) * jitter
        loss = loss_of(noisy)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        losses.append(float(loss.detach()))
        if on_step is not None:
            on_step(step, losses[-1])
    with torch.no_grad():
        final_latent = latent.detach()
        final = float(loss_of(final_latent))
        image = generator(final_latent)
    return Projection(final_latent, image, initial, final, losses)

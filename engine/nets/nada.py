"""StyleGAN-NADA (Gal et al. 2021): shift a generator to a domain described only in text.

Two copies of a pre-trained StyleGAN2 generator: ``frozen`` keeps drawing the source
domain, ``trainable`` is fine-tuned so that, for the same latent code, the CLIP-space step
from the frozen image to the trainable image points the same way as the step from the
source text to the target text (the *directional CLIP loss*, paper Eq. 4). Only the
synthesis convolutions are trained; the mapping network and ToRGB layers stay frozen, and
with *adaptive layer selection* (paper Sec. 4.2) each step trains only the k W+ layers that
a one-step latent optimisation towards the target text moves the most.

Defaults follow the paper's code (rinongal/StyleGAN-nada): batch 2, Adam with the StyleGAN2
lazy-regularisation ratio (lr x 0.8, betas (0, 0.99^0.8)), layer-selection batch 8 with one
SGD step at lr 0.01, CLIP's 80 ImageNet prompt templates.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass, field
from typing import Callable, Sequence

import torch
from torch import nn

from .clip_encoder import ClipEncoder, imagenet_templates
from .stylegan2 import Generator

log = logging.getLogger(__name__)

BATCH = 2  # latent codes per adaptation step, as in the paper's runs
LAYER_SELECTION_BATCH = 8
LAYER_SELECTION_STEPS = 1
LAYER_SELECTION_LR = 0.01
G_REG_RATIO = 4 / 5  # StyleGAN2's g_reg_every=4, which the reference keeps in its Adam settings


def text_direction(clip: ClipEncoder, source: str, target: str,
                   templates: Sequence[Callable[[str], str]] | None = None) -> torch.Tensor:
    """Unit vector from the source text to the target text in CLIP space, averaged over templates."""
    templates = templates if templates is not None else imagenet_templates()
    source_features = clip.encode_texts([t(source) for t in templates])
    target_features = clip.encode_texts([t(target) for t in templates])
    direction = (target_features - source_features).mean(dim=0, keepdim=True)
    return direction / direction.norm(dim=-1, keepdim=True)


IMG2IMG_BATCH = 16  # frozen-generator samples that stand for the source domain (paper's img2img_batch)


def image_embedding(clip: ClipEncoder, styles: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean unit CLIP embedding of style images (each ``[1, 3, H, W]`` in -1..1, any size)."""
    with torch.no_grad():
        features = torch.cat([clip.encode_images(s.to(clip.device)) for s in styles])
    return features.mean(dim=0, keepdim=True)


def image_direction(clip: ClipEncoder, frozen: Generator, styles: Sequence[torch.Tensor],
                    seed: int = 2, batch: int = IMG2IMG_BATCH) -> torch.Tensor:
    """The paper's image-guided target direction (``compute_img2img_direction``): the mean CLIP
    embedding of the style images minus the mean embedding of ``batch`` images drawn by the
    frozen generator, as a unit vector."""
    device = frozen.input.input.device
    z = torch.randn(batch, frozen.style_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    with torch.no_grad():
        source = torch.cat([clip.encode_images(frozen(frozen.mapping(z[i:i + 1])))
                            for i in range(batch)]).mean(dim=0, keepdim=True)
    direction = image_embedding(clip, styles) - source
    return direction / direction.norm(dim=-1, keepdim=True)


def directional_loss(source_features: torch.Tensor, target_features: torch.Tensor,
                     direction: torch.Tensor) -> torch.Tensor:
    """1 - cos(E(trainable) - E(frozen), text direction), averaged over the batch (Eq. 4)."""
    edit = target_features - source_features
    edit = edit / edit.norm(dim=-1, keepdim=True)
    return (1 - torch.cosine_similarity(edit, direction.expand_as(edit), dim=-1)).mean()


def global_clip_loss(clip: ClipEncoder, images: torch.Tensor,
                     text_features: torch.Tensor) -> torch.Tensor:
    """1 - cos(image, text): StyleCLIP's global loss, used only to rank layers."""
    features = clip.encode_images(images)
    return (1 - features @ text_features.T).mean()


class CLIPDirectionalLoss(nn.Module):
    """The directional loss for one CLIP model and one (source, target) text pair, or, built
    with ``from_images``, towards style images (the paper's image-guided mode)."""

    def __init__(self, clip: ClipEncoder, source: str | None, target: str | None, *,
                 direction: torch.Tensor | None = None,
                 target_features: torch.Tensor | None = None) -> None:
        super().__init__()
        self.clip = clip
        if direction is None:
            direction = text_direction(clip, source, target)
            target_features = clip.encode_texts([target])
        self.register_buffer("direction", direction)
        self.register_buffer("target_features", target_features)

    @classmethod
    def from_images(cls, clip: ClipEncoder, frozen: Generator, styles: Sequence[torch.Tensor],
                    seed: int = 2) -> "CLIPDirectionalLoss":
        """Image-guided: the direction from the frozen generator's images to the style images;
        layer selection pulls towards the styles' mean embedding (normalised)."""
        target = image_embedding(clip, styles)
        return cls(clip, None, None, direction=image_direction(clip, frozen, styles, seed),
                   target_features=target / target.norm(dim=-1, keepdim=True))

    def forward(self, frozen_images: torch.Tensor, trainable_images: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            source = self.clip.encode_images(frozen_images)
        target = self.clip.encode_images(trainable_images)
        edit = target - source
        if bool((edit.norm(dim=-1) == 0).any()):
            # Identical images (before the first update, if noise has no effect) have no
            # direction yet; nudge them as the reference does so the loss is defined.
            target = self.clip.encode_images(trainable_images + 1e-6)
        return directional_loss(source, target, self.direction)


def trainable_layers(generator: Generator) -> list[nn.Module]:
    """What the paper trains without layer selection: the learned constant and every styled conv."""
    return [generator.input, *generator.styled_layers()]


def select_layers(frozen: Generator, trainable: Generator,
                  losses: Sequence[tuple[float, CLIPDirectionalLoss]], k: int,
                  rng: torch.Generator) -> list[int]:
    """Adaptive layer selection: the k W+ entries that a short latent optimisation towards the
    target text moves the most.

    Returns indices into ``styled_layers()`` (W+ entry i modulates styled layer i).
    """
    device = frozen.input.input.device
    n_layers = len(frozen.styled_layers())
    z = torch.randn(LAYER_SELECTION_BATCH, frozen.style_dim, generator=rng).to(device)
    with torch.no_grad():
        w_start = frozen.to_wplus(frozen.mapping(z))
    w = w_start.clone().requires_grad_(True)
    for _ in range(LAYER_SELECTION_STEPS):
        images = trainable(w, noise=random_noise(trainable, LAYER_SELECTION_BATCH, rng))
        loss = sum(weight * global_clip_loss(term.clip, images, term.target_features)
                   for weight, term in losses)
        (grad,) = torch.autograd.grad(loss, w)
        with torch.no_grad():
            w -= LAYER_SELECTION_LR * grad
    movement = (w.detach() - w_start).abs().mean(dim=-1).mean(dim=0)[:n_layers]
    k = max(1, min(k, n_layers))
    return sorted(torch.topk(movement, k).indices.tolist())


def random_noise(generator: Generator, batch: int, rng: torch.Generator) -> list[torch.Tensor]:
    """Fresh per-layer noise from ``rng``, so adaptation is reproducible without touching global RNG."""
    device = generator.input.input.device
    return [torch.randn(batch, 1, *buf.shape[-2:], generator=rng).to(device)
            for buf in generator.fixed_noise()]


@dataclass
class AdaptationResult:
    generator: Generator
    losses: list[float] = field(default_factory=list)
    layers_per_step: list[list[int]] = field(default_factory=list)


def adapt(frozen: Generator, losses: Sequence[tuple[float, CLIPDirectionalLoss]], *, iterations: int,
          lr: float, layers: int = 0, seed: int = 2,
          on_step: Callable[[int, float], None] | None = None,
          on_sample: Callable[[torch.Tensor], None] | None = None,
          sample_every: int = 0) -> AdaptationResult:
    """Fine-tune a copy of ``frozen`` with the weighted directional losses; ``frozen`` is untouched.

    ``layers`` = 0 trains all synthesis layers every step; k > 0 re-selects k layers each step.
    ``on_step(step, loss)`` is called after every step (progress, cancellation);
    ``on_sample(image)`` every ``sample_every`` steps with one image (-1..1, ``[1, 3, H, W]``)
    of the generator being adapted, always from the same latent, for previews.
    """
    rng = torch.Generator().manual_seed(seed)
    frozen.requires_grad_(False).eval()
    trainable = copy.deepcopy(frozen)
    trainable.requires_grad_(False)
    candidates = trainable_layers(trainable)
    params = [p for layer in candidates for p in layer.parameters()]
    optimizer = torch.optim.Adam(params, lr=lr * G_REG_RATIO,
                                 betas=(0.0, 0.99 ** G_REG_RATIO))
    device = frozen.input.input.device
    result = AdaptationResult(trainable)
    sample_z = torch.randn(1, frozen.style_dim, generator=torch.Generator().manual_seed(seed)).to(device)
    for step in range(iterations):
        trainable.requires_grad_(False)
        if layers > 0:
            chosen = select_layers(frozen, trainable, losses, layers, rng)
            styled = trainable.styled_layers()
            for i in chosen:
                styled[i].requires_grad_(True)
            result.layers_per_step.append(chosen)
        else:
            for layer in candidates:
                layer.requires_grad_(True)
        z = torch.randn(BATCH, frozen.style_dim, generator=rng).to(device)
        with torch.no_grad():
            w = frozen.mapping(z)
            frozen_images = frozen(w, noise=random_noise(frozen, BATCH, rng))
        trainable_images = trainable(w, noise=random_noise(trainable, BATCH, rng))
        loss = sum(weight * term(frozen_images, trainable_images) for weight, term in losses)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        result.losses.append(float(loss.detach()))
        if on_sample is not None and sample_every and (step + 1) % sample_every == 0:
            with torch.no_grad():
                on_sample(trainable(frozen.mapping(sample_z)).detach())
        if on_step is not None:
            on_step(step, result.losses[-1])
    trainable.requires_grad_(False).eval()
    log.info("nada adaptation: %d steps, loss %.4f -> %.4f", iterations,
             result.losses[0] if result.losses else float("nan"),
             result.losses[-1] if result.losses else float("nan"))
    return result

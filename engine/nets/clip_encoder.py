"""CLIP (Radford et al. 2021) as StyleGAN-NADA uses it: a frozen judge of images and texts.

Weights are OpenAI's released checkpoints (TorchScript archives, or plain state dicts with
the same keys), read by open_clip's own ``load_openai_model``, which rebuilds the network
from the tensor shapes; a tiny model with the same key layout loads the same way. The BPE
vocabulary ships inside the open_clip wheel, so tokenising works offline.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Callable, Sequence

import torch
from torch import nn
from torch.nn import functional as F

# CLIP's input statistics (identical for every OpenAI checkpoint).
CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)


@cache
def imagenet_templates() -> tuple[Callable[[str], str], ...]:
    """CLIP's 80 ImageNet prompt templates; NADA averages text embeddings over them."""
    from open_clip.zero_shot_metadata import OPENAI_IMAGENET_TEMPLATES

    return tuple(OPENAI_IMAGENET_TEMPLATES)


class ClipEncoder(nn.Module):
    """Unit-norm CLIP embeddings of generator images (in -1..1) and of texts."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model.eval().requires_grad_(False)
        size = model.visual.image_size
        self.image_size = tuple(size) if isinstance(size, (tuple, list)) else (int(size), int(size))
        self.context_length = int(getattr(model, "context_length", 77))
        self.register_buffer("mean", torch.tensor(CLIP_MEAN).view(1, 3, 1, 1))
        self.register_buffer("std", torch.tensor(CLIP_STD).view(1, 3, 1, 1))

    @property
    def device(self) -> torch.device:
        return self.mean.device

    def preprocess(self, images: torch.Tensor) -> torch.Tensor:
        """-1..1 generator output -> CLIP input: resize the short side, centre-crop, normalise.

        Differentiable, so gradients reach the generator (CLIP's own preprocessing is PIL-based).
        """
        x = (images + 1) / 2
        th, tw = self.image_size
        h, w = x.shape[-2:]
        scale = max(th / h, tw / w)
        nh, nw = max(th, round(h * scale)), max(tw, round(w * scale))
        if (nh, nw) != (h, w):
            x = F.interpolate(x, size=(nh, nw), mode="bicubic", align_corners=False,
                              antialias=nh < h)
        top, left = (nh - th) // 2, (nw - tw) // 2
        x = x[..., top:top + th, left:left + tw]
        return (x - self.mean) / self.std

    def encode_images(self, images: torch.Tensor) -> torch.Tensor:
        features = self.model.encode_image(self.preprocess(images))
        return features / features.norm(dim=-1, keepdim=True)

    @torch.no_grad()
    def encode_texts(self, texts: Sequence[str]) -> torch.Tensor:
        from open_clip import tokenize

        tokens = tokenize(list(texts), context_length=self.context_length).to(self.device)
        features = self.model.encode_text(tokens).float()
        return features / features.norm(dim=-1, keepdim=True)


def load_clip(path: Path, device: torch.device | str = "cpu") -> ClipEncoder:
    """Load an OpenAI CLIP checkpoint (JIT archive or state dict) through open_clip, in fp32."""
    from open_clip import load_openai_model

    model = load_openai_model(str(path), precision="fp32", device="cpu")
    return ClipEncoder(model).to(device)

"""Gatys et al. 2015, "A Neural Algorithm of Artistic Style": the losses and the optimisation.

The picture itself is the only thing trained: starting from the content photo (or noise),
its pixels are moved so that VGG19 sees the content photo's features at ``relu4_2`` and
the style images' Gram matrices at ``relu1_1``..``relu5_1``. Large outputs are made coarse
to fine: optimised at half size first, then upsampled and refined, which places the
style's big structures better and costs far less than starting at full size.

Kept apart from ``engine/methods/gatys.py`` so that listing methods never imports torch.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from typing import Callable, Iterator, Literal, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from .vgg import VGGFeatures, gram_matrix

log = logging.getLogger(__name__)

# The paper's layers. Caffe applies ReLU in place, so the paper's "conv4_2" is what
# torchvision calls relu4_2; likewise for the style layers.
STYLE_LAYERS = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")
CONTENT_LAYER = "relu4_2"
DEFAULT_STYLE_LAYER_WEIGHTS = (1.0, 1.0, 1.0, 1.0, 1.0)

# The default weights (style 1e6, content 1) are the PyTorch tutorial's, tuned for
# torchvision's VGG19. The Caffe VGG19 sees 0..255 BGR input and its activations are
# hundreds of times larger, so its features are scaled by k before the losses. With the
# same Gram and MSE normalisation as jcjohnson/neural-style (the reference Caffe-VGG
# implementation, style 100 : content 5 on raw features), 1e6 * k**2 = 20 gives exactly
# that balance for the default weights.
FEATURE_SCALE = {"torchvision": 1.0, "caffe": math.sqrt(20.0 / 1e6)}

MULTISCALE_THRESHOLD = 512  # longest side above which we go coarse to fine
LBFGS_HISTORY = 20  # L-BFGS memory; 100 (torch's default) costs too much at 1024+ px
LINE_SEARCH_EVALS = 20  # most evaluations one iteration's line search may take (usually 1-2)

Optimizer = Literal["lbfgs", "adam"]
Init = Literal["content", "noise"]


@dataclass
class GatysConfig:
    """Everything that shapes one run; the method builds it from validated options."""

    style_weight: float = 1e6
    content_weight: float = 1.0
    tv_weight: float = 0.0
    iterations: int = 200
    optimizer: Optimizer = "lbfgs"
    learning_rate: float = 0.02  # Adam only; L-BFGS uses its natural step of 1
    init: Init = "content"
    style_layer_weights: Sequence[float] = DEFAULT_STYLE_LAYER_WEIGHTS
    seed: int = 0
    multiscale_threshold: int = MULTISCALE_THRESHOLD


@dataclass(frozen=True)
class Step:
    """Losses of the image at the start of one iteration (already weighted)."""

    iteration: int  # 0-based, counted across all scales
    scale: int  # 0-based index into ``GatysResult.sizes``
    scales: int  # how many scales this run has
    size: tuple[int, int]  # (width, height) being optimised
    total: float
    content: float
    style: float
    tv: float


@dataclass
class GatysResult:
    image: torch.Tensor  # [1, 3, H, W] in 0..1
    history: list[Step] = field(default_factory=list)
    sizes: list[tuple[int, int]] = field(default_factory=list)  # (width, height) per scale


StepCallback = Callable[[Step, int, torch.Tensor], None]  # step, total iterations, image


class ContentLoss(nn.Module):
    """Squared error between the image's and the content photo's features at one layer."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("target", target.detach())

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return F.mse_loss(features, self.target)


class StyleLoss(nn.Module):
    """Weighted squared error between Gram matrices, summed over the style layers.

    Several style images are blended by mixing their Gram targets, which is what the
    paper's loss would do with one image holding both textures.
    """

    def __init__(self, targets: dict[str, torch.Tensor], layer_weights: dict[str, float]) -> None:
        super().__init__()
        self.layers = list(targets)
        self.layer_weights = layer_weights
        for name, gram in targets.items():
            self.register_buffer(f"target_{name}", gram.detach())

    def forward(self, features: dict[str, torch.Tensor]) -> torch.Tensor:
        loss = features[self.layers[0]].new_zeros(())
        for name in self.layers:
            weight = self.layer_weights[name]
            if weight:
                loss = loss + weight * F.mse_loss(gram_matrix(features[name]),
                                                  getattr(self, f"target_{name}"))
        return loss


class TotalVariation(nn.Module):
    """Mean squared difference of neighbouring pixels: discourages high-frequency noise."""

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        dy = image[:, :, 1:, :] - image[:, :, :-1, :]
        dx = image[:, :, :, 1:] - image[:, :, :, :-1]
        return dy.pow(2).mean() + dx.pow(2).mean()


class GatysLoss(nn.Module):
    """The paper's objective for one scale: a*content + b*style (+ c*total variation)."""

    def __init__(self, vgg: VGGFeatures, content: torch.Tensor, styles: Sequence[torch.Tensor],
                 blend: Sequence[float], config: GatysConfig) -> None:
        super().__init__()
        self.vgg = vgg
        self.scale = FEATURE_SCALE[vgg.convention]
        self.style_weight = config.style_weight
        self.content_weight = config.content_weight
        self.tv_weight = config.tv_weight
        layer_weights = dict(zip(STYLE_LAYERS, (float(w) for w in config.style_layer_weights)))
        self.style_layers = [name for name in STYLE_LAYERS if layer_weights[name]]
        with torch.no_grad():
            target = self.features(content, [CONTENT_LAYER])[CONTENT_LAYER]
            grams: dict[str, torch.Tensor] = {}
            for image, share in zip(styles, blend):
                feats = self.features(image, self.style_layers)
                for name in self.style_layers:
                    gram = share * gram_matrix(feats[name])
                    grams[name] = grams[name] + gram if name in grams else gram
        self.content_loss = ContentLoss(target)
        self.style_loss = StyleLoss(grams, layer_weights)
        self.total_variation = TotalVariation()

    def features(self, image: torch.Tensor, layers: Sequence[str]) -> dict[str, torch.Tensor]:
        out = self.vgg(image, layers)
        if self.scale != 1.0:
            out = {name: value * self.scale for name, value in out.items()}
        return out

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Weighted (content, style, tv) terms; their sum is what is minimised."""
        feats = self.features(image, [CONTENT_LAYER, *self.style_layers])
        content = self.content_weight * self.content_loss(feats[CONTENT_LAYER])
        style = self.style_weight * self.style_loss(feats)
        tv = content.new_zeros(())
        if self.tv_weight:
            tv = self.tv_weight * self.total_variation(image)
        return content, style, tv


def plan_sizes(width: int, height: int, threshold: int) -> list[tuple[int, int]]:
    """Sizes to optimise at, coarse to fine: halve until the longest side fits ``threshold``."""
    sizes = [(width, height)]
    while max(sizes[0]) > threshold:
        w, h = sizes[0]
        sizes.insert(0, (max(1, round(w / 2)), max(1, round(h / 2))))
    return sizes


def split_iterations(total: int, n_scales: int) -> list[int]:
    """Iterations per scale, adding up to ``total``; coarse scales take any remainder."""
    n_scales = min(n_scales, total)
    base, extra = divmod(total, n_scales)
    return [base + (1 if i < extra else 0) for i in range(n_scales)]


def resize(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of a [1, 3, H, W] tensor to (width, height), antialiased when shrinking."""
    width, height = size
    if image.shape[-2:] == (height, width):
        return image
    shrinking = height < image.shape[-2] or width < image.shape[-1]
    return F.interpolate(image, size=(height, width), mode="bicubic", align_corners=False,
                         antialias=shrinking).clamp(0, 1)


def fit_side(image: torch.Tensor, side: int) -> torch.Tensor:
    """Resize so the longest side is ``side``, keeping aspect (style images)."""
    h, w = image.shape[-2:]
    scale = side / max(h, w)
    return resize(image, (max(1, round(w * scale)), max(1, round(h * scale))))


def initial_image(content: torch.Tensor, config: GatysConfig,
                  start: torch.Tensor | None = None) -> torch.Tensor:
    """The starting picture: ``start`` when given (at the content's size), else the content
    photo, or seeded white noise (the paper's choice)."""
    if start is not None:
        return resize(start, (content.shape[-1], content.shape[-2])).clone()
    if config.init == "content":
        return content.clone()
    generator = torch.Generator(device="cpu").manual_seed(config.seed)
    noise = torch.rand(content.shape, generator=generator, dtype=torch.float32)
    return noise.to(content.device)


def stylize(vgg: VGGFeatures, content: torch.Tensor, styles: Sequence[torch.Tensor],
            config: GatysConfig, blend: Sequence[float] | None = None,
            on_step: StepCallback | None = None, start: torch.Tensor | None = None) -> GatysResult:
    """Run the optimisation; returns the image and the loss of every iteration.

    ``content`` and ``styles`` are RGB [1, 3, H, W] tensors in 0..1 on the VGG's device.
    ``on_step`` is called after every iteration (it may raise to stop the run). ``start``,
    like ``content``, is a picture to optimise from instead of ``config.init``'s (a draft).
    """
    if not styles:
        raise ValueError("stylize needs at least one style image")
    blend = list(blend) if blend is not None else [1.0] * len(styles)
    total_share = sum(blend)
    blend = [b / total_share for b in blend]
    height, width = content.shape[-2:]
    sizes = plan_sizes(width, height, config.multiscale_threshold)
    per_scale = split_iterations(config.iterations, len(sizes))
    sizes = sizes[len(sizes) - len(per_scale):]  # very few iterations: skip coarsest scales
    result = GatysResult(image=content, sizes=sizes)

    image: torch.Tensor | None = None
    done = 0
    for scale, (size, iterations) in enumerate(zip(sizes, per_scale)):
        scaled_content = resize(content, size)
        scaled_styles = [fit_side(s, max(size)) for s in styles]
        objective = GatysLoss(vgg, scaled_content, scaled_styles, blend, config)
        begin = initial_image(scaled_content, config, start) if image is None else resize(image, size)
        log.debug("gatys scale %d/%d: %dx%d, %d iterations", scale + 1, len(sizes), *size,
                  iterations)
        for image, (content_loss, style_loss, tv_loss) in _iterate(objective, begin, config,
                                                                   iterations):
            step = Step(iteration=done, scale=scale, scales=len(sizes), size=size,
                        total=content_loss + style_loss + tv_loss, content=content_loss,
                        style=style_loss, tv=tv_loss)
            if not math.isfinite(step.total):
                raise FloatingPointError(f"gatys loss became {step.total} at iteration {done}")
            result.history.append(step)
            done += 1
            if on_step is not None:
                on_step(step, config.iterations, image)
    assert image is not None
    result.image = image.clamp(0, 1)
    return result


def _iterate(objective: GatysLoss, start: torch.Tensor, config: GatysConfig,
             iterations: int) -> Iterator[tuple[torch.Tensor, tuple[float, float, float]]]:
    """One scale's iterations, yielding (image after the step, losses before it).

    L-BFGS is stepped one iteration at a time (its memory persists between ``step``
    calls) so that every iteration can be reported and cancelled. Its strong-Wolfe line
    search keeps it from the wild first steps plain L-BFGS takes from noise. Each
    ``step`` starts by re-evaluating the point the previous line search accepted, so
    those evaluations are remembered and reused rather than paying a second VGG pass.
    """
    image = start.detach().clone().requires_grad_(True)
    lbfgs = config.optimizer == "lbfgs"
    if lbfgs:
        optimizer: torch.optim.Optimizer = torch.optim.LBFGS(
            [image], lr=1.0, max_iter=1, max_eval=1 + LINE_SEARCH_EVALS,
            history_size=LBFGS_HISTORY, line_search_fn="strong_wolfe")
    else:
        optimizer = torch.optim.Adam([image], lr=config.learning_rate)
    losses: list[tuple[float, float, float]] = []  # each evaluation in the current step
    this_step: list[_Evaluation] = []
    last_step: list[_Evaluation] = []

    def closure() -> torch.Tensor:
        for known in last_step:
            if torch.equal(known.point, image):
                image.grad = known.grad.clone()
                losses.append(known.losses)
                return image.new_tensor(known.total)
        optimizer.zero_grad(set_to_none=True)
        content, style, tv = objective(image)
        total = content + style + tv
        total.backward()
        losses.append((content.item(), style.item(), tv.item()))
        if lbfgs:
            this_step.append(_Evaluation(image.detach().clone(), total.item(), losses[-1],
                                         image.grad.detach().clone()))
        return total

    for _ in range(iterations):
        losses.clear()
        optimizer.step(closure)
        last_step[:] = this_step
        this_step.clear()
        if not lbfgs:
            with torch.no_grad():
                image.clamp_(0, 1)
        yield image.detach(), losses[0]  # first evaluation: the iterate the step started from


@dataclass
class _Evaluation:
    """One point the objective was evaluated at, kept for reuse by the next L-BFGS step."""

    point: torch.Tensor
    total: float
    losses: tuple[float, float, float]
    grad: torch.Tensor

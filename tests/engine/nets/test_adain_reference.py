"""The project's AdaIN against a minimal re-statement of pytorch-AdaIN's forward pass.

The reference (naoto0804/pytorch-AdaIN, ``net.py``/``function.py``/``test.py``) is restated
here from its documented behaviour, not imported or copied: two ``nn.Sequential``s keyed by
module index, a 1x1 input conv then reflection-padded 3x3 convs, max pools that round up,
nearest x2 upsampling in the decoder; AdaIN with the unbiased per-channel variance plus
1e-5; ``alpha`` blends the AdaIN target with the content features; the image goes through
the networks at its own size (no padding), and its output is read on the input's pixels.
Both sides get the same random weights, written in the official file layout.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch import nn

from engine.images import to_image, to_tensor
from engine.methods import get_method
from engine.methods.base import MethodInput, RunContext
from engine.models import ModelCache
from engine.samples import sample_content, sample_style
from engine.settings import EngineSettings
from engine.weights import WeightStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Channels per conv, in encoder order; "M" is a max pool. Up to relu4_1 and beyond, as
# the released vgg_normalised.pth holds the whole network.
VGG_PLAN = [64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M",
            512, 512, 512, 512]
# Decoder: channels per conv, "U" a nearest x2 upsampling; the last conv has no ReLU.
DECODER_PLAN = [256, "U", 256, 256, 256, 128, "U", 128, 64, "U", 64, 3]
RELU4_1 = 31  # number of vgg modules up to and including relu4_1


def reference_vgg() -> nn.Sequential:
    layers: list[nn.Module] = [nn.Conv2d(3, 3, 1)]
    channels = 3
    for item in VGG_PLAN:
        if item == "M":
            layers.append(nn.MaxPool2d(2, 2, 0, ceil_mode=True))
        else:
            layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, item, 3), nn.ReLU()]
            channels = item
    return nn.Sequential(*layers)


def reference_decoder() -> nn.Sequential:
    layers: list[nn.Module] = []
    channels = 512
    for i, item in enumerate(DECODER_PLAN):
        if item == "U":
            layers.append(nn.Upsample(scale_factor=2, mode="nearest"))
            continue
        layers += [nn.ReflectionPad2d(1), nn.Conv2d(channels, item, 3)]
        if i < len(DECODER_PLAN) - 1:
            layers.append(nn.ReLU())
        channels = item
    return nn.Sequential(*layers)


def random_weights(seed: int = 7) -> tuple[nn.Sequential, nn.Sequential]:
    """He-initialised convs; an identity-ish input conv and a small last conv keep the
    activations alive and the output inside 0..1, so 8-bit images carry the comparison."""
    torch.manual_seed(seed)
    vgg, decoder = reference_vgg(), reference_decoder()
    for net in (vgg, decoder):
        for m in net.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
                nn.init.uniform_(m.bias, -0.05, 0.05)
    with torch.no_grad():
        vgg[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1) + 0.05 * torch.randn(3, 3, 1, 1))
        vgg[0].bias.fill_(-0.5)
        decoder[-1].weight.mul_(0.2)
        decoder[-1].bias.fill_(0.5)
    return vgg.eval(), decoder.eval()


def mean_std(feat: torch.Tensor, eps: float = 1e-5) -> tuple[torch.Tensor, torch.Tensor]:
    n, c = feat.shape[:2]
    flat = feat.reshape(n, c, -1)
    return (flat.mean(2).reshape(n, c, 1, 1),
            (flat.var(2) + eps).sqrt().reshape(n, c, 1, 1))


@torch.no_grad()
def reference_style_transfer(vgg, decoder, content, style, alpha=1.0) -> torch.Tensor:
    encoder = vgg[:RELU4_1]
    content_f, style_f = encoder(content), encoder(style)
    c_mean, c_std = mean_std(content_f)
    s_mean, s_std = mean_std(style_f)
    target = (content_f - c_mean) / c_std * s_std + s_mean
    return decoder(alpha * target + (1 - alpha) * content_f)


@pytest.fixture(scope="module")
def reference_nets(tmp_path_factory):
    vgg, decoder = random_weights()
    root = tmp_path_factory.mktemp("adain-reference")
    (root / "adain").mkdir()
    torch.save(vgg.state_dict(), root / "adain" / "vgg_normalised.pth")
    torch.save(decoder.state_dict(), root / "adain" / "decoder.pth")
    return vgg, decoder, root


def run_project(root: Path, tmp_path: Path, content: Image.Image, style: Image.Image,
                runtime: str = "torch", **options) -> tuple[Image.Image, torch.Tensor | None]:
    """The method's result, and (on the torch path) its decoder's float output read on the
    content's pixels; the ONNX Runtime path has no torch module to read it from."""
    from engine.nets.adain import Decoder

    settings = EngineSettings(home=tmp_path / "home", weights_dir=root, allow_downloads=False,
                              device="cpu", cpu_runtime=runtime)
    ctx = RunContext(device="cpu", settings=settings, weights=WeightStore.from_settings(settings),
                     models=ModelCache(10**9))
    method = get_method("adain")
    inp = MethodInput(content=content, options=method.options.validate(options, method="adain"),
                      seed=0, size=max(content.size), styles=[style])
    decoded = []

    def keep(module, args, out):
        if isinstance(module, Decoder):
            decoded.append(out.detach().float())

    if runtime != "torch":
        return method.run(inp, ctx), None
    handle = torch.nn.modules.module.register_module_forward_hook(keep)
    try:
        image = method.run(inp, ctx)
    finally:
        handle.remove()
    (out,) = decoded
    width, height = content.size
    return image, out[..., :height, :width]


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


# Width x height: multiples of 8, the 256x171, odd and prime sides, a thin strip.
SIZES = [(64, 48), (256, 171), (61, 45), (97, 53), (23, 40), (13, 70)]


@pytest.mark.parametrize("size", SIZES)
@pytest.mark.parametrize("alpha", [1.0, 0.5])
def test_adain_equals_the_reference_on_the_same_pixels(reference_nets, tmp_path, size, alpha):
    vgg, decoder, root = reference_nets
    content = sample_content(max(size)).resize(size, Image.Resampling.LANCZOS)
    style = sample_style(max(size))  # already at the content's scale: no resizing on our side
    image, ours = run_project(root, tmp_path, content, style, strength=alpha)

    width, height = size
    expected = reference_style_transfer(vgg, decoder, to_tensor(content), to_tensor(style),
                                        alpha)[..., :height, :width]
    assert image.size == size and ours.shape == expected.shape
    diff = (ours - expected).abs()
    assert diff.max() < 1e-4, f"max {diff.max():.3g} mean {diff.mean():.3g}"
    assert np.abs(pixels(image) - pixels(to_image(expected))).max() <= 1


@pytest.mark.parametrize("size", SIZES[1:4])
def test_the_cpu_runtime_gives_the_references_pixels_at_odd_sizes(reference_nets, tmp_path, size):
    """The ONNX Runtime path (the CPU default) runs the same graph at the image's own size."""
    vgg, decoder, root = reference_nets
    content = sample_content(max(size)).resize(size, Image.Resampling.LANCZOS)
    style = sample_style(max(size))
    image, _ = run_project(root, tmp_path, content, style, runtime="onnx")
    width, height = size
    expected = reference_style_transfer(vgg, decoder, to_tensor(content), to_tensor(style),
                                        1.0)[..., :height, :width]
    assert image.size == size
    assert np.abs(pixels(image) - pixels(to_image(expected))).max() <= 1


# --- colour control: the reference recolours the style with CORAL before encoding --------

def reference_coral(source: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """pytorch-AdaIN's ``coral(style, content)``, restated: standardise each image per
    channel (unbiased std), take scatter + identity, whiten the source with the inverse
    square root of its own (square roots through the SVD), colour it with the target's,
    restore the target's std and mean."""
    def stats(x):
        flat = x.reshape(3, -1)
        mean, std = flat.mean(-1, keepdim=True), flat.std(-1, keepdim=True)
        norm = (flat - mean) / std
        return norm, mean, std, norm @ norm.t() + torch.eye(3)

    def mat_sqrt(m):
        u, d, v = torch.svd(m)
        return u @ d.pow(0.5).diag() @ v.t()

    s_norm, _, _, s_cov = stats(source)
    _, t_mean, t_std, t_cov = stats(target)
    moved = mat_sqrt(t_cov) @ torch.inverse(mat_sqrt(s_cov)) @ s_norm
    return (moved * t_std + t_mean).view(source.shape)


def test_coral_equals_the_reference():
    from engine.nets.adain import coral

    torch.manual_seed(0)
    source = torch.rand(3, 40, 30) * torch.tensor([1.0, 0.5, 0.2]).view(3, 1, 1)
    target = torch.rand(3, 25, 33).pow(2)
    expected = reference_coral(source, target)
    torch.testing.assert_close(coral(source, target), expected, rtol=1e-4, atol=1e-4)
    recoloured = coral(source, target).reshape(3, -1)
    torch.testing.assert_close(recoloured.mean(1), target.reshape(3, -1).mean(1), rtol=0, atol=1e-5)


@pytest.mark.parametrize("size", [(64, 48), (61, 45)])
def test_coral_colour_control_equals_the_reference(reference_nets, tmp_path, size):
    vgg, decoder, root = reference_nets
    content = sample_content(max(size)).resize(size, Image.Resampling.LANCZOS)
    style = sample_style(max(size))
    image, ours = run_project(root, tmp_path, content, style, preserve_color=True, color="coral")

    width, height = size
    c = to_tensor(content)
    s = reference_coral(to_tensor(style)[0], c[0]).unsqueeze(0)
    expected = reference_style_transfer(vgg, decoder, c, s)[..., :height, :width]
    diff = (ours - expected).abs()
    assert diff.max() < 1e-4, f"max {diff.max():.3g} mean {diff.mean():.3g}"
    assert np.abs(pixels(image) - pixels(to_image(expected))).max() <= 1


def test_preserve_color_alone_keeps_the_luminance_transfer(reference_nets, tmp_path):
    from engine.images import preserve_color

    vgg, decoder, root = reference_nets
    content, style = sample_content(64).resize((64, 48)), sample_style(64)
    image, ours = run_project(root, tmp_path, content, style, preserve_color=True)
    assert np.abs(pixels(image) - pixels(preserve_color(content, to_image(ours)))).max() == 0

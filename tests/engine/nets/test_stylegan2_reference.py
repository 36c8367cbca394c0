"""The project's StyleGAN2 generator against a minimal re-statement of the reference's
forward pass (Karras et al. 2020; rosinality/stylegan2-pytorch's documented layout),
written here per sample with plain convolutions rather than grouped ones, on the same
random weights in the rosinality key layout (a tiny generator of the real architecture).

Restated: mapping = pixel norm, then equalised-lr linears (weight x lr_mul/sqrt(in),
bias x lr_mul) with leaky ReLU 0.2 x sqrt 2; each styled conv modulates its weight by an
equalised linear of w (bias init 1), demodulates, adds scaled noise, then biased leaky
ReLU; up-sampling convs are stride-2 transposed convs followed by the [1,3,3,1] FIR
(x4, padding 1); ToRGB is an unmodulated-by-demod 1x1 conv plus bias, added to the
FIR-upsampled skip (zero insertion, padding 2/1, x4).
"""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from engine.nets.stylegan2 import Generator

pytestmark = pytest.mark.usefixtures("one_torch_thread")

SQRT2 = math.sqrt(2)
FIR = torch.tensor([1.0, 3.0, 3.0, 1.0], dtype=torch.float64)
FIR2D = torch.outer(FIR, FIR) / torch.outer(FIR, FIR).sum()


def lrelu(x, bias):
    return F.leaky_relu(x + bias.view(1, -1, *([1] * (x.dim() - 2))), 0.2) * SQRT2


def fir(x, pad0, pad1, gain):
    c = x.shape[1]
    x = F.pad(x, [pad0, pad1, pad0, pad1])
    return F.conv2d(x, (FIR2D * gain).to(x).expand(c, 1, 4, 4), groups=c)


def equal_linear(s, prefix, w, lr_mul=1.0):
    weight, bias = s[f"{prefix}.weight"], s[f"{prefix}.bias"]
    return F.linear(w, weight * lr_mul / math.sqrt(weight.shape[1]), bias * lr_mul)


def modulated(s, prefix, x, w, demodulate=True, up=False):
    weight = s[f"{prefix}.weight"][0]  # [out, in, k, k]
    out = []
    for b in range(x.shape[0]):
        style = equal_linear(s, f"{prefix}.modulation", w[b:b + 1])[0]
        wb = weight * style.view(1, -1, 1, 1) / math.sqrt(weight[0].numel())
        if demodulate:
            wb = wb / (wb.pow(2).sum(dim=(1, 2, 3), keepdim=True) + 1e-8).sqrt()
        if up:
            y = F.conv_transpose2d(x[b:b + 1], wb.transpose(0, 1), stride=2)
            out.append(fir(y, 1, 1, 4))
        else:
            out.append(F.conv2d(x[b:b + 1], wb, padding=wb.shape[-1] // 2))
    return torch.cat(out)


def styled(s, prefix, x, w, noise, up=False):
    x = modulated(s, f"{prefix}.conv", x, w, up=up)
    x = x + s[f"{prefix}.noise.weight"] * noise
    return lrelu(x, s[f"{prefix}.activate.bias"])


def to_rgb(s, prefix, x, w, skip):
    out = modulated(s, f"{prefix}.conv", x, w, demodulate=False) + s[f"{prefix}.bias"]
    if skip is not None:
        up = torch.zeros(skip.shape[0], 3, skip.shape[2] * 2, skip.shape[3] * 2, dtype=skip.dtype)
        up[:, :, ::2, ::2] = skip
        out = out + fir(up, 2, 1, 4)
    return out


def reference_mapping(s, z, n_mlp, lr_mlp=0.01):
    w = z * torch.rsqrt(z.pow(2).mean(dim=1, keepdim=True) + 1e-8)
    for i in range(1, n_mlp + 1):
        w = lrelu(F.linear(w, s[f"style.{i}.weight"] * lr_mlp / math.sqrt(w.shape[1])),
                  s[f"style.{i}.bias"] * lr_mlp)
    return w


@torch.no_grad()
def reference_synthesis(s, wplus, n_convs):
    noise = [s[f"noises.noise_{i}"] for i in range(n_convs + 1)]
    x = s["input.input"].repeat(wplus.shape[0], 1, 1, 1)
    x = styled(s, "conv1", x, wplus[:, 0], noise[0])
    skip = to_rgb(s, "to_rgb1", x, wplus[:, 1], None)
    for j in range(n_convs // 2):
        i = 1 + 2 * j
        x = styled(s, f"convs.{2 * j}", x, wplus[:, i], noise[i], up=True)
        x = styled(s, f"convs.{2 * j + 1}", x, wplus[:, i + 1], noise[i + 1])
        skip = to_rgb(s, f"to_rgbs.{j}", x, wplus[:, i + 2], skip)
    return skip


@pytest.mark.parametrize("config", [dict(size=16, style_dim=32, n_mlp=3, channel_multiplier=2,
                                         channel_max=16),
                                    dict(size=32, style_dim=16, n_mlp=2, channel_multiplier=1,
                                         channel_max=8)])
def test_generator_equals_the_reference_on_random_weights(config):
    torch.manual_seed(0)
    generator = Generator(**config).double().eval()
    with torch.no_grad():  # noise strengths are 0 at init; give them weight
        for layer in generator.styled_layers():
            layer.noise.weight.fill_(0.3)
            layer.activate.bias.normal_(0, 0.1)
    state = {k: v.double() for k, v in generator.state_dict().items()}
    z = torch.randn(3, config["style_dim"], dtype=torch.float64)
    with torch.no_grad():
        w = generator.mapping(z)
        torch.testing.assert_close(w, reference_mapping(state, z, config["n_mlp"]))
        wplus = torch.randn(3, generator.n_latent, config["style_dim"], dtype=torch.float64)
        expected = reference_synthesis(state, wplus, len(generator.convs))
        torch.testing.assert_close(generator(wplus), expected, rtol=1e-9, atol=1e-9)
        torch.testing.assert_close(generator(w), reference_synthesis(
            state, w.unsqueeze(1).repeat(1, generator.n_latent, 1), len(generator.convs)),
            rtol=1e-9, atol=1e-9)

"""The project's TransformerNet against a minimal re-statement of pytorch/examples' forward.

Restated from Johnson et al. 2016 and pytorch/examples' documented network (not copied):
reflection padding of kernel // 2 before every conv, instance norm with affine parameters
(eps 1e-5), ReLU after every norm, five residual blocks without a ReLU after the sum, and
nearest x2 upsampling before the first two decoder convs. The reference runs an image at
its own size (no padding); its output is read on the input's pixels. Both sides get the
same random weights in the official key layout, loaded by the project from a file.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from engine.nets.transformer_net import TransformerNet, load_transformer_net, stylize

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def conv(state, name, x, stride=1, upsample=False):
    if upsample:
        x = F.interpolate(x, scale_factor=2, mode="nearest")
    weight = state[f"{name}.conv2d.weight"]
    x = F.pad(x, [weight.shape[-1] // 2] * 4, mode="reflect")
    return F.conv2d(x, weight, state[f"{name}.conv2d.bias"], stride=stride)


def norm(state, name, x):
    return F.instance_norm(x, weight=state[f"{name}.weight"], bias=state[f"{name}.bias"], eps=1e-5)


@torch.no_grad()
def reference_forward(state: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    y = F.relu(norm(state, "in1", conv(state, "conv1", x)))
    y = F.relu(norm(state, "in2", conv(state, "conv2", y, stride=2)))
    y = F.relu(norm(state, "in3", conv(state, "conv3", y, stride=2)))
    for i in range(1, 6):
        r = f"res{i}"
        h = F.relu(norm(state, f"{r}.in1", conv(state, f"{r}.conv1", y)))
        y = y + norm(state, f"{r}.in2", conv(state, f"{r}.conv2", h))
    y = F.relu(norm(state, "in4", conv(state, "deconv1", y, upsample=True)))
    y = F.relu(norm(state, "in5", conv(state, "deconv2", y, upsample=True)))
    return conv(state, "deconv3", y)


@pytest.fixture(scope="module")
def official_file(tmp_path_factory):
    torch.manual_seed(3)
    state = {}
    for key, value in TransformerNet().state_dict().items():
        if key.endswith("conv2d.weight"):
            fan_in = value[0].numel()
            state[key] = torch.randn(value.shape) * (2 / fan_in) ** 0.5
        elif key.split(".")[-2].startswith("in") and key.endswith("weight"):
            state[key] = 1 + 0.3 * torch.randn(value.shape)
        else:
            state[key] = 0.1 * torch.randn(value.shape)
    path = tmp_path_factory.mktemp("fast") / "candy.pth"
    torch.save(state, path)
    return path, state


# Height x width: multiples of 4, odd and prime sides, a thin strip.
@pytest.mark.parametrize("hw", [(64, 48), (45, 61), (53, 97), (50, 37), (9, 70)])
def test_transformer_net_equals_the_reference_on_the_same_pixels(official_file, hw):
    path, state = official_file
    net = load_transformer_net(path)
    torch.manual_seed(hw[0] * 1000 + hw[1])
    x = torch.rand(2, 3, *hw) * 255
    with torch.inference_mode():
        ours = stylize(net, x)
    expected = reference_forward(state, x)[..., :hw[0], :hw[1]]
    assert ours.shape == expected.shape
    diff = (ours - expected).abs().max()
    assert diff < 1e-3, f"max difference {diff:.3g} (of 0..255)"

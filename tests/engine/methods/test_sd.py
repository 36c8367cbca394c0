"""The sd method, run end to end on tiny randomly initialised pipelines.

The pipelines are saved with ``save_pretrained`` in the Hub's folder layout and found
through the real weights store (weights folder by repo id, our HF cache, local folders),
so loading, scheduler swapping, progress, cancellation and the safety filter all run the
code a real model would.
"""

from __future__ import annotations

import shutil
import threading

import numpy as np
import pytest

from engine.errors import JobCancelled, OptionError, UserError, WeightsMissing
from engine.methods.base import MethodInput, RunContext
from engine.methods.sd import FLAGGED_MESSAGE, OPTIONS, SCHEDULERS, StableDiffusionMethod
from engine.models import ModelCache
from engine.samples import sample_content
from engine.settings import EngineSettings
from engine.weights import WeightStore

from .sd_tiny import save_safety_checker, save_sd, save_sdxl

# Tiny networks: on a shared 2-core machine a second torch thread only spins.
pytestmark = pytest.mark.usefixtures("one_torch_thread")

PROMPT = "a watercolour of a house"


@pytest.fixture(scope="session")
def sd_weights(tmp_path_factory):
    """A weights folder laid out like STYLEBOT_WEIGHTS_DIR, holding tiny models by repo id."""
    root = tmp_path_factory.mktemp("sd-weights")
    save_sd(root / "stabilityai" / "sd-turbo")
    shutil.copytree(root / "stabilityai" / "sd-turbo", root / "tests" / "tiny-sd")
    save_safety_checker(root / "CompVis" / "stable-diffusion-safety-checker", flag=False)
    return root


@pytest.fixture(scope="session")
def flagging_model(tmp_path_factory):
    """A model folder outside the weights folder that ships its own (always-flagging) checker."""
    return save_sd(tmp_path_factory.mktemp("flagging") / "tiny-sd-with-checker", safety=True)


@pytest.fixture(scope="session")
def sdxl_weights(tmp_path_factory, sd_weights):
    root = tmp_path_factory.mktemp("sdxl-weights")
    save_sdxl(root / "stabilityai" / "sdxl-turbo")
    shutil.copytree(sd_weights / "CompVis", root / "CompVis")
    return root


@pytest.fixture
def sd_settings(tmp_path, sd_weights):
    def factory(**overrides):
        values = dict(home=tmp_path / "home", weights_dir=sd_weights, allow_downloads=False,
                      device="cpu", max_side=256)
        values.update(overrides)
        return EngineSettings(**values)

    return factory


def context(settings, *, models=None, cancel_event=None, on_progress=None):
    calls: list[tuple[float, str]] = []
    previews: list = []

    def record(fraction, stage, preview):
        calls.append((fraction, stage))
        if preview is not None:
            previews.append(preview)
        if on_progress is not None:
            on_progress(fraction, stage)

    ctx = RunContext(device="cpu", settings=settings, weights=WeightStore.from_settings(settings),
                     models=models or ModelCache(2_000_000_000), on_progress=record,
                     cancel_event=cancel_event)
    ctx.progress_calls = calls
    ctx.previews = previews
    return ctx


def method_input(seed=1, size=64, **options):
    return MethodInput(content=sample_content(size), options=OPTIONS.validate(options, method="sd"),
                       seed=seed, size=size, prompt=PROMPT)


def loaded(models):
    """The one sd model the cache holds (pipeline, scheduler config, safety filter)."""
    (key,) = [k for k in models.keys() if k.startswith("sd:")]
    return models.get(key, lambda: pytest.fail("not loaded"))


def denoising(ctx):
    return [f for f, stage in ctx.progress_calls if stage == "denoising"]


def pixels(img):
    return np.asarray(img, dtype=np.int16)


def test_strength_zero_returns_the_input_exactly_without_loading_a_model(sd_settings):
    ctx = context(sd_settings())
    inp = method_input(strength=0)
    out = StableDiffusionMethod().run(inp, ctx)
    assert np.array_equal(pixels(out), pixels(inp.content))
    assert ctx.models.loads == 0


def test_result_is_an_image_of_the_input_size_that_differs_from_the_input(sd_settings):
    ctx = context(sd_settings())
    inp = method_input(strength=0.5, steps=4)
    out = StableDiffusionMethod().run(inp, ctx)
    assert out.mode == "RGB" and out.size == inp.content.size
    assert np.abs(pixels(out) - pixels(inp.content)).mean() > 1


def test_the_seed_makes_results_reproducible(sd_settings):
    method, ctx = StableDiffusionMethod(), context(sd_settings())
    first = method.run(method_input(seed=7, steps=2, strength=1.0), ctx)
    again = method.run(method_input(seed=7, steps=2, strength=1.0), ctx)
    other = method.run(method_input(seed=8, steps=2, strength=1.0), ctx)
    assert np.array_equal(pixels(first), pixels(again))
    assert not np.array_equal(pixels(first), pixels(other))


@pytest.mark.parametrize("steps, strength, expected", [(4, 1.0, 4), (4, 0.5, 2), (2, 1.0, 2),
                                                       (3, 0.5, 1), (4, 0.75, 3)])
def test_steps_and_strength_set_how_many_denoising_steps_run(sd_settings, steps, strength,
                                                             expected):
    ctx = context(sd_settings())
    StableDiffusionMethod().run(method_input(steps=steps, strength=strength), ctx)
    fractions = denoising(ctx)
    assert len(fractions) == expected
    assert fractions == sorted(fractions) and fractions[-1] == pytest.approx(1.0)


def test_progress_reports_loading_then_each_denoising_step(sd_settings):
    models, settings = ModelCache(2_000_000_000), sd_settings()
    ctx = context(settings, models=models)
    StableDiffusionMethod().run(method_input(steps=4, strength=1.0), ctx)
    assert ctx.progress_calls[0] == (0.0, "loading model")
    assert denoising(ctx) == pytest.approx([0.25, 0.5, 0.75, 1.0])
    warm = context(settings, models=models)
    StableDiffusionMethod().run(method_input(steps=4, strength=0.5), warm)
    assert warm.progress_calls == [(0.5, "denoising"), (1.0, "denoising")]


def test_cancellation_stops_between_denoising_steps(sd_settings):
    settings = sd_settings()
    models, method = ModelCache(2_000_000_000), StableDiffusionMethod()
    method.run(method_input(steps=1, strength=1.0), context(settings, models=models))
    pipe = loaded(models).pipe
    unet_calls = []
    hook = pipe.unet.register_forward_hook(lambda *args: unet_calls.append(1))

    cancel = threading.Event()

    def cancel_after_two(fraction, stage):
        if stage == "denoising" and fraction >= 0.5:
            cancel.set()  # as if the user pressed cancel while step 2 was finishing

    ctx = context(settings, models=models, cancel_event=cancel, on_progress=cancel_after_two)
    try:
        with pytest.raises(JobCancelled):
            method.run(method_input(steps=4, strength=1.0), ctx)
    finally:
        hook.remove()
    assert denoising(ctx) == pytest.approx([0.25, 0.5])
    assert len(unet_calls) == 3  # the step under way finished; the fourth never started


def test_the_pipeline_is_built_once_and_kept_with_its_safety_filter(sd_settings):
    models, method = ModelCache(2_000_000_000), StableDiffusionMethod()
    settings = sd_settings()
    method.run(method_input(steps=2, strength=1.0), context(settings, models=models))
    method.run(method_input(steps=2, strength=1.0, scheduler="euler"),
               context(settings, models=models))
    assert models.loads == 1
    model = loaded(models)
    weights = [*model.pipe.unet.parameters(), *model.safety.checker.parameters()]
    assert models.used_bytes >= sum(p.numel() * p.element_size() for p in weights)


@pytest.mark.parametrize("scheduler", sorted(SCHEDULERS))
def test_every_scheduler_runs_and_is_the_one_asked_for(sd_settings, scheduler):
    models = ModelCache(2_000_000_000)
    ctx = context(sd_settings(sd_model="tests/tiny-sd"), models=models)
    out = StableDiffusionMethod().run(method_input(steps=2, strength=1.0, scheduler=scheduler), ctx)
    assert out.size == (64, 64) and len(denoising(ctx)) >= 2
    pipe = loaded(models).pipe
    assert type(pipe.scheduler).__name__ == SCHEDULERS[scheduler][0]


def test_default_scheduler_comes_back_after_another_was_used(sd_settings):
    models, method = ModelCache(2_000_000_000), StableDiffusionMethod()
    settings = sd_settings()
    first = method.run(method_input(steps=2, strength=1.0), context(settings, models=models))
    method.run(method_input(steps=2, strength=1.0, scheduler="euler_a"),
               context(settings, models=models))
    again = method.run(method_input(steps=2, strength=1.0), context(settings, models=models))
    assert np.array_equal(pixels(first), pixels(again))


def test_guidance_and_negative_prompt_on_a_classic_model(sd_settings):
    ctx = context(sd_settings(sd_model="tests/tiny-sd"))
    method = StableDiffusionMethod()
    plain = method.run(method_input(steps=2, strength=1.0, guidance_scale=7.5), ctx)
    negative = method.run(method_input(steps=2, strength=1.0, guidance_scale=7.5,
                                       negative_prompt="blurry"), ctx)
    assert not np.array_equal(pixels(plain), pixels(negative))


def test_odd_sizes_come_back_at_the_input_size(sd_settings):
    ctx = context(sd_settings())
    content = sample_content(100).resize((100, 75))
    inp = MethodInput(content=content, options=OPTIONS.validate({"steps": 2}, method="sd"),
                      seed=3, size=100, prompt=PROMPT)
    assert StableDiffusionMethod().run(inp, ctx).size == (100, 75)


def test_a_flagged_result_is_refused_with_the_reason(sd_settings, flagging_model):
    ctx = context(sd_settings(sd_model=str(flagging_model)))
    with pytest.raises(UserError) as err:
        StableDiffusionMethod().run(method_input(steps=2), ctx)
    assert str(err.value) == FLAGGED_MESSAGE


def test_the_operator_can_turn_the_safety_checker_off(sd_settings, flagging_model):
    ctx = context(sd_settings(sd_model=str(flagging_model), sd_safety_checker=False))
    out = StableDiffusionMethod().run(method_input(steps=2), ctx)
    assert out.size == (64, 64)
    assert loaded(ctx.models).safety is None


def test_the_safety_checker_is_loaded_from_the_catalogue_when_the_model_has_none(sd_settings):
    ctx = context(sd_settings())
    StableDiffusionMethod().run(method_input(steps=2), ctx)
    (key,) = ctx.models.keys()
    assert key.endswith("safety=" + str(sd_settings().weights_dir / "CompVis" /
                                        "stable-diffusion-safety-checker"))
    assert loaded(ctx.models).safety is not None


def test_sdxl_turbo_runs_through_the_same_path(sd_settings, sdxl_weights):
    ctx = context(sd_settings(weights_dir=sdxl_weights))
    out = StableDiffusionMethod().run(method_input(model="sdxl-turbo", steps=2, strength=1.0), ctx)
    assert out.size == (64, 64) and len(denoising(ctx)) == 2
    pipe = loaded(ctx.models).pipe
    assert type(pipe).__name__ == "StableDiffusionXLImg2ImgPipeline"


def copy_into_hf_cache(folder, cache_dir, repo):
    """Lay ``folder`` out as huggingface_hub's cache does: refs/main -> snapshots/<commit>."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    base = cache_dir / "huggingface" / ("models--" + repo.replace("/", "--"))
    shutil.copytree(folder, base / "snapshots" / commit)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(commit)
    return base / "snapshots" / commit


def test_a_model_in_our_hf_cache_is_found_offline(sd_settings, sd_weights):
    settings = sd_settings(weights_dir=None)
    snapshot = copy_into_hf_cache(sd_weights / "stabilityai" / "sd-turbo", settings.cache_dir,
                                  "stabilityai/sd-turbo")
    copy_into_hf_cache(sd_weights / "CompVis" / "stable-diffusion-safety-checker",
                       settings.cache_dir, "CompVis/stable-diffusion-safety-checker")
    ctx = context(settings)
    assert ctx.weights.locate("sd-model") == ("cache", snapshot)
    assert StableDiffusionMethod().run(method_input(steps=2), ctx).size == (64, 64)


def test_a_model_fetched_from_the_hub_runs_offline_from_our_cache(sd_settings, sd_weights):
    from engine import hf

    from ..fake_hub import FakeHub

    settings = sd_settings(weights_dir=None)
    for repo in ("stabilityai/sd-turbo", "CompVis/stable-diffusion-safety-checker"):
        source = sd_weights / repo
        files = {str(p.relative_to(source)): p.read_bytes() for p in source.rglob("*")
                 if p.is_file()}
        files["single_file_checkpoint.safetensors"] = b"not needed"
        with FakeHub(repo, files) as hub:
            hf.download(repo, cache_dir=settings.cache_dir, endpoint=hub.endpoint)
        assert "single_file_checkpoint.safetensors" not in hub.fetched()
    ctx = context(settings)
    assert ctx.weights.locate("sd-model")[0] == "cache"
    assert StableDiffusionMethod().run(method_input(steps=2), ctx).size == (64, 64)


def test_missing_weights_say_which_model_and_how_to_fetch_it(sd_settings, tmp_path):
    ctx = context(sd_settings(weights_dir=tmp_path / "empty"))
    with pytest.raises(WeightsMissing) as err:
        StableDiffusionMethod().run(method_input(), ctx)
    message = str(err.value)
    assert "stabilityai/sd-turbo" in message and "`stylebot weights fetch sd`" in message
    assert "\n" not in message


def test_a_missing_safety_checker_is_reported_before_any_work(sd_settings, sd_weights, tmp_path):
    weights = tmp_path / "weights"
    shutil.copytree(sd_weights / "stabilityai", weights / "stabilityai")
    ctx = context(sd_settings(weights_dir=weights))
    with pytest.raises(WeightsMissing, match="CompVis/stable-diffusion-safety-checker"):
        StableDiffusionMethod().run(method_input(), ctx)
    assert denoising(ctx) == []


def test_an_incomplete_safety_checker_is_reported_as_missing_weights(sd_settings, sd_weights,
                                                                   tmp_path):
    shutil.copytree(sd_weights, tmp_path / "weights")
    checker = tmp_path / "weights" / "CompVis" / "stable-diffusion-safety-checker"
    for weights_file in checker.glob("*.safetensors"):
        weights_file.unlink()
    ctx = context(sd_settings(weights_dir=tmp_path / "weights"))
    with pytest.raises(WeightsMissing, match="sd-safety-checker.*no complete safety checker"):
        StableDiffusionMethod().run(method_input(), ctx)


def test_an_incomplete_model_folder_is_reported_as_missing_weights(sd_settings, sd_weights,
                                                                   tmp_path):
    shutil.copytree(sd_weights, tmp_path / "weights")
    shutil.rmtree(tmp_path / "weights" / "stabilityai" / "sd-turbo" / "unet")
    ctx = context(sd_settings(weights_dir=tmp_path / "weights"))
    with pytest.raises(WeightsMissing, match="incomplete"):
        StableDiffusionMethod().run(method_input(), ctx)


# --- validation: every option, one clear line ------------------------------------------------

def plan_error(settings, prompt=PROMPT, content_size=(64, 64), **options):
    inp = MethodInput(content=sample_content(64).resize(content_size),
                      options=OPTIONS.validate(options, method="sd"), seed=0, size=64,
                      prompt=prompt)
    with pytest.raises(OptionError) as err:
        StableDiffusionMethod().check(inp, settings)
    assert "\n" not in str(err.value)
    return str(err.value)


@pytest.mark.parametrize("model", ["someone/other-model", "/etc", "../stabilityai/sd-turbo",
                                   "runwayml/stable-diffusion-v1-5"])
def test_users_cannot_pick_models_the_operator_did_not_allow(sd_settings, model):
    message = plan_error(sd_settings(), model=model)
    assert "Option 'model'" in message and "turbo, sdxl-turbo, 2.1" in message


@pytest.mark.parametrize("model", ["turbo", "sdxl-turbo", "2.1", "stabilityai/sd-turbo",
                                   "default", "tests/tiny-sd"])
def test_table_models_and_the_servers_own_are_allowed(sd_settings, model):
    settings = sd_settings(sd_model="tests/tiny-sd")
    options = OPTIONS.validate({"model": model, "steps": 2}, method="sd")
    inp = MethodInput(content=sample_content(64), options=options, seed=0, size=64, prompt=PROMPT)
    StableDiffusionMethod().check(inp, settings)


@pytest.mark.parametrize("options, words", [
    ({"guidance_scale": 7.5}, ["'guidance_scale'", "at most 1", "sd-turbo"]),
    ({"steps": 10}, ["'steps'", "1..4"]),
    ({"negative_prompt": "blurry"}, ["'negative_prompt'", "guidance_scale above 1"]),
    ({"steps": 2, "strength": 0.3}, ["'steps' x 'strength'", "steps 4 or more"]),
    ({"steps": 4, "strength": 0.2}, ["'steps' x 'strength'", "strength 0.25 or more"]),
])
def test_turbo_constraints_are_explained(sd_settings, options, words):
    message = plan_error(sd_settings(), **options)
    for word in words:
        assert word in message


def test_classic_models_take_many_steps_and_guidance(sd_settings):
    settings = sd_settings(sd_model="tests/tiny-sd")
    options = OPTIONS.validate({"steps": 50, "guidance_scale": 12, "negative_prompt": "x"},
                               method="sd")
    inp = MethodInput(content=sample_content(64), options=options, seed=0, size=64, prompt=PROMPT)
    StableDiffusionMethod().check(inp, settings)
    assert "'negative_prompt'" in plan_error(settings, negative_prompt="x", guidance_scale=1)


def test_prompt_length_and_image_shape_are_checked(sd_settings):
    assert "prompt is 1200 characters" in plan_error(sd_settings(), prompt="x" * 1200)
    assert "at least 64 px" in plan_error(sd_settings(), content_size=(64, 40))


@pytest.mark.parametrize("options, word", [({"strength": 1.5}, "'strength'"),
                                           ({"guidance_scale": -1}, "'guidance_scale'"),
                                           ({"steps": 0}, "'steps'"),
                                           ({"scheduler": "magic"}, "'scheduler'"),
                                           ({"seed": -3}, "'seed'")])
def test_option_ranges_are_checked_when_parsed(options, word):
    with pytest.raises(OptionError, match=word):
        OPTIONS.validate(options, method="sd")


def test_weight_names_follow_the_model_option():
    method = StableDiffusionMethod()
    assert method.weight_names() == ["sd-model", "sd-safety-checker"]
    assert method.weight_names({"model": "2.1"}) == ["sd-2.1", "sd-safety-checker"]
    assert method.weight_names({"model": "sdxl-turbo"}) == ["sdxl-turbo", "sd-safety-checker"]


def test_listing_methods_does_not_import_torch_or_diffusers():
    import subprocess
    import sys
    from pathlib import Path

    code = ("import sys; from engine.methods import get_method; get_method('sd').describe(); "
            "print(sorted(m for m in ('torch', 'diffusers', 'transformers', 'huggingface_hub') "
            "if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=Path(__file__).resolve().parents[3])
    assert out.stdout.strip() == "[]"


def test_the_pipeline_loads_in_the_dtype_asked_for(sd_weights):
    import torch

    from engine.nets.diffusion import load_pipeline

    pipe = load_pipeline(sd_weights / "stabilityai" / "sd-turbo", dtype=torch.bfloat16,
                         device="cpu")
    assert pipe.unet.dtype == torch.bfloat16 and pipe.text_encoder.dtype == torch.bfloat16
    assert type(pipe).__name__ == "StableDiffusionImg2ImgPipeline"


def test_previews_of_the_denoising_come_only_without_the_safety_checker(sd_settings):
    """A preview would show what the safety checker may then refuse: with the checker on
    (the default) sd shows none; turned off by the operator, each step shows a cheap preview."""
    checked = context(sd_settings())
    StableDiffusionMethod().run(method_input(steps=4, strength=1.0), checked)
    assert checked.previews == []
    unchecked = context(sd_settings(sd_safety_checker=False))
    StableDiffusionMethod().run(method_input(steps=4, strength=1.0), unchecked)
    assert len(unchecked.previews) == 4
    assert all(p.mode == "RGB" and max(p.size) <= 64 for p in unchecked.previews)

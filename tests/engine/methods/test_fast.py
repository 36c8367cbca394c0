"""The `fast` method with the real staged weights, and tiny random networks where none exist."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine.errors import JobCancelled, OptionError, UserError, WeightsMissing
from engine.methods import get_method
from engine.methods.base import MethodInput, RunContext
from engine.methods.fast import BUILTIN_MODEL, NAMED_STYLES, FastMethod, trained_path
from engine.models import ModelCache
from engine.nets.transformer_net import TransformerNet, load_transformer_net, stylize
from engine.samples import sample_content, sample_style
from engine.settings import EngineSettings
from engine.weights import WeightStore
from tests.conftest import SHARED_WEIGHTS

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
# Made once from the real candy.pth: the TransformerNet output for sample_content(64),
# saved as an 8-bit PNG (see docs/fast.md).
CANDY_REFERENCE = FIXTURES / "fast_candy_sample64.png"
# Without the staged weights the candy these tests load has random weights (see `settings`).
REAL_CANDY = (SHARED_WEIGHTS / "fast_neural_style" / "candy.pth").is_file()


def make_input(content: Image.Image, **options) -> MethodInput:
    opts = FastMethod.options.validate(options, method="fast")
    return MethodInput(content=content, options=opts, seed=0, size=max(content.size))


def pixels(img: Image.Image) -> np.ndarray:
    return np.asarray(img, dtype=np.float32)


def mean_abs(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(pixels(a) - pixels(b)).mean())


@pytest.fixture
def method() -> FastMethod:
    return get_method("fast")


@pytest.fixture
def small_content() -> Image.Image:
    return sample_content(64)


def random_weights_dir(tmp_path: Path, style: str = "candy", *, stale_keys: bool = False,
                       seed: int = 0) -> tuple[Path, TransformerNet]:
    """A weights folder holding a random TransformerNet in the official file layout."""
    torch.manual_seed(seed)
    net = TransformerNet().eval()
    state = net.state_dict()
    if stale_keys:  # what files saved by torch < 0.4 carry for every InstanceNorm
        for key in [k for k in state if k.split(".")[-2].startswith("in")]:
            prefix = key.rsplit(".", 1)[0]
            state[prefix + ".running_mean"] = torch.zeros(state[key].shape)
            state[prefix + ".running_var"] = torch.ones(state[key].shape)
    folder = tmp_path / "weights"
    (folder / "fast_neural_style").mkdir(parents=True)
    torch.save(state, folder / "fast_neural_style" / f"{style}.pth")
    return folder, net


@pytest.fixture
def settings(settings, tmp_path):
    """The staged weights when they are there, else a folder with a random-weights candy.

    The tests of what the method does around its network (strength, colour, batching,
    progress, cancellation) then run on a fresh clone too; the tests of the real networks
    ask for ``shared_weights`` and skip without them.
    """
    if settings.weights_dir is not None:
        return settings
    folder, _ = random_weights_dir(tmp_path / "random")
    return settings.model_copy(update={"weights_dir": folder})


def context_for(settings: EngineSettings) -> RunContext:
    return RunContext(device="cpu", settings=settings, weights=WeightStore.from_settings(settings),
                      models=ModelCache(1_000_000_000))


# --- the real named styles -------------------------------------------------------------------

@pytest.mark.parametrize("style", NAMED_STYLES)
def test_named_style_loads_strict_and_stylises(style, method, make_context, shared_weights,
                                               small_content):
    path = shared_weights / "fast_neural_style" / f"{style}.pth"
    net = load_transformer_net(path)  # strict=True inside; raises on any key mismatch
    assert sum(p.numel() for p in net.parameters()) == 1_679_235

    out = method.run(make_input(small_content, model=style), make_context())

    assert out.size == small_content.size and out.mode == "RGB"
    array = pixels(out)
    assert mean_abs(out, small_content) > 15, "output is barely different from the content"
    assert 25 < array.mean() < 230, f"implausible mean {array.mean():.1f}"
    assert array.std() > 20, "output is nearly flat"
    assert ((array <= 2) | (array >= 253)).mean() < 0.2, "output is mostly clipped"
    # A stylised image keeps the picture's layout: coarse brightness follows the content.
    coarse_out = np.asarray(out.convert("L").resize((8, 8)), np.float32).ravel()
    coarse_in = np.asarray(small_content.convert("L").resize((8, 8)), np.float32).ravel()
    assert np.corrcoef(coarse_out, coarse_in)[0, 1] > 0.25


def test_candy_reproduces_reference(method, make_context, shared_weights, small_content):
    out = method.run(make_input(small_content, model="candy"), make_context())
    reference = Image.open(CANDY_REFERENCE).convert("RGB")
    diff = np.abs(pixels(out) - pixels(reference))
    assert diff.mean() < 0.5 and diff.max() <= 3


def test_other_weights_do_not_match_the_candy_reference(method, make_context, shared_weights,
                                                        small_content):
    reference = Image.open(CANDY_REFERENCE).convert("RGB")
    ctx = make_context()
    for style in ("mosaic", "udnie"):
        out = method.run(make_input(small_content, model=style), ctx)
        assert mean_abs(out, reference) > 20, f"{style} looks like candy"


def test_odd_sizes_come_back_at_their_size(method, make_context, shared_weights):
    content = sample_content(64).resize((67, 41))
    for model in ("candy", "26:1"):
        out = method.run(make_input(content, model=model), make_context())
        assert out.size == (67, 41)


def test_stale_instance_norm_stats_are_dropped_when_loading(tmp_path, small_content):
    folder, net = random_weights_dir(tmp_path, stale_keys=True)
    raw = torch.load(folder / "fast_neural_style" / "candy.pth", weights_only=True)
    assert any(k.endswith("running_mean") for k in raw)
    settings = EngineSettings(home=tmp_path / "home", weights_dir=folder, allow_downloads=False,
                        device="cpu")

    out = get_method("fast").run(make_input(small_content, model="candy"), context_for(settings))

    from engine.images import to_image, to_tensor
    with torch.inference_mode():
        expected = to_image(stylize(net, to_tensor(small_content) * 255) / 255)
    assert mean_abs(out, expected) < 0.01


def test_missing_weights_say_how_to_fetch(tmp_path, small_content):
    empty = tmp_path / "empty"
    empty.mkdir()
    settings = EngineSettings(home=tmp_path / "home", weights_dir=empty, allow_downloads=False,
                        device="cpu")
    with pytest.raises(WeightsMissing) as info:
        get_method("fast").run(make_input(small_content, model="candy"), context_for(settings))
    assert "stylebot weights fetch fast" in str(info.value)
    assert info.value.name == "fast-candy"


def offline_request(**options):
    from engine.request import ImageUpload, Requester, StyleRequest
    from tests.engine.conftest import png_bytes

    return StyleRequest(method="fast", content=ImageUpload(png_bytes((40, 30)), "c.png"),
                        requester=Requester("test", "u1"), options=options)


def test_without_candy_the_default_is_a_builtin_style_and_the_job_says_so(tmp_path):
    from engine.engine import StyleEngine

    empty = tmp_path / "empty"
    empty.mkdir()
    settings = EngineSettings(home=tmp_path / "home", weights_dir=empty, allow_downloads=False,
                              device="cpu")
    engine = StyleEngine(settings, device="cpu")
    job = engine.prepare(offline_request())
    assert job.options["model"] == BUILTIN_MODEL
    [out] = engine.execute([job], engine.context(None, threading.Event()))
    assert out.size == (40, 30)
    # Run directly, without the engine's prepare, the method makes the same choice.
    direct = get_method("fast").run(make_input(sample_content(40)), context_for(settings))
    builtin = get_method("fast").run(make_input(sample_content(40), model=BUILTIN_MODEL),
                                     context_for(settings))
    assert mean_abs(direct, builtin) == 0
    # Asked for by name, candy is still fetched or refused, never swapped silently.
    named = engine.prepare(offline_request(model="candy"))
    with pytest.raises(WeightsMissing):
        engine.execute([named], engine.context(None, threading.Event()))


def test_candy_stays_the_default_where_its_weights_are(tmp_path):
    from engine.engine import StyleEngine

    folder, _ = random_weights_dir(tmp_path)
    settings = EngineSettings(home=tmp_path / "home", weights_dir=folder, allow_downloads=False,
                              device="cpu")
    engine = StyleEngine(settings, device="cpu")
    assert engine.prepare(offline_request()).options["model"] == "candy"
    assert engine.prepare(offline_request(model="26:3")).options["model"] == "26:3"


def test_available_models_are_those_usable_without_a_download(tmp_path, method):
    folder, _ = random_weights_dir(tmp_path, "mosaic")
    settings = EngineSettings(home=tmp_path / "home", weights_dir=folder, allow_downloads=False,
                              device="cpu")
    trained = trained_path(settings, "mine")
    trained.parent.mkdir(parents=True)
    torch.save(TransformerNet().state_dict(), trained)
    models = method.available_models(WeightStore.from_settings(settings), settings)
    assert models == ["mosaic", "26:<0..25>", "mine"]


def test_network_is_loaded_once_per_cache(method, make_context, shared_weights, small_content):
    ctx = make_context()
    method.run(make_input(small_content, model="mosaic"), ctx)
    method.run(make_input(small_content, model="mosaic", strength=0.5), ctx)
    assert ctx.models.loads == 1


# --- the 26-style network --------------------------------------------------------------------

def test_multistyle_torch_conversion_matches_onnxruntime(weights):
    import onnxruntime as ort

    from engine.nets.multistyle import load_multistyle

    path = weights.path("multistyle26")
    net = load_multistyle(path)
    rng = np.random.default_rng(0)
    image = rng.random((1, 3, 48, 64), dtype=np.float32)
    style_weights = np.zeros(26, dtype=np.float32)
    style_weights[[4, 19]] = [0.25, 0.75]

    with torch.inference_mode():
        ours = net(torch.from_numpy(image), torch.from_numpy(style_weights)).numpy()
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    theirs = session.run(None, {"image": image, "style_weights": style_weights})[0]

    assert ours.shape == theirs.shape == (1, 3, 48, 64)
    assert np.abs(ours - theirs).max() < 1e-3


def test_blend_of_one_and_zero_equals_the_single_style(method, make_context, small_content):
    ctx = make_context()
    single = method.run(make_input(small_content, model="26:3"), ctx)
    blend = method.run(make_input(small_content, model="26:3=1.0,12=0.0"), ctx)
    assert mean_abs(single, blend) < 0.01


def test_half_half_blend_differs_from_both_styles(method, make_context, small_content):
    ctx = make_context()
    a = method.run(make_input(small_content, model="26:3"), ctx)
    b = method.run(make_input(small_content, model="26:12"), ctx)
    mix = method.run(make_input(small_content, model="26:3=0.5,12=0.5"), ctx)
    assert mean_abs(a, b) > 10
    assert mean_abs(mix, a) > 3 and mean_abs(mix, b) > 3
    # Weights are normalised: 1:1 is the same blend as 0.5:0.5.
    same = method.run(make_input(small_content, model="26:12=1,3=1"), ctx)
    assert mean_abs(mix, same) < 0.01


def test_each_builtin_style_is_distinct(method, make_context, small_content):
    ctx = make_context()
    outs = [method.run(make_input(small_content, model=f"26:{i}"), ctx) for i in (0, 9, 25)]
    assert mean_abs(outs[0], outs[1]) > 5 and mean_abs(outs[1], outs[2]) > 5


@pytest.mark.parametrize("model", ["26:26", "26:-1", "26:3=-0.5,4=1", "26:x", "26:", "26:3=0",
                                   "26:3=abc", "26:3,3", "26:3=nan", "starry_night", "../candy"])
def test_bad_models_are_option_errors(model, method, settings, small_content):
    with pytest.raises(OptionError) as info:
        method.check(make_input(small_content, model=model), settings)
    message = str(info.value)
    assert "'model'" in message and "\n" not in message


def test_unknown_model_lists_what_is_available(method, settings, small_content):
    with pytest.raises(OptionError) as info:
        method.check(make_input(small_content, model="starry_night"), settings)
    for name in ("candy", "mosaic", "rain_princess", "udnie", "pointilism", "26:<0..25>"):
        assert name in str(info.value)


def test_weight_names_follow_the_model(method):
    assert method.weight_names() == ["fast-candy"]
    assert method.weight_names({"model": "Rain-Princess"}) == ["fast-rain_princess"]
    assert method.weight_names({"model": "26:2=0.5,7=0.5"}) == ["multistyle26"]
    assert method.weight_names({"model": "my_style"}) == []
    with pytest.raises(OptionError):
        method.weight_names({"model": "26:99"})


# --- strength, colour, batching, progress ----------------------------------------------------

def test_strength_zero_returns_the_content(method, make_context, small_content):
    out = method.run(make_input(small_content, model="candy", strength=0), make_context())
    assert np.array_equal(pixels(out), pixels(small_content))


def test_strength_half_is_halfway(method, make_context, small_content):
    ctx = make_context()
    full = method.run(make_input(small_content, model="candy"), ctx)
    half = method.run(make_input(small_content, model="candy", strength=0.5), ctx)
    expected = (pixels(full) + pixels(small_content)) / 2
    assert np.abs(pixels(half) - expected).max() <= 1.0


def test_preserve_color_keeps_the_content_chroma(method, make_context, small_content):
    ctx = make_context()
    model = "candy" if REAL_CANDY else BUILTIN_MODEL  # a random network's colours prove nothing
    plain = method.run(make_input(small_content, model=model), ctx)
    kept = method.run(make_input(small_content, model=model, preserve_color=True), ctx)

    def ycbcr(img):
        return np.asarray(img.convert("YCbCr"), dtype=np.float32)

    content, plain_c, kept_c = ycbcr(small_content), ycbcr(plain), ycbcr(kept)
    chroma_kept = np.abs(kept_c[..., 1:] - content[..., 1:]).mean()
    chroma_plain = np.abs(plain_c[..., 1:] - content[..., 1:]).mean()
    assert chroma_kept < 2.0 < chroma_plain
    # Brightness still comes from the stylised image.
    assert np.abs(kept_c[..., 0] - plain_c[..., 0]).mean() < 2.0
    assert np.abs(kept_c[..., 0] - content[..., 0]).mean() > 5.0


@pytest.mark.parametrize("model", ["candy", "26:5=0.3,8=0.7"])
def test_run_batch_equals_single_runs(model, method, make_context, small_content):
    if model == "candy" and not REAL_CANDY:
        pytest.skip(f"real weights not staged at {SHARED_WEIGHTS} (a random candy's outputs "
                    "barely depend on the input)")
    contents = [small_content, sample_style(64),
                Image.fromarray(np.random.default_rng(1).integers(0, 255, (64, 64, 3), np.uint8))]
    inputs = [make_input(c, model=model) for c in contents]
    assert len({method.batch_key(inp) for inp in inputs}) == 1
    ctx = make_context()

    batched = method.run_batch(inputs, ctx)
    singles = [method.run(inp, ctx) for inp in inputs]

    for b, s in zip(batched, singles):
        assert np.abs(pixels(b) - pixels(s)).max() <= 2.0
    assert mean_abs(batched[0], batched[1]) > 10  # not one result repeated


def test_run_batch_keeps_order_across_different_keys(method, make_context, small_content):
    inputs = [make_input(small_content, model="candy"), make_input(small_content, model="26:1"),
              make_input(small_content.resize((48, 64)), model="candy")]
    ctx = make_context()
    batched = method.run_batch(inputs, ctx)
    for b, inp in zip(batched, inputs):
        assert mean_abs(b, method.run(inp, ctx)) < 0.01


def test_batch_key_groups_by_model_and_size(method, small_content):
    key = method.batch_key(make_input(small_content, model="candy"))
    assert key == method.batch_key(make_input(small_content, model="Candy", strength=0.3))
    assert key != method.batch_key(make_input(small_content, model="mosaic"))
    assert key != method.batch_key(make_input(small_content.resize((64, 60)), model="candy"))
    assert (method.batch_key(make_input(small_content, model="26:3=1,4=1"))
            == method.batch_key(make_input(small_content, model="26:4=0.5,3=0.5")))


def test_progress_is_reported_and_cancellation_stops_the_job(method, make_context, small_content):
    import threading

    ctx = make_context()
    method.run(make_input(small_content, model="candy"), ctx)
    fractions = [f for f, _ in ctx.progress_calls]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0

    cancelled = threading.Event()
    cancelled.set()
    with pytest.raises(JobCancelled):
        method.run(make_input(small_content, model="candy"), make_context(cancel_event=cancelled))


def test_tiny_images_are_refused(method):
    with pytest.raises(UserError, match="at least 8 pixels"):
        method.check_sizes(make_input(sample_content(64).resize((64, 4))))


# --- user-trained networks -------------------------------------------------------------------

def test_trained_network_is_found_by_name(method, settings, small_content):
    torch.manual_seed(3)
    net = TransformerNet().eval()
    path = trained_path(settings, "my_style")
    path.parent.mkdir(parents=True)
    torch.save(net.state_dict(), path)
    ctx = context_for(settings)

    out = method.run(make_input(small_content, model="my_style"), ctx)

    from engine.images import to_image, to_tensor
    with torch.inference_mode():
        expected = to_image(stylize(net, to_tensor(small_content) * 255) / 255)
    assert mean_abs(out, expected) < 0.01
    with pytest.raises(OptionError, match="my_style"):
        method.check(make_input(small_content, model="other_style"), settings)


def test_damaged_trained_network_is_a_user_error(method, settings, small_content):
    path = trained_path(settings, "broken")
    path.parent.mkdir(parents=True)
    torch.save({"conv1.conv2d.weight": torch.zeros(1)}, path)
    with pytest.raises(UserError, match="train it again"):
        method.run(make_input(small_content, model="broken"), context_for(settings))

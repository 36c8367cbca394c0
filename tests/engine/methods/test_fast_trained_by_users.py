"""`fast` with networks users trained from chat: each request sees only its requester's folder.

Two users each own a network called ``mine`` (random TransformerNets with different
outputs): naming it runs the requester's, a batch never mixes them, and without the folder
the name is unknown, with the same words as any unknown name.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from engine.errors import OptionError
from engine.methods import get_method
from engine.methods.base import MethodInput
from engine.nets.transformer_net import TransformerNet
from engine.samples import sample_content
from tests.engine.methods.test_fast import context_for, make_input, mean_abs


def own_network(folder: Path, name: str, seed: int) -> Path:
    """A random TransformerNet whose output is shifted by ``seed`` x 60 levels: tells them apart."""
    torch.manual_seed(seed)
    state = TransformerNet().eval().state_dict()
    state["deconv3.conv2d.bias"] += 60.0 * seed
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state, folder / f"{name}.pth")
    return folder


@pytest.fixture
def folders(tmp_path):
    return own_network(tmp_path / "alice", "mine", 1), own_network(tmp_path / "bob", "mine", 2)


def owned(inp: MethodInput, folder: Path | None) -> MethodInput:
    inp.own_models = folder
    return inp


@pytest.mark.security
def test_the_requesters_own_network_runs_and_batches_never_mix(folders, settings, one_torch_thread):
    method = get_method("fast")
    alice, bob = folders
    content = sample_content(32)
    ctx = context_for(settings)
    a, b = owned(make_input(content, model="mine"), alice), owned(make_input(content, model="mine"), bob)
    assert method.batch_key(a) != method.batch_key(b)

    alone = [method.run(owned(make_input(content, model="mine"), f), ctx) for f in (alice, bob)]
    together = method.run_batch([a, b], ctx)
    assert mean_abs(alone[0], alone[1]) > 1  # two different networks
    for single, batched in zip(alone, together):
        assert np.array_equal(np.asarray(single), np.asarray(batched))


@pytest.mark.security
def test_a_name_outside_the_requesters_folder_reads_as_unknown(folders, settings):
    method = get_method("fast")
    alice, _ = folders
    content = sample_content(32)
    method.check(owned(make_input(content, model="mine"), alice), settings)
    with pytest.raises(OptionError) as mine_elsewhere:
        method.check(owned(make_input(content, model="mine"), None), settings)
    with pytest.raises(OptionError) as unknown:
        method.check(owned(make_input(content, model="nosuch"), None), settings)
    assert str(mine_elsewhere.value) == str(unknown.value).replace("nosuch", "mine")
    with pytest.raises(OptionError, match="or one of yours: mine"):
        method.check_options_of({"model": "other"}, settings, alice)
    assert method.own_model_names(alice) == ["mine"] and method.own_model_names(None) == []


def test_the_smaller_retry_after_running_out_of_memory_keeps_the_folder(folders):
    from engine.engine import StyleEngine

    inp = owned(make_input(sample_content(64), model="mine"), folders[0])
    assert StyleEngine._shrunk(inp).own_models == folders[0]

"""Reading weight files, and saying in one line what is wrong with one that does not fit.

Every loader in ``engine.nets`` reads through here, so a damaged, truncated or foreign
file is a ``WeightFormatError`` naming the problem (missing, unexpected or mis-shaped
tensors, a different architecture), never a bare pickle or ``load_state_dict`` traceback.
``engine.weights.WeightStore.load`` adds the catalogue entry and how to fetch it again.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable

if TYPE_CHECKING:  # torch only when a file is read: graph_weights stays numpy-only
    import torch
    from torch import nn


class WeightFormatError(ValueError):
    """A weight file is not the network it should hold; the message says what is wrong."""


def read_torch(path: Path | str, safe_globals: Iterable[Any] = ()) -> Any:
    """``torch.load`` on the CPU without running code; an unreadable file is a format error."""
    import torch

    try:
        with torch.serialization.safe_globals(list(safe_globals)):
            return torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, ValueError, zipfile.BadZipFile,
            AttributeError, ImportError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise WeightFormatError(f"not a readable PyTorch file ({first[:160]})") from None


def read_state_dict(path: Path | str) -> dict[str, torch.Tensor]:
    """A file that must hold a plain tensor dict (a ``state_dict``)."""
    import torch

    state = read_torch(path)
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise WeightFormatError(f"holds a {type(state).__name__}, not a state dict of tensors")
    return state


def _listed(keys: list[str], limit: int = 3) -> str:
    shown = ", ".join(keys[:limit])
    return shown + (f" (+{len(keys) - limit} more)" if len(keys) > limit else "")


def describe_mismatch(module: nn.Module, state: dict[str, Any]) -> str:
    """'' when ``state`` fits ``module`` exactly, else one line: what is missing, extra, mis-shaped."""
    expected = module.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    misshaped = [f"{k} is {list(getattr(state[k], 'shape', []))}, expected {list(v.shape)}"
                 for k, v in expected.items()
                 if k in state and tuple(getattr(state[k], "shape", ())) != tuple(v.shape)]
    problems = []
    if missing:
        problems.append(f"missing {_listed(missing)}")
    if unexpected:
        problems.append(f"unexpected {_listed(unexpected)}")
    if misshaped:
        problems.append(_listed(misshaped, 2))
    return "; ".join(problems)


def load_strict(module: nn.Module, state: dict[str, Any], what: str) -> nn.Module:
    """``module.load_state_dict(state, strict=True)``, refusing a mismatch in one line."""
    problem = describe_mismatch(module, state)
    if problem:
        raise WeightFormatError(f"not {what}: {problem}")
    module.load_state_dict(state, strict=True)
    return module

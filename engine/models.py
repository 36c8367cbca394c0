"""Loaded models, kept for reuse and unloaded least-recently-used under a memory budget."""

from __future__ import annotations

import gc
import logging
import threading
from collections import OrderedDict
from typing import Any, Callable, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")


def model_nbytes(model: Any) -> int:
    """Bytes held by a torch module, a diffusers pipeline, or a container of them."""
    import torch

    if isinstance(model, torch.nn.Module):
        tensors = list(model.parameters()) + list(model.buffers())
        return sum(t.numel() * t.element_size() for t in tensors)
    if isinstance(model, torch.Tensor):
        return model.numel() * model.element_size()
    if hasattr(model, "components"):  # diffusers pipelines
        return sum(model_nbytes(c) for c in model.components.values() if c is not None)
    if isinstance(model, dict):
        return sum(model_nbytes(v) for v in model.values())
    if isinstance(model, (list, tuple)):
        return sum(model_nbytes(v) for v in model)
    return int(getattr(model, "nbytes", 0) or 0)


class ModelCache:
    """Models by key; ``get`` loads on a miss and evicts the least recently used."""

    def __init__(self, budget_bytes: int) -> None:
        self.budget_bytes = budget_bytes
        self._models: OrderedDict[str, tuple[Any, int]] = OrderedDict()
        self._lock = threading.RLock()
        self.loads = 0  # for tests and stats

    def get(self, key: str, loader: Callable[[], T]) -> T:
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key][0]
            model = loader()
            size = model_nbytes(model)
            self._models[key] = (model, size)
            self.loads += 1
            log.info("loaded model %s (%.1f MB)", key, size / 1e6)
            self._evict(keep=key)
            return model

    def __contains__(self, key: str) -> bool:
        return key in self._models

    @property
    def used_bytes(self) -> int:
        return sum(size for _, size in self._models.values())

    def keys(self) -> list[str]:
        return list(self._models)

    def clear(self) -> None:
        with self._lock:
            self._models.clear()
            _release_memory()

    def _evict(self, keep: str) -> None:
        evicted = False
        while self.used_bytes > self.budget_bytes and len(self._models) > 1:
            oldest = next(iter(self._models))
            if oldest == keep:
                break
            self._models.pop(oldest)
            log.info("unloaded model %s (memory budget %.0f MB)", oldest, self.budget_bytes / 1e6)
            evicted = True
        if evicted:
            _release_memory()


def _release_memory() -> None:
    gc.collect()
    try:
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
    except ImportError:  # pragma: no cover - torch is a hard dependency
        pass

"""Choosing the compute device and recognising out-of-memory failures."""

from __future__ import annotations

from typing import TYPE_CHECKING

from .errors import OptionError

if TYPE_CHECKING:
    from .settings import EngineSettings


def resolve_device(setting: str) -> str:
    """'auto' picks CUDA when present, else CPU; explicit names are checked."""
    import torch

    choice = (setting or "auto").strip().lower()
    if choice == "auto":
        if torch.cuda.is_available():
            return "cuda"
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return "mps"
        return "cpu"
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise OptionError(f"STYLEBOT_DEVICE is '{setting}' but no CUDA GPU is available.")
        return choice
    if choice in ("cpu", "mps"):
        return choice
    raise OptionError(f"STYLEBOT_DEVICE must be auto, cpu, cuda, cuda:N or mps, not '{setting}'.")


def set_torch_cpu_threads(settings: "EngineSettings") -> int:
    """Give torch's intra-op pool the thread count ONNX Runtime's heavy networks get
    (``engine.runtime.cpu_threads(heavy=True)``): what is left on torch on a CPU (gatys,
    nada, sd, and everything when ``cpu_runtime`` is torch) is VGG-sized or larger, where
    all usable cores nearly halve the time when they are free and cost under 10 % when
    another process holds one (bench/README.md). Call once, before torch computes:
    threads that already ran parallel work keep their old count."""
    import torch

    from .runtime import cpu_threads

    threads = cpu_threads(settings, heavy=True)
    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    return threads


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA/MPS out-of-memory errors, however the backend words them."""
    try:
        import torch

        if isinstance(exc, torch.cuda.OutOfMemoryError):
            return True
    except ImportError:  # pragma: no cover
        pass
    return isinstance(exc, (RuntimeError, MemoryError)) and "out of memory" in str(exc).lower()


def free_cached_memory() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()

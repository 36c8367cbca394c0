"""Choosing the compute device and recognising out-of-memory failures."""

from __future__ import annotations

from .errors import OptionError


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

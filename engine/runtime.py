"""The CPU runtime: torch networks exported once to ONNX and run by ONNX Runtime.

On a CPU, ONNX Runtime runs the real-time networks (``hub``, ``fast``, ``adain``) about
1.5-3x faster than torch (bench/README.md). The graph is exported from the very torch
module the GPU path runs, with dynamic batch, height and width, and cached under the data
folder (``<home>/weights/onnx/``) keyed by everything that could change it: the weight
files' sha256, the source of the module's code, torch's (the exporter's) and ONNX
Runtime's versions and the opset. A restart loads the cached graph without exporting.

``OnnxNet`` is called like the module it came from, with torch tensors in and out, so a
method keeps one code path around its networks.
"""

from __future__ import annotations

import hashlib
import inspect
import logging
import os
import threading
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:
    import torch

    from .settings import EngineSettings

log = logging.getLogger(__name__)

OPSET = 17
FORMAT = 1  # bump when the way graphs are exported here changes
_export_lock = threading.Lock()


def use_runtime(ctx: Any) -> bool:
    """True where ONNX Runtime should run a job's networks: on the CPU in fp32, unless the
    settings say torch. ``ctx`` is the job's ``RunContext``."""
    return str(ctx.device) == "cpu" and not ctx.half and ctx.settings.cpu_runtime == "onnx"


def usable_cores() -> int:
    """Cores this process may run on (its affinity mask, not the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def default_threads(cores: int, heavy: bool = False) -> int:
    """Half the usable cores (at least one) for the light networks, all of them for heavy ones.

    Measured on the 2-core development machine while it was shared (bench/peer.py,
    bench/README.md): for hub and fast (0.1-1 s per picture) one intra-op thread beat two,
    because the second worker mostly waits for a core another process holds; adain's VGG
    (tens of GFLOP per picture) was 1.8x faster on two. Half the cores also skips
    hyper-threaded siblings on larger machines.
    """
    return cores if heavy else max(1, cores // 2)


def cpu_threads(settings: "EngineSettings", heavy: bool = False) -> int:
    """``settings.cpu_threads`` when set, else the measured default for this process's cores."""
    return settings.cpu_threads or default_threads(usable_cores(), heavy)


class OnnxNet:
    """An ONNX Runtime session called like the torch module it was exported from."""

    def __init__(self, path: Path, threads: int, exported: bool) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        # Spinning workers burn a core another process may need; measured slower when shared.
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        self.input_names = [i.name for i in self.session.get_inputs()]
        self.path = path
        self.threads = threads
        self.exported = exported  # whether this load exported the graph (False: cache hit)
        self.nbytes = path.stat().st_size  # what the model cache counts

    def __call__(self, *inputs: "torch.Tensor") -> "torch.Tensor":
        import torch

        feeds = {name: t.detach().to("cpu", torch.float32).contiguous().numpy()
                 for name, t in zip(self.input_names, inputs)}
        return torch.from_numpy(self.session.run(None, feeds)[0])

    def __repr__(self) -> str:
        return f"OnnxNet({self.path.name}, threads={self.threads})"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def graph_key(name: str, sources: Sequence[Path], module_type: type) -> str:
    """What the exported graph depends on, hashed: weights, module code, exporter, runtime."""
    import onnxruntime
    import torch

    parts = [name, f"format={FORMAT}", f"opset={OPSET}", f"torch={torch.__version__}",
             f"onnxruntime={onnxruntime.__version__}", module_type.__qualname__,
             hashlib.sha256(inspect.getsource(inspect.getmodule(module_type)).encode()).hexdigest()]
    parts += [file_sha256(Path(p)) for p in sources]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()


def load(settings: "EngineSettings", name: str, sources: Sequence[Path], module_type: type,
         build: Callable[[], "torch.nn.Module"], example: Sequence["torch.Tensor"],
         dynamic: Mapping[str, Mapping[int, str]], heavy: bool = False) -> OnnxNet:
    """The ONNX Runtime session for ``build()``'s module, exported only on a cache miss.

    ``sources`` are the weight files the module is built from and ``module_type`` its
    class (whose file's source is part of the key); ``build`` is only called to export.
    ``example`` are inputs of the right rank; ``dynamic`` names each input's dynamic axes
    (an axis not named there is fixed at the example's size). The output is named ``out``.
    ``heavy`` networks get all usable cores by default (``default_threads``).
    """
    key = graph_key(name, sources, module_type)
    folder = settings.cache_dir / "onnx"
    path = folder / f"{name}-{key[:24]}.onnx"
    exported = False
    with _export_lock:
        if not path.is_file():
            folder.mkdir(parents=True, exist_ok=True)
            export(build(), example, list(dynamic), dynamic, path)
            exported = True
    return OnnxNet(path, cpu_threads(settings, heavy), exported)


def export(module: "torch.nn.Module", example: Sequence["torch.Tensor"], input_names: list[str],
           dynamic: Mapping[str, Mapping[int, str]], path: Path) -> None:
    """Export with TorchScript's exporter (dynamo's needs onnxscript), atomically."""
    import time

    import torch

    started = time.perf_counter()
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    axes = {k: dict(v) for k, v in dynamic.items()}
    axes["out"] = {0: "n", 2: "h", 3: "w"} if any(2 in v for v in dynamic.values()) else {0: "n"}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the exporter's deprecation and tracer warnings
        torch.onnx.export(module.eval(), tuple(example), str(tmp), dynamo=False,
                          input_names=input_names, output_names=["out"], dynamic_axes=axes,
                          opset_version=OPSET, do_constant_folding=True)
    os.replace(tmp, path)
    log.info("exported %s to ONNX in %.1f s", path.name, time.perf_counter() - started)

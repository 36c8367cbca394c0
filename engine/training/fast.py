"""`stylebot train fast`: train a Johnson et al. 2016 TransformerNet for one style image.

The recipe is pytorch/examples' ``fast_neural_style``: content images resized and
centre-cropped to ``--image-size``, Adam, a content loss at relu2_2 and Gram-matrix style
losses at the end of the first four VGG blocks. Only VGG19 weights are available offline
(the examples use VGG16), so the loss layers are VGG19's relu1_2, relu2_2, relu3_4 and
relu4_4: the last ReLU of each block, which is what VGG16's relu3_3/relu4_3 are.

The result is saved as ``<home>/trained/fast/<name>.pth`` in the pytorch/examples layout,
so the ``fast`` method loads it with ``model=<name>``. Checkpoints (network, optimiser,
step, RNG state, loss history) go to ``<name>.ckpt/`` and ``--resume`` continues from the
latest one.
"""

from __future__ import annotations

import argparse
import logging
import math
import pickle
import re
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ..errors import UserError
from ..methods.fast import NAMED_STYLES, TRAINED_NAME, trained_dir
from .images import ContentImages, epoch_loader, find_images, load_style_image

if TYPE_CHECKING:
    import torch

    from ..settings import EngineSettings

log = logging.getLogger(__name__)

Turn = Callable[[], AbstractContextManager]  # held around each use of the device
StepHook = Callable[[int, int], None]  # (steps done, total steps), after each step

STYLE_LAYERS = ("relu1_2", "relu2_2", "relu3_4", "relu4_4")
CONTENT_LAYER = "relu2_2"
KEEP_CHECKPOINTS = 3

DEFAULT_CONTENT_WEIGHT = 1e5
DEFAULT_STYLE_WEIGHT = 1e10
# pytorch/examples' weights (1e5, 1e10) were tuned for torchvision's VGG, whose input is
# normalised to unit scale; the Caffe VGG19 staged here takes 0..255 input and its features
# are ~100x larger. Content loss grows with the square of that scale and style loss with
# the fourth power, so the defaults would drown the content. Johnson et al.'s own code used
# this Caffe convention with content 1, style 5; scaling Caffe features by k where
# k**2 = 5 * 1e5 / 1e10 makes the default weights give exactly that balance.
CAFFE_FEATURE_SCALE = math.sqrt(5 * DEFAULT_CONTENT_WEIGHT / DEFAULT_STYLE_WEIGHT)


@dataclass
class TrainConfig:
    """Everything one training run needs; stored in each checkpoint."""

    style: Path
    images: Path
    name: str | None = None
    epochs: int = 2
    max_steps: int | None = None
    batch_size: int = 4
    image_size: int = 256
    style_size: int | None = None
    content_weight: float = DEFAULT_CONTENT_WEIGHT
    style_weight: float = DEFAULT_STYLE_WEIGHT
    lr: float = 1e-3
    checkpoint_every: int = 1000
    resume: bool = False
    device: str | None = None
    seed: int = 42
    workers: int | None = None

    @classmethod
    def from_args(cls, args: argparse.Namespace) -> "TrainConfig":
        return cls(**{f: getattr(args, f) for f in cls.__dataclass_fields__ if hasattr(args, f)})

    def check(self) -> None:
        """Refuse values no training can use, naming the flag and its range."""
        positive = {"--epochs": self.epochs, "--batch-size": self.batch_size,
                    "--image-size": self.image_size, "--checkpoint-every": self.checkpoint_every}
        if self.max_steps is not None:
            positive["--max-steps"] = self.max_steps
        if self.style_size is not None:
            positive["--style-size"] = self.style_size
        for flag, value in positive.items():
            if value < 1:
                raise UserError(f"{flag} is {value}; it must be at least 1.")
        if self.image_size < 16 or (self.style_size is not None and self.style_size < 16):
            raise UserError("--image-size and --style-size must be at least 16 pixels.")
        for flag, value in (("--content-weight", self.content_weight),
                            ("--style-weight", self.style_weight), ("--lr", self.lr)):
            if not (math.isfinite(value) and value >= 0):
                raise UserError(f"{flag} is {value}; it must be a number >= 0.")
        if self.lr == 0:
            raise UserError("--lr is 0; it must be > 0.")
        if self.workers is not None and self.workers < 0:
            raise UserError(f"--workers is {self.workers}; it must be >= 0.")


@dataclass
class TrainResult:
    path: Path  # the final network, loadable by the fast method as ``model=name``
    name: str
    step: int  # optimisation steps done in total, across resumes
    history: list[dict[str, float]] = field(default_factory=list)  # per step: losses


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--style", type=Path, required=True, metavar="IMG",
                        help="The style image to learn.")
    parser.add_argument("--images", type=Path, required=True, metavar="DIR",
                        help="Folder of content photos (searched recursively), "
                             "e.g. COCO train2014.")
    parser.add_argument("--name", help="Name to save the network under (default: the style "
                                       "image's file name); use it as model=NAME.")
    parser.add_argument("--epochs", type=int, default=2, help="Passes over the images (default 2).")
    parser.add_argument("--max-steps", type=int, default=None,
                        help="Stop after this many optimisation steps in total (default: no cap).")
    parser.add_argument("--batch-size", type=int, default=4, help="Images per step (default 4).")
    parser.add_argument("--image-size", type=int, default=256,
                        help="Content images are resized and centre-cropped to this (default 256).")
    parser.add_argument("--style-size", type=int, default=None,
                        help="Longest side of the style image (default: --image-size).")
    parser.add_argument("--content-weight", type=float, default=DEFAULT_CONTENT_WEIGHT,
                        help="Weight of the content loss (default 1e5).")
    parser.add_argument("--style-weight", type=float, default=DEFAULT_STYLE_WEIGHT,
                        help="Weight of the style loss (default 1e10); raise for more style.")
    parser.add_argument("--lr", type=float, default=1e-3, help="Adam learning rate (default 1e-3).")
    parser.add_argument("--checkpoint-every", type=int, default=1000, metavar="N",
                        help="Save a resumable checkpoint every N steps (default 1000).")
    parser.add_argument("--resume", action="store_true",
                        help="Continue from the latest checkpoint of --name.")
    parser.add_argument("--device", default=None,
                        help="'cpu', 'cuda', 'cuda:1'... (default: the server's device setting).")
    parser.add_argument("--seed", type=int, default=42,
                        help="Seed for initialisation and data order.")
    parser.add_argument("--workers", type=int, default=None,
                        help="Image-loading processes (default: 4 on a GPU, 0 on the CPU).")


def run(args: argparse.Namespace, settings: "EngineSettings") -> int:
    """The `stylebot train fast` command; user mistakes surface as ``UserError``."""
    from tqdm import tqdm

    try:
        result = train(TrainConfig.from_args(args), settings)
    except KeyboardInterrupt:
        return 130  # a checkpoint was written on the way out
    tqdm.write(f"Saved {result.path} after {result.step} steps; use it with model={result.name}")
    return 0


# --- the run ---------------------------------------------------------------------------------

def resolve_name(config: TrainConfig) -> str:
    name = config.name or re.sub(r"[^A-Za-z0-9_-]+", "_", config.style.stem).strip("_-") or "style"
    if not TRAINED_NAME.fullmatch(name):
        raise UserError(f"--name {name!r} must be 1-64 letters, digits, '_' or '-', "
                        "starting with a letter or digit.")
    if name.lower().replace("-", "_") in NAMED_STYLES:
        raise UserError(f"--name {name!r} is a built-in style; choose another name.")
    return name


def resolve_device(requested: str | None, settings: "EngineSettings") -> "torch.device":
    import torch

    wanted = (requested or settings.device or "auto").strip().lower()
    if wanted == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(wanted)
    except RuntimeError:
        raise UserError(f"--device {wanted!r} is not a device; use cpu, cuda or cuda:N.") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {wanted} asked for, but no CUDA GPU is available here.")
    return device


def checkpoint_files(folder: Path) -> list[Path]:
    """Checkpoints in ``folder``, oldest first."""
    return sorted(folder.glob("step-*.pt"), key=lambda p: int(p.stem.split("-")[1]))


def train(config: TrainConfig, settings: "EngineSettings", *, out_dir: Path | None = None,
          turn: Turn = nullcontext, on_step: StepHook | None = None) -> TrainResult:
    """Train (or resume) a style network and save it where the fast method finds it.

    A server training in the background passes ``out_dir`` (the requester's own folder
    instead of the shared ``trained_dir``), ``turn`` (taken around each use of the device,
    so interactive jobs go first: ``engine.turns``) and ``on_step(step, total)`` (progress;
    it may raise ``JobCancelled`` to stop).
    """
    import torch

    from ..nets.transformer_net import TransformerNet

    config.check()
    name = resolve_name(config)
    files = OutputFiles.in_folder(out_dir or trained_dir(settings), name)
    existing = files.check(name, config.resume)
    paths = find_images(config.images, "--images")
    style_image = load_style_image(config.style, config.style_size or config.image_size, settings)
    device = resolve_device(config.device, settings)
    torch.manual_seed(config.seed)
    with turn():
        loss = PerceptualLoss(settings, style_image, device)

    net = TransformerNet().to(device).train()
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    step, history = 0, []
    if config.resume:
        step, history = _restore(existing[-1], net, optimizer, device, config)
        log.info("resuming %s from step %d (%s)", name, step, existing[-1].name)

    total = total_steps(len(paths), config)
    log.info("training fast network %r: %d images, %d steps, device %s, loss network VGG19 (%s)",
             name, len(paths), total, device, loss.convention)
    loader = epoch_loader(ContentImages(paths, config.image_size), batch_size=config.batch_size,
                          seed=config.seed, workers=config.workers, device=device,
                          start=step, stop=total)
    step = _optimise(net, optimizer, loss, loader, files, config, name, step, total, history,
                     turn=turn, on_step=on_step)

    _atomic_save({k: v.detach().float().cpu() for k, v in net.state_dict().items()}, files.final)
    log.info("saved fast network %s (%d steps)", files.final, step)
    return TrainResult(path=files.final, name=name, step=step, history=history)


@dataclass(frozen=True)
class OutputFiles:
    """Where a run named ``name`` writes: the final network and its checkpoint folder."""

    final: Path
    checkpoints: Path

    @classmethod
    def for_name(cls, settings: "EngineSettings", name: str) -> "OutputFiles":
        return cls.in_folder(trained_dir(settings), name)

    @classmethod
    def in_folder(cls, out_dir: Path, name: str) -> "OutputFiles":
        return cls(out_dir / f"{name}.pth", out_dir / f"{name}.ckpt")

    def check(self, name: str, resume: bool) -> list[Path]:
        """The existing checkpoints, oldest first; refuses to resume nothing or overwrite."""
        existing = checkpoint_files(self.checkpoints) if self.checkpoints.is_dir() else []
        if resume and not existing:
            raise UserError(f"--resume: no checkpoint of '{name}' in {self.checkpoints}.")
        if not resume and (existing or self.final.exists()):
            raise UserError(f"A network named '{name}' exists in {self.final.parent}; pass "
                            "--resume to continue it or choose another --name.")
        return existing


def total_steps(n_images: int, config: TrainConfig) -> int:
    total = config.epochs * math.ceil(n_images / config.batch_size)
    return total if config.max_steps is None else min(total, config.max_steps)


class PerceptualLoss:
    """Johnson et al.'s loss: VGG19 content loss at ``CONTENT_LAYER``, Gram-matrix style
    losses at ``STYLE_LAYERS`` against the style image's, on images in 0..255."""

    def __init__(self, settings: "EngineSettings", style_image, device) -> None:
        import torch

        from ..images import to_tensor
        from ..nets.vgg import gram_matrix
        from ..vgg_weights import load_vgg
        from ..weights import WeightStore

        store = WeightStore.from_settings(settings)
        self.vgg = load_vgg(store, up_to=STYLE_LAYERS[-1]).to(device)
        self.convention = self.vgg.convention
        self.scale = CAFFE_FEATURE_SCALE if self.convention == "caffe" else 1.0
        self.layers = sorted(set(STYLE_LAYERS) | {CONTENT_LAYER})
        with torch.no_grad():
            style = self.features(to_tensor(style_image, device) * 255.0, STYLE_LAYERS)
            self.style_grams = {k: gram_matrix(v) for k, v in style.items()}

    def features(self, images_0_255: "torch.Tensor", wanted) -> dict[str, "torch.Tensor"]:
        return {k: v * self.scale for k, v in self.vgg(images_0_255 / 255.0, wanted).items()}

    def __call__(self, x: "torch.Tensor", y: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
        """Unweighted (content, style) losses of output ``y`` for input batch ``x``."""
        import torch
        from torch.nn import functional as F

        from ..nets.vgg import gram_matrix

        with torch.no_grad():
            target = self.features(x, [CONTENT_LAYER])[CONTENT_LAYER]
        feats = self.features(y, self.layers)
        content = F.mse_loss(feats[CONTENT_LAYER], target)
        style = sum(F.mse_loss(gram_matrix(feats[k]), self.style_grams[k].expand(len(x), -1, -1))
                    for k in STYLE_LAYERS)
        return content, style


def _optimise(net, optimizer, loss: PerceptualLoss, loader, files: OutputFiles,
              config: TrainConfig, name: str, step: int, total: int,
              history: list[dict[str, float]], *, turn: Turn = nullcontext,
              on_step: StepHook | None = None) -> int:
    """Steps until ``total``, checkpointing on schedule, on Ctrl-C and at the end."""
    from tqdm import tqdm

    saved_at = step
    bar = tqdm(total=total, initial=step, desc=f"train fast {name}", unit="step",
               disable=on_step is not None)  # a server reports through on_step instead
    try:
        for batch in loader:
            with turn():
                record = _step(net, optimizer, loss, batch, config, step + 1)
            step += 1
            if on_step is not None:
                on_step(step, total)
            history.append(record)
            bar.update(1)
            bar.set_postfix(content=f"{record['content']:.3g}", style=f"{record['style']:.3g}")
            if step % config.checkpoint_every == 0:
                _save_checkpoint(files.checkpoints, net, optimizer, step, history, config)
                saved_at = step
    except KeyboardInterrupt:
        if step > saved_at:
            _save_checkpoint(files.checkpoints, net, optimizer, step, history, config)
        log.warning("training interrupted at step %d; continue with --resume --name %s", step, name)
        raise
    finally:
        bar.close()
    if step > saved_at or not checkpoint_files(files.checkpoints):
        _save_checkpoint(files.checkpoints, net, optimizer, step, history, config)
    return step


def _step(net, optimizer, loss: PerceptualLoss, batch, config: TrainConfig,
          step: int) -> dict[str, float]:
    """One Adam step on ``batch``; its losses, or a ``UserError`` if training diverged."""
    x = batch.to(next(net.parameters()).device, non_blocking=True)
    content, style = loss(x, net(x))
    content, style = config.content_weight * content, config.style_weight * style
    total = content + style
    optimizer.zero_grad(set_to_none=True)
    total.backward()
    optimizer.step()
    record = {"step": step, "content": content.item(), "style": style.item(), "total": total.item()}
    if not math.isfinite(record["total"]):
        raise UserError(f"Training diverged at step {step} (the loss is not finite); "
                        "lower --lr or --style-weight.")
    return record


def _rng_state() -> dict[str, Any]:
    import torch

    state = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _save_checkpoint(folder: Path, net, optimizer, step: int, history: list,
                     config: TrainConfig) -> Path:
    """Write ``step-<n>.pt`` atomically and keep only the newest few."""
    config_dict = {k: (str(v) if isinstance(v, Path) else v) for k, v in asdict(config).items()}
    path = folder / f"step-{step:08d}.pt"
    _atomic_save({"model": net.state_dict(), "optimizer": optimizer.state_dict(), "step": step,
                  "history": history, "rng": _rng_state(), "config": config_dict}, path)
    for old in checkpoint_files(folder)[:-KEEP_CHECKPOINTS]:
        old.unlink(missing_ok=True)
    log.info("checkpoint %s", path)
    return path


# Settings that change what is learned; differing on --resume is allowed but worth a warning.
_RESUME_SENSITIVE = ("style", "images", "image_size", "style_size", "content_weight",
                     "style_weight", "batch_size", "seed")


def _restore(path: Path, net, optimizer, device, config: TrainConfig) -> tuple[int, list]:
    import torch

    try:
        state = torch.load(path, map_location=device, weights_only=True)
        net.load_state_dict(state["model"], strict=True)
        optimizer.load_state_dict(state["optimizer"])
    except (RuntimeError, KeyError, OSError, ValueError, EOFError, pickle.UnpicklingError) as exc:
        raise UserError(f"--resume: checkpoint {path} cannot be loaded ({type(exc).__name__}); "
                        "delete it to resume from the one before.") from exc
    saved = state.get("config", {})
    for key in _RESUME_SENSITIVE:
        now = getattr(config, key)
        now = str(now) if isinstance(now, Path) else now
        if key in saved and saved[key] != now:
            log.warning("resuming with %s=%s; the checkpoint was trained with %s", key, now,
                        saved[key])
    rng = state.get("rng", {})
    if "torch" in rng:
        torch.set_rng_state(rng["torch"].cpu())
    if "cuda" in rng and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in rng["cuda"]])
    return int(state["step"]), list(state.get("history", []))


def _atomic_save(obj: Any, path: Path) -> None:
    """``torch.save`` whole or not at all (``engine.files.atomic_write``)."""
    import torch

    from ..files import atomic_write

    atomic_write(path, lambda tmp: torch.save(obj, tmp))

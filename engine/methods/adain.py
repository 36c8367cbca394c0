"""AdaIN: arbitrary style transfer in real time (Huang & Belongie 2017).

A VGG19 encodes content and style up to relu4_1; adaptive instance normalisation gives
the content features the style's per-channel mean and std; a decoder trained for that
encoder turns the result back into an image. One forward pass, any style image.

Weights: the official pair (``adain-vgg`` + ``adain-decoder``, pytorch-AdaIN's release)
through the catalogue, or a decoder made with ``stylebot train adain`` and saved under
``$STYLEBOT_HOME/trained/adain/<name>.pth`` with the name of the VGG19 it was trained for.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Hashable

from ..catalogue import ADAIN_DECODER, ADAIN_ENCODERS, ADAIN_VGG, VGG19_CAFFE, VGG19_TORCHVISION
from ..errors import OptionError, UserError
from ..options import PRESERVE_COLOR, SIZE, SMOOTH, STRENGTH, Option, OptionSet
from .base import Method, MethodInput, RunContext

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ..nets.adain import Encoder
    from ..settings import EngineSettings
    from ..weights import WeightStore

log = logging.getLogger(__name__)

OFFICIAL = "official"
MIN_SIDE = 16  # relu4_1 is 1/8 of the input and its convs need 2 pixels to pad
# The smallest side the networks take unpadded: relu4_1 has ceil(side / 8) cells (the pools
# round up) and its reflection padding needs 2 of them, as in the reference.
UNPADDED_MIN_SIDE = 9

# The paper's alpha, under the name every method shares; ``alpha`` still works.
ADAIN_STRENGTH = replace(STRENGTH, help="Content/style trade-off: 0 keeps the content, 1 applies the full "
                               "style (the paper's alpha).", aliases=("alpha",))
DECODER = Option("decoder", "str", OFFICIAL,
                 "Which decoder: 'official' (pytorch-AdaIN's, with its VGG) or the name of "
                 "one trained with `stylebot train adain`.")

LUMINANCE, CORAL = "luminance", "coral"
COLOR = Option("color", "choice", LUMINANCE,
               "How preserve_color keeps the photo's colours: 'luminance' takes only the "
               "result's brightness (the photo's colours exactly), 'coral' recolours the style "
               "to the photo's colour statistics before encoding (the paper's and "
               "pytorch-AdaIN's way; the style's textures keep their own tones).",
               choices=(LUMINANCE, CORAL))

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def trained_dir(settings: "EngineSettings") -> Path:
    """Where ``stylebot train adain`` saves decoders and where the method looks for them."""
    return settings.home / "trained" / "adain"


def trained_decoders(settings: "EngineSettings") -> list[str]:
    folder = trained_dir(settings)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.pth") if p.is_file() and _NAME_RE.match(p.stem))


def valid_decoder_name(name: str) -> bool:
    """A trained decoder's name is a plain file stem (no paths) other than 'official'."""
    return bool(_NAME_RE.match(name)) and name.lower() != OFFICIAL


@dataclass(frozen=True)
class DecoderChoice:
    name: str  # "official" or a trained decoder's name
    path: Path | None  # the trained file; None for the official pair

    @property
    def official(self) -> bool:
        return self.path is None


def resolve_decoder(settings: "EngineSettings", name: str | None) -> DecoderChoice:
    """The decoder option as a file, or an ``OptionError`` listing what is available."""
    name = (name or OFFICIAL).strip()
    if name.lower() == OFFICIAL:
        return DecoderChoice(OFFICIAL, None)
    if valid_decoder_name(name):
        path = trained_dir(settings) / f"{name}.pth"
        if path.is_file():
            return DecoderChoice(name, path)
    available = ", ".join([OFFICIAL] + trained_decoders(settings))
    raise OptionError(f"Option 'decoder' is {name!r}, which is not available; choose one of: "
                      f"{available} (train more with `stylebot train adain`).")


def check_mask(inp: MethodInput) -> None:
    if inp.mask is not None and len(inp.styles) != 2:
        raise OptionError(f"A mask needs exactly 2 style images (white areas get the first, "
                          f"black the second); got {len(inp.styles)}.")


class AdainMethod(Method):
    name = "adain"
    title = "AdaIN (any style, real time)"
    summary = ("Arbitrary style transfer in one forward pass (Huang & Belongie 2017): blends up "
               "to 4 style images, or paints foreground and background with two styles by mask.")
    options = OptionSet([ADAIN_STRENGTH, PRESERVE_COLOR, COLOR, DECODER, SIZE, SMOOTH])
    min_styles = 1
    max_styles = 4
    uses_mask = True
    batchable = True
    takes_clips = True

    def weight_names(self, options: dict[str, Any] | None = None) -> list[str]:
        """The official pair; a trained decoder names its encoder in its own file."""
        decoder = str((options or {}).get("decoder") or OFFICIAL)
        return [ADAIN_VGG, ADAIN_DECODER] if decoder.lower() == OFFICIAL else []

    def check_options(self, options: dict[str, Any], settings: "EngineSettings") -> None:
        resolve_decoder(settings, options.get("decoder"))

    def check(self, inp: MethodInput, settings: "EngineSettings") -> None:
        self.check_options(inp.options, settings)
        check_mask(inp)
        inp.style_mix()

    def batch_key(self, inp: MethodInput) -> Hashable | None:
        width, height = inp.content.size
        decoder = str(inp.options.get("decoder") or OFFICIAL).strip()
        if decoder.lower() == OFFICIAL:
            decoder = OFFICIAL
        return (decoder, height, width, len(inp.styles), inp.mask is not None)

    def run(self, inp: MethodInput, ctx: RunContext) -> "Image.Image":
        return self.run_batch([inp], ctx)[0]

    def run_batch(self, inputs: list[MethodInput], ctx: RunContext) -> list["Image.Image"]:
        """Inputs with equal batch keys share one encoder and one decoder forward pass."""
        groups: dict[Hashable, list[int]] = {}
        for i, inp in enumerate(inputs):
            groups.setdefault(self.batch_key(inp), []).append(i)
        results: list[Any] = [None] * len(inputs)
        for n, indices in enumerate(groups.values()):
            images = self._run_group([inputs[i] for i in indices], ctx,
                                     span=(n / len(groups), (n + 1) / len(groups)))
            for i, image in zip(indices, images):
                results[i] = image
        return results

    # --- clips: the style statistics once per job ---------------------------------------------

    def prepare_clip(self, inp: MethodInput, ctx: RunContext) -> Any:
        """Filled by the first batch of frames with the style statistics (for ``coral``, the
        style recoloured to frame 0), which every later batch reuses."""
        return {}

    def run_frames(self, inputs: list[MethodInput], ctx: RunContext, shared: Any) -> list["Image.Image"]:
        return self._run_group(inputs, ctx, span=(0.0, 1.0), stats=shared)

    # --- one forward pass ------------------------------------------------------------------

    def _run_group(self, inputs: list[MethodInput], ctx: RunContext,
                   span: tuple[float, float], stats: dict | None = None) -> list["Image.Image"]:
        import torch

        from ..images import preserve_color, to_image

        lo, hi = span

        def progress(fraction: float, stage: str) -> None:
            ctx.progress(lo + (hi - lo) * fraction, stage)

        progress(0.0, "loading networks")
        choice = resolve_decoder(ctx.settings, inputs[0].options.get("decoder"))
        for inp in inputs:
            check_mask(inp)
        mixes = [inp.style_mix() for inp in inputs]
        encoder, decoder, dtype = self.networks(choice, ctx)
        device = torch.device(str(ctx.device))

        progress(0.1, "encoding")
        width, height = inputs[0].content.size
        with torch.inference_mode():
            contents = torch.cat([_image_tensor(inp.content) for inp in inputs]).to(device)
            padded = pad_to_min_side(contents)
            content_feats = encoder(padded.to(dtype)).float()
            valid = feature_extent((height, width))
            targets = []
            for j, (inp, mix) in enumerate(zip(inputs, mixes)):
                ctx.check_cancelled()
                recolour = contents[j] if _color_mode(inp) == CORAL else None
                if stats is not None and "styles" in stats:
                    style_stats = stats["styles"]
                else:
                    style_stats = [self._style_stats(encoder, style, max(width, height), dtype,
                                                     device, recolour)
                                   for style in inp.styles]
                    if stats is not None:
                        stats["styles"] = style_stats
                regions = None
                if inp.mask is not None:
                    regions = mask_regions(inp.mask, (height, width), content_feats.shape[-2:],
                                           device)
                targets.append(stylised_features(content_feats[j:j + 1], style_stats, mix,
                                                 float(inp.options.get("strength", 1.0)), regions,
                                                 valid=valid))
                progress(0.1 + 0.4 * (j + 1) / len(inputs), "encoding")

            progress(0.5, "decoding")
            decoded = decoder(torch.cat(targets).to(dtype)).float()[..., :height, :width]

        out = []
        for j, inp in enumerate(inputs):
            image = to_image(decoded[j])
            if _color_mode(inp) == LUMINANCE:
                image = preserve_color(inp.content, image)
            out.append(image)
        progress(1.0, "done")
        return out

    @staticmethod
    def _style_stats(encoder, style: "Image.Image", side: int, dtype, device,
                     recolour: "torch.Tensor | None" = None):
        """The style's relu4_1 mean and std; with ``recolour`` (a content image [3, H, W]),
        the style is first given its colour statistics (``coral``)."""
        from ..images import resize_to_side
        from ..nets.adain import coral, mean_std

        style = resize_to_side(style, side)
        if min(style.size) < MIN_SIDE:  # a sliver of a style: enlarge its short side
            scale = MIN_SIDE / min(style.size)
            style = style.resize((max(MIN_SIDE, round(style.width * scale)),
                                  max(MIN_SIDE, round(style.height * scale))))
        pixels = _image_tensor(style).to(device)
        if recolour is not None:
            pixels = coral(pixels[0], recolour).unsqueeze(0)
        feats = encoder(pixels.to(dtype)).float()
        mean, std = mean_std(feats)
        return mean[0], std[0]

    def networks(self, choice: DecoderChoice, ctx: RunContext):
        """Encoder, decoder and compute dtype for ``choice``, loaded once via the model cache.

        On CUDA the official pair runs in fp16 (its normalised VGG keeps activations
        small); decoders trained for the Caffe or torchvision VGG19, whose activations are
        far larger, run in bf16 for its range. AdaIN's statistics are always fp32.
        """
        import torch

        from .. import runtime
        from ..nets import adain as nets

        if runtime.use_runtime(ctx):
            return *onnx_networks(choice, ctx), torch.float32
        device = torch.device(str(ctx.device))
        dtype = torch.float32
        if ctx.half:
            dtype = torch.float16 if choice.official else torch.bfloat16
        tag = f"{device}:{str(dtype).removeprefix('torch.')}"

        if choice.official:
            def load_decoder():
                return ctx.weights.load(ADAIN_DECODER, nets.load_official_decoder).to(device, dtype)

            decoder_key = f"adain:decoder:{OFFICIAL}:{tag}"
        else:
            path = choice.path
            assert path is not None

            def load_decoder():
                from ..nets.checkpoint import WeightFormatError

                try:
                    payload = nets.read_trained_decoder(path)
                    decoder = nets.load_decoder(payload["state_dict"], str(path),
                                                encoder_name=payload["encoder"])
                except WeightFormatError as exc:
                    log.warning("trained decoder %s does not load: %s", path, exc)
                    raise UserError(f"The trained decoder '{choice.name}' at {path} cannot be "
                                    f"loaded ({exc}); train it again with `stylebot train "
                                    f"adain`.") from exc
                return decoder.to(device, dtype)

            # The file's mtime in the key: a retrained decoder of the same name is reloaded.
            decoder_key = f"adain:decoder:{choice.name}:{path.stat().st_mtime_ns}:{tag}"

        decoder = ctx.models.get(decoder_key, load_decoder)
        encoder_name = decoder.encoder_name
        encoder = ctx.models.get(f"adain:encoder:{encoder_name}:{tag}",
                                 lambda: load_encoder(ctx.weights, encoder_name).to(device, dtype))
        return encoder, decoder, dtype


def onnx_networks(choice: DecoderChoice, ctx: RunContext):
    """Encoder and decoder for the CPU through ONNX Runtime (``engine.runtime``), exported
    from the same torch modules and called the same way; cached like the torch ones."""
    import torch

    from .. import runtime
    from ..nets import adain as nets

    tag = f"onnx:{runtime.cpu_threads(ctx.settings, heavy=True)}"
    spatial = {"image": {0: "n", 2: "h", 3: "w"}}
    if choice.official:
        source = ctx.weights.path(ADAIN_DECODER)
        decoder_key = f"adain:decoder:{OFFICIAL}:{tag}"
    else:
        source = choice.path
        assert source is not None
        decoder_key = f"adain:decoder:{choice.name}:{source.stat().st_mtime_ns}:{tag}"

    def load_decoder():
        if choice.official:
            encoder_name, build = ADAIN_VGG, lambda: ctx.weights.load(ADAIN_DECODER, nets.load_official_decoder)
        else:
            payload = nets.read_trained_decoder(source)
            encoder_name = payload["encoder"]

            def build():
                return nets.load_decoder(payload["state_dict"], str(source), encoder_name=encoder_name)
        net = runtime.load(ctx.settings, f"adain-decoder-{choice.name}", [source], nets.Decoder,
                           build, (torch.rand(1, 512, 8, 8),), spatial, heavy=True)
        net.encoder_name = encoder_name
        return net

    decoder = ctx.models.get(decoder_key, load_decoder)
    name = decoder.encoder_name
    encoder = ctx.models.get(
        f"adain:encoder:{name}:{tag}",
        lambda: runtime.load(ctx.settings, f"adain-encoder-{name}", [ctx.weights.path(name)],
                             nets.Encoder, lambda: load_encoder(ctx.weights, name),
                             (torch.rand(1, 3, 64, 64),), spatial, heavy=True))
    return encoder, decoder


def _color_mode(inp: MethodInput) -> str | None:
    """None, or how colours are preserved ('luminance' after decoding, 'coral' before)."""
    if not inp.options.get("preserve_color"):
        return None
    return str(inp.options.get("color") or LUMINANCE).lower()


def load_encoder(store: "WeightStore", name: str) -> "Encoder":
    """Encoder ``name`` (one of ``ADAIN_ENCODERS``) from the store; the trainer uses it too."""
    from ..nets.adain import Encoder, load_vgg_normalised
    from ..nets.vgg import load_vgg19

    if name == ADAIN_VGG:
        return store.load(ADAIN_VGG, load_vgg_normalised)
    conventions = {VGG19_CAFFE: "caffe", VGG19_TORCHVISION: "torchvision"}
    if name not in conventions:
        raise KeyError(f"unknown AdaIN encoder {name!r}; known: {', '.join(ADAIN_ENCODERS)}")
    vgg = store.load(name, lambda path: load_vgg19(path, conventions[name], up_to="relu4_1"))
    return Encoder.from_vgg_features(vgg, name)


# --- pieces the method is made of, kept as functions so tests can check each one ----------

def _image_tensor(image: "Image.Image") -> "torch.Tensor":
    from ..images import to_tensor

    return to_tensor(image)


def feature_extent(hw: tuple[int, int]) -> tuple[int, int]:
    """relu4_1 cells that see the image: ceil(side / 8), as the round-up pools give."""
    return tuple(-(-side // 8) for side in hw)  # type: ignore[return-value]


def pad_to_min_side(x: "torch.Tensor") -> "torch.Tensor":
    """The content as the encoder takes it: unpadded, as in the reference, unless a side is
    too small for relu4_1's reflection padding; then that side is edge-padded to 16.

    The encoder's pools round up, so the decoder's output covers the input (8 x ceil(side/8)
    pixels) and is cropped back. Padding only where the reference cannot run keeps AdaIN's
    per-channel statistics those of the image itself; for the padded slivers they are taken
    over the cells that see the image (``feature_extent``).
    """
    import torch.nn.functional as F

    height, width = x.shape[-2:]
    target_h = height if height >= UNPADDED_MIN_SIDE else MIN_SIDE
    target_w = width if width >= UNPADDED_MIN_SIDE else MIN_SIDE
    if (target_h, target_w) == (height, width):
        return x
    return F.pad(x, (0, target_w - width, 0, target_h - height), mode="replicate")


def mask_regions(mask: "Image.Image", content_hw: tuple[int, int], feature_hw,
                 device) -> list["torch.Tensor"]:
    """Foreground (white) and background (black) as boolean masks at feature resolution.

    The mask is scaled to the content, edge-padded to the 8-pixel cells of relu4_1's grid,
    and area-averaged down to it, where a cell belongs to the foreground when it is mostly
    white.
    """
    import torch.nn.functional as F
    from PIL import Image as PILImage

    from ..images import to_tensor

    height, width = content_hw
    grey = mask.convert("L").resize((width, height), PILImage.Resampling.BILINEAR)
    t = to_tensor(grey.convert("RGB"))[:, :1].to(device)
    cells_h, cells_w = (int(n) for n in feature_hw)
    t = F.pad(t, (0, max(0, 8 * cells_w - width), 0, max(0, 8 * cells_h - height)),
              mode="replicate")
    coverage = F.adaptive_avg_pool2d(t, (cells_h, cells_w))[0, 0]
    foreground = coverage >= 0.5
    return [foreground, ~foreground]


def stylised_features(content: "torch.Tensor", style_stats, mix: list[float], alpha: float,
                      regions: list["torch.Tensor"] | None = None,
                      valid: tuple[int, int] | None = None) -> "torch.Tensor":
    """The decoder's input for one image: AdaIN target blended with the content by alpha.

    Without a mask the styles are interpolated as in the paper: the weighted sum of the
    AdaIN outputs, which (AdaIN being affine in the style statistics) equals AdaIN with
    the weighted mean and std. With a mask, each region takes one style's statistics.
    ``valid`` (rows, columns) limits the content statistics to the cells that see the
    image when it was padded; padding cells are left out of every region.
    """
    import torch

    from ..nets.adain import adaptive_instance_norm, masked_adain, mean_std

    rows, cols = valid if valid is not None else content.shape[-2:]
    if regions is not None:
        inside = torch.zeros_like(regions[0], dtype=torch.bool)
        inside[:rows, :cols] = True
        target = masked_adain(content, [r & inside for r in regions], style_stats)
    else:
        mean = sum(w * m for w, (m, _) in zip(mix, style_stats))
        std = sum(w * s for w, (_, s) in zip(mix, style_stats))
        content_stats = mean_std(content[..., :rows, :cols])
        target = adaptive_instance_norm(content, mean.unsqueeze(0), std.unsqueeze(0),
                                        content_stats=content_stats)
    return alpha * target + (1.0 - alpha) * content

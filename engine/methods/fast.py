"""`fast`: feed-forward style networks, one forward pass per image.

Two families of pretrained networks, plus the user's own:
- Johnson et al. 2016 ``TransformerNet`` (pytorch/examples layout): one network per style,
  named ``candy``, ``mosaic``, ``rain_princess``, ``udnie`` and ``pointilism``;
- Dumoulin et al. 2017's multi-style network: 26 built-in styles chosen by index
  (``26:7``) or blended by weight (``26:3=0.7,12=0.3``);
- networks trained with ``stylebot train fast``, by the name they were saved under.

The network is deterministic, so this method takes no seed: accepting one that changes
nothing would suggest otherwise.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Hashable

from ..catalogue import MULTISTYLE26, fast_network
from ..errors import OptionError, UserError
from ..options import PRESERVE_COLOR, SIZE, SMOOTH, STRENGTH, Option, OptionSet
from .base import Method, MethodInput, RunContext

if TYPE_CHECKING:
    import torch
    from PIL import Image

    from ..settings import EngineSettings
    from ..weights import WeightStore

log = logging.getLogger(__name__)

NAMED_STYLES = ("candy", "mosaic", "pointilism", "rain_princess", "udnie")
MULTI_PREFIX = "26:"
N_MULTI_STYLES = 26
TRAINED_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]{0,63}")
# The default network: candy where its weights are here, else a built-in style, so `fast`
# works offline right after install (candy needs pytorch/examples' download).
PREFERRED_MODEL = "candy"
BUILTIN_MODEL = "26:19"

MODEL = Option(
    "model", "str", None,
    "Style network: candy, mosaic, pointilism, rain_princess, udnie; 26:<0..25> for a "
    "built-in style of the 26-style network; a blend such as 26:3=0.7,12=0.3; or the name "
    f"of a network trained with `stylebot train fast`. Default: {PREFERRED_MODEL} where its "
    f"weights are here, else the built-in {BUILTIN_MODEL}; the result names the one used.")


@dataclass(frozen=True)
class ModelSpec:
    """A parsed ``model`` option: which network, and for the 26-style one, which mix."""

    kind: str  # "named" | "multi" | "trained" | "own" (the requester's own, from /train)
    name: str = ""
    blend: tuple[tuple[int, float], ...] = ()  # (style index, normalised weight), weight > 0
    path: str = ""  # an own network's file: two users' "mine" are different networks

    @property
    def key(self) -> str:
        """Canonical text: equal keys run the same network on the same weights."""
        if self.kind == "multi":
            return MULTI_PREFIX + ",".join(f"{i}={w:.6g}" for i, w in self.blend)
        if self.kind == "own":
            return f"own:{self.path}"
        return f"{self.kind}:{self.name}"

    def weight_vector(self) -> list[float]:
        vector = [0.0] * N_MULTI_STYLES
        for index, weight in self.blend:
            vector[index] = weight
        return vector


def trained_dir(settings: "EngineSettings") -> Path:
    """Where `stylebot train fast` saves networks and where this method finds them."""
    return Path(settings.home) / "trained" / "fast"


def trained_path(settings: "EngineSettings", name: str) -> Path:
    return trained_dir(settings) / f"{name}.pth"


def trained_names(settings: "EngineSettings") -> list[str]:
    folder = trained_dir(settings)
    if not folder.is_dir():
        return []
    return sorted(p.stem for p in folder.glob("*.pth")
                  if p.is_file() and TRAINED_NAME.fullmatch(p.stem))


def own_names(own_models: Path | None) -> list[str]:
    """The networks in a requester's own folder (``StyleRequest.own_models``)."""
    if own_models is None or not own_models.is_dir():
        return []
    return sorted(p.stem for p in own_models.glob("*.pth")
                  if p.is_file() and TRAINED_NAME.fullmatch(p.stem))


def parse_blend(text: str) -> ModelSpec:
    """``26:3`` or ``26:3=0.7,12=0.3`` (weights normalised to sum 1; a bare index weighs 1)."""
    body = text[len(MULTI_PREFIX):].strip()
    if not body:
        raise OptionError(f"Option 'model' {text!r} names no style: use 26:<0..25>, "
                          "or a blend such as 26:3=0.7,12=0.3.")
    weights: dict[int, float] = {}
    for item in body.split(","):
        index_text, _, weight_text = item.partition("=")
        try:
            index = int(index_text.strip())
        except ValueError:
            raise OptionError(f"Option 'model': {item.strip()!r} in {text!r} is not "
                              "<index> or <index>=<weight> (index 0..25).") from None
        if not 0 <= index < N_MULTI_STYLES:
            raise OptionError(f"Option 'model': style index {index} is outside 0..25.")
        if index in weights:
            raise OptionError(f"Option 'model': style index {index} appears twice in {text!r}.")
        try:
            weight = float(weight_text) if weight_text.strip() else 1.0
        except ValueError:
            weight = math.nan
        if not math.isfinite(weight):
            raise OptionError(f"Option 'model': weight {weight_text.strip()!r} for style "
                              f"{index} is not a number (allowed: >= 0).")
        if weight < 0:
            raise OptionError(f"Option 'model': weight {weight:g} for style {index} is "
                              "negative (allowed: >= 0).")
        weights[index] = weight
    total = sum(weights.values())
    if total <= 0:
        raise OptionError(f"Option 'model': the weights in {text!r} add up to 0; "
                          "give at least one style a weight > 0.")
    blend = tuple((i, w / total) for i, w in sorted(weights.items()) if w > 0)
    return ModelSpec("multi", blend=blend)


def parse_model(text: Any, settings: "EngineSettings | None" = None,
                own_models: Path | None = None) -> ModelSpec:
    """Turn the ``model`` option into a ``ModelSpec``, or raise ``OptionError``.

    A name in ``own_models`` (the requester's folder) is their own network, before the
    server's trained ones. With ``settings`` a trained network must exist; without them
    (``weight_names``, ``batch_key``) any other well-formed name is taken to be one.
    """
    raw = str(text if text is not None else PREFERRED_MODEL).strip()
    lowered = raw.lower().replace("-", "_").replace(" ", "_")
    if lowered in NAMED_STYLES:
        return ModelSpec("named", lowered)
    if raw.startswith(MULTI_PREFIX):
        return parse_blend(raw)
    if TRAINED_NAME.fullmatch(raw):
        if own_models is not None and (own_models / f"{raw}.pth").is_file():
            return ModelSpec("own", raw, path=str(own_models / f"{raw}.pth"))
        if settings is None or trained_path(settings, raw).is_file():
            return ModelSpec("trained", raw)
    raise OptionError(f"Option 'model': unknown model {raw!r}; "
                      f"available: {available_models(settings, own_models)}.")


def default_model(weights: "WeightStore") -> str:
    """The model a job without one runs: candy if its weights are here, else a built-in style."""
    where, _ = weights.locate(fast_network(PREFERRED_MODEL))
    return PREFERRED_MODEL if where != "missing" else BUILTIN_MODEL


def available_models(settings: "EngineSettings | None", own_models: Path | None = None) -> str:
    """The models one requester may name: never another requester's own networks."""
    trained = trained_names(settings) if settings is not None else []
    listed = ", ".join(NAMED_STYLES) + ", 26:<0..25>, a blend like 26:3=0.7,12=0.3"
    if trained:
        shown = trained[:20] + (["..."] if len(trained) > 20 else [])
        listed += ", or a trained network: " + ", ".join(shown)
    own = own_names(own_models)
    if own:
        listed += ", or one of yours: " + ", ".join(own)
    return listed


class FastMethod(Method):
    name = "fast"
    title = "Fast feed-forward styles"
    summary = ("Johnson et al. feed-forward networks (candy, mosaic, rain_princess, udnie, "
               "pointilism), the 26 built-in styles of Dumoulin et al. with blends, and "
               "networks you trained; one pass, well under a second.")
    options = OptionSet([MODEL, STRENGTH, PRESERVE_COLOR, SIZE, SMOOTH])
    min_styles = 0
    max_styles = 0
    batchable = True
    takes_clips = True  # no style image: nothing to compute once; frames simply batch
    min_side = 8  # the 9x9 reflection padding and two downsamplings need this many pixels

    def weight_names(self, options: dict[str, Any] | None = None) -> list[str]:
        spec = parse_model((options or {}).get("model"))
        if spec.kind == "named":
            return [fast_network(spec.name)]
        if spec.kind == "multi":
            return [MULTISTYLE26]
        return []

    def check_options(self, options: dict[str, Any], settings: "EngineSettings") -> None:
        parse_model(options.get("model"), settings)

    def check_options_of(self, options: dict[str, Any], settings: "EngineSettings",
                         own_models: Path | None) -> None:
        parse_model(options.get("model"), settings, own_models)

    def check(self, inp: MethodInput, settings: "EngineSettings") -> None:
        parse_model(inp.options.get("model"), settings, inp.own_models)

    def own_model_names(self, own_models: Path | None) -> list[str]:
        return own_names(own_models)

    def resolve_defaults(self, options: dict[str, Any], weights: "WeightStore") -> dict[str, Any]:
        if options.get("model") is not None:
            return options
        return {**options, "model": default_model(weights)}

    def available_models(self, weights: "WeightStore", settings: "EngineSettings") -> list[str]:
        """Named styles whose weights are here, the built-in styles, trained networks."""
        named = [s for s in NAMED_STYLES if weights.locate(fast_network(s))[0] != "missing"]
        builtin = [MULTI_PREFIX + "<0..25>"] if weights.locate(MULTISTYLE26)[0] != "missing" else []
        return named + builtin + trained_names(settings)

    def batch_key(self, inp: MethodInput) -> Hashable | None:
        try:
            spec = parse_model(inp.options.get("model"), own_models=inp.own_models)
        except OptionError:
            return None
        return (spec.key, inp.content.height, inp.content.width)

    def run(self, inp: MethodInput, ctx: RunContext) -> "Image.Image":
        return self.run_batch([inp], ctx)[0]

    def run_batch(self, inputs: list[MethodInput], ctx: RunContext) -> list["Image.Image"]:
        """Stylise inputs sharing a network and size in one forward pass per group."""
        inputs = [replace(inp, options=self.resolve_defaults(inp.options, ctx.weights))
                  for inp in inputs]
        for inp in inputs:
            self.check(inp, ctx.settings)
        groups: dict[Hashable, list[int]] = {}
        for i, inp in enumerate(inputs):
            groups.setdefault(self.batch_key(inp), []).append(i)
        results: list[Image.Image | None] = [None] * len(inputs)
        for n, indices in enumerate(groups.values()):
            share = 1.0 / len(groups)
            group = [inputs[i] for i in indices]
            spec = parse_model(group[0].options.get("model"), ctx.settings, group[0].own_models)
            ctx.progress(n * share, "loading network")
            net = self._network(spec, ctx)
            ctx.progress((n + 0.2) * share, "stylising")
            styled = self._forward(spec, net, [inp.content for inp in group], ctx)
            for i, inp, image in zip(indices, group, styled):
                results[i] = _finish(inp, image)
        ctx.progress(1.0, "done")
        return [r for r in results if r is not None]

    def _network(self, spec: ModelSpec, ctx: RunContext) -> "torch.nn.Module":
        """Load through the model cache, so the next job with this network skips loading.

        On the CPU the network runs through ONNX Runtime (``engine.runtime``), exported
        from the same torch module; the call below stays the same.
        """
        from .. import runtime

        device = str(ctx.device)
        onnx = runtime.use_runtime(ctx)
        if onnx:
            device = f"onnx:{runtime.cpu_threads(ctx.settings)}"
        if spec.kind == "multi":
            from ..nets.multistyle import MultiStyleNet, StyleNet26, load_multistyle, load_style_net26

            path = ctx.weights.path(MULTISTYLE26)
            if onnx:
                def load_multi():
                    import torch

                    graph = runtime.load(
                        ctx.settings, "multistyle26", [path], StyleNet26,
                        lambda: ctx.weights.load(MULTISTYLE26, load_style_net26),
                        (torch.rand(1, 3, 64, 64), torch.full((26,), 1 / 26)),
                        {"image": {0: "n", 2: "h", 3: "w"}, "style_weights": {}})
                    return MultiStyleNet(graph)
            else:
                def load_multi():
                    return ctx.weights.load(MULTISTYLE26, load_multistyle).to(ctx.device)
            return ctx.models.get(f"fast/multistyle26:{path}@{device}", load_multi)

        from ..nets.transformer_net import load_transformer_net

        def load(path: Path, build=None):
            """The network at ``path``; ``build`` reads it (a catalogue file through the store,
            so a broken one is one line); a trained network is read directly."""
            build = build or (lambda: load_transformer_net(path))
            if not onnx:
                return build().to(ctx.device)
            import torch

            from ..nets.transformer_net import TransformerNet

            return runtime.load(ctx.settings, "transformer_net", [path], TransformerNet, build,
                                (torch.rand(1, 3, 64, 64) * 255,), {"image": {0: "n", 2: "h", 3: "w"}})

        if spec.kind == "named":
            name = fast_network(spec.name)
            path = ctx.weights.path(name)
            return ctx.models.get(f"fast/{spec.name}:{path}@{device}",
                                  lambda: load(path, lambda: ctx.weights.load(name, load_transformer_net)))
        path = Path(spec.path) if spec.kind == "own" else trained_path(ctx.settings, spec.name)
        stat = path.stat()  # retraining under the same name must not hit the stale entry

        def load_trained():
            try:
                return load(path)
            except (RuntimeError, ValueError, OSError, KeyError) as exc:
                log.warning("trained network %s does not load: %s", path, exc)
                raise UserError(f"The trained network '{spec.name}' cannot be loaded (the file "
                                "is damaged or not a TransformerNet); train it again.") from exc

        return ctx.models.get(f"fast/{spec.kind}/{spec.name}:{path}:{stat.st_mtime_ns}:"
                              f"{stat.st_size}@{device}", load_trained)

    def _forward(self, spec: ModelSpec, net: "torch.nn.Module", contents: list["Image.Image"],
                 ctx: RunContext) -> list["Image.Image"]:
        import torch

        from ..images import to_image, to_tensor

        x = torch.cat([to_tensor(c) for c in contents]).to(ctx.device)
        with torch.inference_mode():
            if spec.kind == "multi":
                weights = torch.tensor(spec.weight_vector(), dtype=torch.float32)
                out = net(x, weights)
            else:
                out = _run_transformer(net, x * 255.0, ctx) / 255.0
        return [to_image(t) for t in out]


def _run_transformer(net: "torch.nn.Module", x: "torch.Tensor", ctx: RunContext) -> "torch.Tensor":
    """fp16 autocast on CUDA when allowed, falling back to fp32 if it overflowed.

    Autocast keeps the weights and the instance-norm statistics in fp32 and runs the
    convolutions in fp16, which is where the time goes. The CPU always runs fp32.
    """
    import torch

    from ..nets.transformer_net import stylize

    if ctx.half:
        with torch.autocast(device_type="cuda", dtype=torch.float16):
            out = stylize(net, x).float()
        if torch.isfinite(out).all():
            return out
        log.warning("fp16 output of the fast network was not finite; running it in fp32")
    return stylize(net, x).float()


def _finish(inp: MethodInput, styled: "Image.Image") -> "Image.Image":
    """Apply preserve_color, then strength as a blend towards the content (0 = content)."""
    from PIL import Image

    from ..images import preserve_color

    if inp.options.get("preserve_color"):
        styled = preserve_color(inp.content, styled)
    strength = float(inp.options.get("strength", 1.0))
    if strength <= 0.0:
        return inp.content.copy()
    if strength >= 1.0:
        return styled
    return Image.blend(inp.content, styled, strength)

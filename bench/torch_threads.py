"""Torch's intra-op threads on the CPU for the torch-only methods: 1 against all usable cores.

    python bench/torch_threads.py                      # gatys, 256 px, 10 iterations, 7 rounds

The engine sets torch's threads once, from ``engine.runtime.cpu_threads(heavy=True)``
(engine/device.py); this checks that rule on ``gatys`` (VGG19 forward and backward per
iteration), interleaved in one process, warm. Prints median seconds and the median
per-round ratio of each thread count to one thread.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch  # noqa: E402

from bench.peer import context, machine, measure, print_ratio_table  # noqa: E402
from engine import runtime  # noqa: E402
from engine.methods import get_method  # noqa: E402
from engine.methods.base import MethodInput  # noqa: E402
from engine.samples import sample_content, sample_style  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--iterations", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()

    method = get_method("gatys")
    options = method.options.validate({"iterations": args.iterations}, method="gatys")
    inp = MethodInput(content=sample_content(args.size), options={**options, "seed": 0}, seed=0,
                      size=args.size, styles=[sample_style(args.size)])
    cores = runtime.usable_cores()
    with tempfile.TemporaryDirectory() as tmp:
        ctx = context(Path(tmp), None, "torch", 0)
        runners = {}
        for n in sorted({1, cores}):
            def run(n=n):
                torch.set_num_threads(n)
                return method.run(inp, ctx)

            runners[f"{n} thread(s)"] = run
        print(f"Machine: {machine()}; gatys {args.size} px, {args.iterations} iterations, "
              f"{args.rounds} rounds\n")
        print_ratio_table(measure(runners, args.rounds), "1 thread(s)", "torch threads",
                          "1 thread")
    print(f"\nload average at the end: {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
